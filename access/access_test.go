package access_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/access"
	"github.com/rhizome-mesh/rhizome/audit"
	"github.com/rhizome-mesh/rhizome/catalog"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/metastore/sqlite"
)

var ctx = context.Background()

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// The test mesh: domain shop (owner team shop-team: olga technical_owner,
// sam steward, bea business_owner, dev developer), team analytics (ann,
// gus, exp, rev), team partners (pia), and one product per sensitivity
// level with the same five columns of rising classification.
const mesh = `apiVersion: rhizome/v1
kind: Domain
name: shop
owner_teams: [shop-team]
---
apiVersion: rhizome/v1
kind: Team
name: shop-team
domain: shop
members:
  - {principal: olga, roles: [technical_owner]}
  - {principal: sam, roles: [steward]}
  - {principal: bea, roles: [business_owner]}
  - {principal: dev, roles: [developer]}
---
apiVersion: rhizome/v1
kind: Team
name: analytics
members:
  - {principal: ann, roles: [developer]}
  - {principal: gus, roles: [developer]}
  - {principal: exp, roles: [developer]}
  - {principal: rev, roles: [developer]}
---
apiVersion: rhizome/v1
kind: Team
name: partners
members:
  - {principal: pia, roles: [developer]}
---
apiVersion: rhizome/v1
kind: Policy
name: pii-masking
description: PII must be masked in non-production environments
scope: global
enforcement: required
domains_applicable: [all]
---
apiVersion: rhizome/v1
kind: Policy
name: data-classification
description: Restricted columns are hashed for readers below restricted
scope: global
domains_applicable: [all]
masks:
  - {classification: restricted, with: hash}
---
apiVersion: rhizome/v1
kind: Policy
name: shop-masks
scope: domain
domain: shop
masks:
  - {column: card, with: last4, when: always}
  - {column: phone, with: custom, expr: "left({column}, 3) || '***'", when: always}
`

func product(level, extra string) string {
	return fmt.Sprintf(`---
apiVersion: rhizome/v1
kind: DataProduct
id: dp.shop.%[1]s
name: Shop %[1]s
owner_team: shop-team
domain: shop
current_version: 1.0.0
sensitivity_level: %[1]s
contract: contract-shop-%[1]s
%[2]s---
apiVersion: v3.1.0
kind: DataContract
id: contract-shop-%[1]s
version: 1.0.0
status: active
domain: shop
dataProduct: dp.shop.%[1]s
schema:
  - name: t
    properties:
      - {name: id, physicalType: BIGINT, classification: public}
      - {name: region, physicalType: VARCHAR, classification: internal}
      - {name: amount, physicalType: "DECIMAL(18,2)", classification: confidential}
      - {name: email, physicalType: VARCHAR, classification: restricted, tags: [pii]}
      - {name: birth_date, physicalType: DATE, classification: internal, tags: [pii]}
      - {name: card, physicalType: VARCHAR, classification: internal}
      - {name: phone, physicalType: VARCHAR, classification: internal}
`, level, extra)
}

var levels = rhizome.SensitivityLevels()

type env struct {
	t     testing.TB
	store metastore.Store
	cat   *catalog.Catalog
	svc   *access.Service
	clock *fakeClock
	audit auditLog
}

// auditLog is the real audit log over the test's store.
type auditLog struct{ *audit.Log }

// actions lists the access entries, oldest first, as "action actor".
func (l auditLog) actions(t testing.TB) []string {
	page, err := l.Query(ctx, audit.Filter{Action: "access.", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(page.Items) - 1; i >= 0; i-- {
		out = append(out, page.Items[i].Action+" "+page.Items[i].Actor)
	}
	return out
}

func newEnv(t testing.TB, environment string) *env {
	t.Helper()
	clock := &fakeClock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "m.db"), metastore.Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	al := audit.Open(audit.Options{Store: store, Clock: clock})
	t.Cleanup(func() { al.Close() })
	e := &env{t: t, store: store, clock: clock, audit: auditLog{al}}
	e.cat = catalog.New(store, catalog.Options{Clock: clock})
	e.svc = access.New(access.Options{Store: store, Clock: clock, Environment: environment, Audit: al, CacheTTL: time.Hour})
	e.cat.OnApplied(func(context.Context) { e.svc.Invalidate() })
	files := []string{mesh,
		product("public", ""),
		product("internal", ""),
		product("confidential", "access:\n  auto_approve:\n    - {team: partners, max_duration: 30d, row_filter: \"region = 'APAC'\"}\n"),
		product("restricted", "custom_properties:\n  pii_masking: {email: redact, birth_date: truncate}\n")}
	e.apply(files...)
	return e
}

func (e *env) apply(content ...string) {
	e.t.Helper()
	var req rhizome.ApplyRequest
	for i, c := range content {
		req.Files = append(req.Files, rhizome.SourceFile{Name: fmt.Sprintf("f%d.yaml", i), Content: c})
	}
	if _, err := e.cat.Apply(ctx, &rhizome.Principal{ID: "admin", Admin: true}, req); err != nil {
		e.t.Fatalf("apply: %v", err)
	}
}

// subject builds a subject the way the server does: teams from the store.
func (e *env) subject(id string) access.Subject {
	e.t.Helper()
	if id == "admin" {
		return access.Subject{ID: id, Admin: true}
	}
	teams, err := e.store.TeamsOf(ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return access.Subject{ID: id, Teams: teams}
}

func (e *env) request(who, product, duration string) *access.AccessRequest {
	e.t.Helper()
	r, err := e.svc.RequestAccess(ctx, e.subject(who), access.NewRequest{ProductID: product, Purpose: "analysis", Duration: duration})
	if err != nil {
		e.t.Fatalf("request by %s for %s: %v", who, product, err)
	}
	return r
}

func (e *env) approve(who, id string, a access.Approval) *access.Grant {
	e.t.Helper()
	_, g, err := e.svc.Approve(ctx, e.subject(who), id, a)
	if err != nil {
		e.t.Fatalf("approve %s by %s: %v", id, who, err)
	}
	return g
}

func (e *env) decide(who, product, via string) *access.Decision {
	e.t.Helper()
	d, err := e.svc.Decide(ctx, access.Request{Subject: e.subject(who), ProductID: product, Via: via})
	if err != nil {
		e.t.Fatalf("decide %s %s: %v", who, product, err)
	}
	return d
}

func masks(d *access.Decision) map[string]string {
	m := d.Masks()
	if m == nil {
		m = map[string]string{}
	}
	return m
}

// TestAccessMatrix: principals x sensitivity levels x grants x interfaces.
// Every interface gets the same decision: one decision point.
func TestAccessMatrix(t *testing.T) {
	e := newEnv(t, "")
	for _, lvl := range levels {
		p := "dp.shop." + lvl
		e.approve("sam", e.request("gus", p, "30d").ID, access.Approval{RowFilter: "region = 'EU'"})
		e.approve("sam", e.request("exp", p, "1d").ID, access.Approval{})
		g := e.approve("sam", e.request("rev", p, "30d").ID, access.Approval{})
		if _, err := e.svc.Revoke(ctx, e.subject("olga"), g.ID, "project over"); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.Add(48 * time.Hour) // exp's grants expire

	always := map[string]string{"card": access.MaskLast4, "phone": access.MaskCustom}
	// Masks of a reader in a team (internal clearance) and in none.
	member := map[string]string{"card": access.MaskLast4, "phone": access.MaskCustom, "amount": access.MaskNull, "email": access.MaskHash}
	outsider := map[string]string{"card": access.MaskLast4, "phone": access.MaskCustom, "amount": access.MaskNull, "email": access.MaskHash,
		"region": access.MaskNull, "birth_date": access.MaskNull}
	none := map[string]string{}
	type want struct {
		allow     []bool // public, internal, confidential, restricted
		masks     map[string]string
		rowFilter string
	}
	all := []bool{true, true, true, true}
	cases := map[string]want{
		"admin":  {all, none, ""},
		"olga":   {all, none, ""}, // owner
		"sam":    {all, none, ""}, // steward
		"dev":    {all, none, ""}, // developer in the owner team
		"ann":    {[]bool{true, true, false, false}, member, ""},
		"nobody": {[]bool{true, false, false, false}, outsider, ""},
		"gus":    {all, always, "region = 'EU'"}, // steward-approved grant with a row filter
		"exp":    {[]bool{true, true, false, false}, member, ""},
		"rev":    {[]bool{true, true, false, false}, member, ""},
	}
	for who, w := range cases {
		for i, lvl := range levels {
			p := "dp.shop." + lvl
			t.Run(who+"/"+lvl, func(t *testing.T) {
				var first *access.Decision
				for _, via := range []string{access.ViaREST, access.ViaSQL, access.ViaSample} {
					d := e.decide(who, p, via)
					if d.Allow != w.allow[i] {
						t.Fatalf("%s: allow = %v, want %v (%s)", via, d.Allow, w.allow[i], d.Reason)
					}
					if first == nil {
						first = d
					} else if !reflect.DeepEqual(d, first) {
						t.Fatalf("%s decides differently from rest:\n%+v\n%+v", via, d, first)
					}
				}
				if !first.Allow {
					if first.Columns != nil || first.Projection() != "" || first.Err(p) == nil || rhizome.Code(first.Err(p)) != rhizome.EForbidden {
						t.Fatalf("a denial carries columns or no error: %+v", first)
					}
					return
				}
				wantMasks := w.masks
				if !reflect.DeepEqual(masks(first), wantMasks) {
					t.Errorf("masks = %v, want %v", masks(first), wantMasks)
				}
				if first.RowFilter != w.rowFilter {
					t.Errorf("row filter = %q, want %q", first.RowFilter, w.rowFilter)
				}
				if len(first.Columns) != 7 {
					t.Errorf("columns = %d, want 7", len(first.Columns))
				}
			})
		}
	}
}

func TestDecisionExpressions(t *testing.T) {
	e := newEnv(t, "")
	d := e.decide("nobody", "dp.shop.public", access.ViaSQL)
	want := `"id" AS "id", CAST(NULL AS VARCHAR) AS "region", CAST(NULL AS DECIMAL(18,2)) AS "amount", sha256(CAST("email" AS VARCHAR)) AS "email", ` +
		`CAST(NULL AS DATE) AS "birth_date", '****' || right(CAST("card" AS VARCHAR), 4) AS "card", (left("phone", 3) || '***') AS "phone"`
	if got := d.Projection(); got != want {
		t.Errorf("projection:\n got %s\nwant %s", got, want)
	}
	if !reflect.DeepEqual(d.PolicyIDs, []string{"classification", "data-classification", "shop-masks"}) {
		t.Errorf("policy ids = %v", d.PolicyIDs)
	}
	// Caller-given types win over the contract's; unknown columns pass.
	d, err := e.svc.Decide(ctx, access.Request{Subject: e.subject("ann"), ProductID: "dp.shop.internal", Columns: []string{"amount", "extra"}, Types: map[string]string{"amount": "DOUBLE"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Projection(); got != `CAST(NULL AS DOUBLE) AS "amount", "extra" AS "extra"` {
		t.Errorf("projection = %s", got)
	}
	if _, err := e.svc.Decide(ctx, access.Request{Subject: e.subject("ann"), ProductID: "dp.nope"}); rhizome.Code(err) != rhizome.ENotFound {
		t.Errorf("unknown product: %v", err)
	}
	if d, _ := e.svc.Decide(ctx, access.Request{ProductID: "dp.shop.public"}); d.Allow {
		t.Error("an anonymous subject may read")
	}
	// A custom mask the guard refuses hides the column instead.
	e.apply("apiVersion: rhizome/v1\nkind: Policy\nname: bad-mask\nscope: global\nmasks:\n  - {column: region, with: custom, expr: \"read_csv('/etc/passwd')\", when: always}\n")
	d, err = e.svc.Decide(ctx, access.Request{Subject: e.subject("ann"), ProductID: "dp.shop.internal", Columns: []string{"region"}})
	if err != nil || d.Projection() != `CAST(NULL AS VARCHAR) AS "region"` || d.Columns[0].Mask != access.MaskNull {
		t.Errorf("bad custom mask: %v %+v", err, d)
	}
}

func TestMaskExpr(t *testing.T) {
	cases := []struct{ kind, typ, custom, want string }{
		{access.MaskNone, "", "", `"c"`},
		{access.MaskNull, "", "", `NULL`},
		{access.MaskNull, "integer", "", `CAST(NULL AS INTEGER)`},
		{access.MaskHash, "", "", `sha256(CAST("c" AS VARCHAR))`},
		{access.MaskRedact, "", "", `CASE WHEN "c" IS NULL THEN NULL ELSE '***' END`},
		{access.MaskLast4, "", "", `'****' || right(CAST("c" AS VARCHAR), 4)`},
		{access.MaskEmailDomain, "", "", `regexp_replace(CAST("c" AS VARCHAR), '^[^@]*', '***')`},
		{access.MaskYear, "DATE", "", `CAST(date_trunc('year', "c") AS DATE)`},
		{access.MaskYear, "", "", `date_trunc('year', "c")`},
		{access.MaskTruncate, "TIMESTAMP", "", `CAST(date_trunc('year', "c") AS TIMESTAMP)`},
		{access.MaskTruncate, "INTEGER", "", `CAST("c" - "c" % 10 AS INTEGER)`},
		{access.MaskTruncate, "VARCHAR", "", `left(CAST("c" AS VARCHAR), 1) || '***'`},
		{access.MaskTokenize, "", "", `'tok_' || left(sha256(CAST("c" AS VARCHAR)), 16)`},
		{access.MaskCustom, "", "upper({column})", `(upper("c"))`},
	}
	for _, c := range cases {
		got, err := access.MaskExpr(c.kind, "c", c.typ, c.custom)
		if err != nil || got != c.want {
			t.Errorf("%s/%s: %s, %v; want %s", c.kind, c.typ, got, err, c.want)
		}
	}
	if _, err := access.MaskExpr("scramble", "c", "", ""); err == nil {
		t.Error("unknown mask accepted")
	}
	if _, err := access.MaskExpr(access.MaskCustom, "c", "", "(SELECT 1)"); err == nil {
		t.Error("subquery in custom mask accepted")
	}
}

func TestCheckExpr(t *testing.T) {
	ok := []string{"region = 'EU'", "region IN ('EU', 'UK') AND amount > 10", "lower(\"Region\") = 'select; from'", "x = 'it''s'", "coalesce(a, b) IS NOT NULL"}
	bad := []string{"", "1=1; DROP TABLE t", "region = 'EU' -- comment", "/* x */ a", "a IN (SELECT a FROM t)", "read_csv('/etc/passwd') IS NOT NULL",
		"getenv('HOME') = 'x'", "exists (x)", "(a = 1", "a = 1)", "a = 'unterminated", "a = $1", "main.read_parquet('x') = 1", strings.Repeat("a", 1001)}
	for _, s := range ok {
		if err := access.CheckExpr(s); err != nil {
			t.Errorf("%q refused: %v", s, err)
		}
	}
	for _, s := range bad {
		if err := access.CheckExpr(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

// Outside production PII is masked for everyone, owners and admins
// included, with the product's pii_masking methods (hash otherwise).
func TestNonProductionMasksPIIForEveryone(t *testing.T) {
	e := newEnv(t, "staging")
	if !e.svc.NonProduction() {
		t.Fatal("staging is production")
	}
	for _, who := range []string{"admin", "olga", "sam"} {
		d := e.decide(who, "dp.shop.restricted", access.ViaSample)
		want := map[string]string{"email": access.MaskRedact, "birth_date": access.MaskTruncate}
		if !d.Allow || !reflect.DeepEqual(masks(d), want) {
			t.Errorf("%s: %v %v, want %v", who, d.Allow, masks(d), want)
		}
		if !strings.Contains(d.Projection(), `CAST(date_trunc('year', "birth_date") AS DATE) AS "birth_date"`) {
			t.Errorf("%s: %s", who, d.Projection())
		}
		d = e.decide(who, "dp.shop.internal", access.ViaSQL)
		if want := map[string]string{"email": access.MaskHash, "birth_date": access.MaskHash}; !reflect.DeepEqual(masks(d), want) {
			t.Errorf("%s internal: %v, want %v", who, masks(d), want)
		}
		if !reflect.DeepEqual(d.PolicyIDs, []string{"pii-masking"}) {
			t.Errorf("policy ids %v", d.PolicyIDs)
		}
	}
	// A reader below the columns' classification: the PII rule wins for
	// PII columns, the others as in production.
	d := e.decide("ann", "dp.shop.internal", access.ViaREST)
	want := map[string]string{"email": access.MaskHash, "birth_date": access.MaskHash, "amount": access.MaskNull, "card": access.MaskLast4, "phone": access.MaskCustom}
	if !reflect.DeepEqual(masks(d), want) {
		t.Errorf("ann: %v, want %v", masks(d), want)
	}
	// In production the owners see everything.
	if p := newEnv(t, "production"); len(masks(p.decide("olga", "dp.shop.restricted", access.ViaSQL))) != 0 {
		t.Error("production masks for owners")
	}
}

func TestApprovalRules(t *testing.T) {
	e := newEnv(t, "")
	code := func(err error) rhizome.ErrorCode { return rhizome.Code(err) }

	// Requests: purpose always, duration for restricted, within limits.
	_, err := e.svc.RequestAccess(ctx, e.subject("ann"), access.NewRequest{ProductID: "dp.shop.confidential"})
	if code(err) != rhizome.EInvalid {
		t.Errorf("no purpose: %v", err)
	}
	_, err = e.svc.RequestAccess(ctx, e.subject("ann"), access.NewRequest{ProductID: "dp.shop.restricted", Purpose: "x"})
	if code(err) != rhizome.EInvalid || !strings.Contains(err.Error(), "restricted") {
		t.Errorf("restricted without duration: %v", err)
	}
	_, err = e.svc.RequestAccess(ctx, e.subject("ann"), access.NewRequest{ProductID: "dp.shop.restricted", Purpose: "x", Duration: "120d"})
	if code(err) != rhizome.EInvalid {
		t.Errorf("restricted for 120d: %v", err)
	}
	_, err = e.svc.RequestAccess(ctx, e.subject("ann"), access.NewRequest{ProductID: "dp.shop.confidential", Purpose: "x", Columns: []string{"emial"}})
	if code(err) != rhizome.EInvalid || !strings.Contains(err.Error(), "email") {
		t.Errorf("unknown column: %v", err)
	}
	if _, err = e.svc.RequestAccess(ctx, e.subject("olga"), access.NewRequest{ProductID: "dp.shop.confidential", Purpose: "x"}); code(err) != rhizome.EConflict {
		t.Errorf("owner requesting: %v", err)
	}

	conf := e.request("ann", "dp.shop.confidential", "")
	if conf.State != access.StatePending {
		t.Fatalf("state %s", conf.State)
	}
	if _, err = e.svc.RequestAccess(ctx, e.subject("ann"), access.NewRequest{ProductID: "dp.shop.confidential", Purpose: "again"}); code(err) != rhizome.EConflict {
		t.Errorf("second pending request: %v", err)
	}
	// Neither another consumer nor a developer of the owner team approves.
	for _, who := range []string{"gus", "dev", "nobody"} {
		if _, _, err := e.svc.Approve(ctx, e.subject(who), conf.ID, access.Approval{}); code(err) != rhizome.EForbidden {
			t.Errorf("%s approved: %v", who, err)
		}
	}
	if _, _, err := e.svc.Approve(ctx, e.subject("olga"), conf.ID, access.Approval{RowFilter: "1=1; DROP TABLE t"}); code(err) != rhizome.EInvalid {
		t.Errorf("bad row filter: %v", err)
	}
	if _, _, err := e.svc.Approve(ctx, e.subject("olga"), conf.ID, access.Approval{Columns: []string{"id", "nope"}}); code(err) != rhizome.EInvalid {
		t.Errorf("bad columns: %v", err)
	}
	req, g, err := e.svc.Approve(ctx, e.subject("olga"), conf.ID, access.Approval{Columns: []string{"id", "amount"}})
	if err != nil {
		t.Fatal(err)
	}
	if req.State != access.StateApproved || g.Clearance != rhizome.SensitivityConfidential || g.ApproverRole != rhizome.RoleTechnicalOwner || g.ExpiresAt != nil {
		t.Errorf("approved: %+v %+v", req, g)
	}
	if _, _, err := e.svc.Approve(ctx, e.subject("olga"), conf.ID, access.Approval{}); code(err) != rhizome.EConflict {
		t.Errorf("approved twice: %v", err)
	}
	// The grant limits the columns: the others are hidden.
	d := e.decide("ann", "dp.shop.confidential", access.ViaSQL)
	if !d.Allow || d.Projection() != `"id" AS "id", "amount" AS "amount"` {
		t.Errorf("column grant: %v %s", d.Allow, d.Projection())
	}

	// Restricted: only the steward, and the grant must expire.
	restr := e.request("ann", "dp.shop.restricted", "30d")
	for _, who := range []string{"olga", "bea", "admin"} {
		_, _, err := e.svc.Approve(ctx, e.subject(who), restr.ID, access.Approval{})
		var re *rhizome.Error
		if code(err) != rhizome.EForbidden || !errors.As(err, &re) || !strings.Contains(re.Hint, "sam") {
			t.Errorf("%s approved restricted: %v", who, err)
		}
	}
	if _, _, err := e.svc.Approve(ctx, e.subject("sam"), restr.ID, access.Approval{Duration: "100d"}); code(err) != rhizome.EInvalid {
		t.Errorf("restricted for 100d: %v", err)
	}
	_, g, err = e.svc.Approve(ctx, e.subject("sam"), restr.ID, access.Approval{Duration: "7d"})
	if err != nil {
		t.Fatal(err)
	}
	if g.Clearance != rhizome.SensitivityRestricted || g.ExpiresAt == nil || !g.ExpiresAt.Equal(e.clock.Now().Add(7*24*time.Hour)) {
		t.Errorf("restricted grant: %+v", g)
	}
	if d := e.decide("ann", "dp.shop.restricted", access.ViaREST); !d.Allow || d.Expires == nil || d.GrantID != g.ID {
		t.Errorf("restricted read: %+v", d)
	}

	// Deny needs a reason and an approver.
	den := e.request("gus", "dp.shop.confidential", "")
	if _, err := e.svc.Deny(ctx, e.subject("bea"), den.ID, ""); code(err) != rhizome.EInvalid {
		t.Errorf("deny without reason: %v", err)
	}
	if _, err := e.svc.Deny(ctx, e.subject("ann"), den.ID, "no"); code(err) != rhizome.EForbidden {
		t.Errorf("deny by consumer: %v", err)
	}
	r, err := e.svc.Deny(ctx, e.subject("bea"), den.ID, "use dp.shop.internal")
	if err != nil || r.State != access.StateDenied || r.DecidedBy != "bea" {
		t.Fatalf("deny: %+v %v", r, err)
	}
	if d := e.decide("gus", "dp.shop.confidential", access.ViaREST); d.Allow {
		t.Error("denied request reads")
	}

	// Visibility: ann sees her requests, olga the product's, nobody none.
	mine, _ := e.svc.ListRequests(ctx, e.subject("ann"), access.RequestFilter{})
	all, _ := e.svc.ListRequests(ctx, e.subject("olga"), access.RequestFilter{ProductID: "dp.shop.confidential"})
	stranger, _ := e.svc.ListRequests(ctx, e.subject("nobody"), access.RequestFilter{})
	denied, _ := e.svc.ListRequests(ctx, e.subject("admin"), access.RequestFilter{State: access.StateDenied})
	if len(mine) != 2 || len(all) != 2 || len(stranger) != 0 || len(denied) != 1 {
		t.Errorf("lists: mine %d, product %d, stranger %d, denied %d", len(mine), len(all), len(stranger), len(denied))
	}
	want := []string{"access.request ann", "access.approve olga", "access.request ann", "access.approve sam", "access.request gus", "access.deny bea"}
	if got := e.audit.actions(t); !reflect.DeepEqual(got, want) {
		t.Errorf("audit:\n got %v\nwant %v", got, want)
	}
}

func TestAutoApproval(t *testing.T) {
	e := newEnv(t, "")
	r := e.request("pia", "dp.shop.confidential", "7d")
	if r.State != access.StateApproved || r.DecidedBy != access.ApproverAuto || r.RowFilter != "region = 'APAC'" {
		t.Fatalf("auto: %+v", r)
	}
	d := e.decide("pia", "dp.shop.confidential", access.ViaSQL)
	if !d.Allow || d.RowFilter != "region = 'APAC'" || d.GrantID != r.GrantID {
		t.Errorf("auto grant: %+v", d)
	}
	// Longer than the rule allows, or from another team: a person decides.
	if r := e.request("ann", "dp.shop.confidential", "7d"); r.State != access.StatePending {
		t.Errorf("other team: %s", r.State)
	}
	e2 := newEnv(t, "")
	if r := e2.request("pia", "dp.shop.confidential", "60d"); r.State != access.StatePending {
		t.Errorf("60d: %s", r.State)
	}
	// A rule with a bad max_duration approves nothing.
	e4 := newEnv(t, "")
	e4.apply(product("internal", "access:\n  auto_approve:\n    - {team: partners, max_duration: forever}\n"))
	if r := e4.request("pia", "dp.shop.internal", "7d"); r.State != access.StatePending {
		t.Errorf("bad rule: %s", r.State)
	}
	// No duration: the rule's max_duration.
	e3 := newEnv(t, "")
	if r := e3.request("pia", "dp.shop.confidential", ""); r.State != access.StateApproved || r.ExpiresAt == nil || !r.ExpiresAt.Equal(e3.clock.Now().Add(30*24*time.Hour)) {
		t.Errorf("default duration: %+v", r)
	}
}

func TestExpiry(t *testing.T) {
	e := newEnv(t, "")
	g := e.approve("sam", e.request("ann", "dp.shop.confidential", "1d").ID, access.Approval{})
	if !e.decide("ann", "dp.shop.confidential", access.ViaSQL).Allow {
		t.Fatal("grant does not allow")
	}
	e.clock.Add(24*time.Hour - time.Second)
	if !e.decide("ann", "dp.shop.confidential", access.ViaSQL).Allow {
		t.Fatal("grant ended early")
	}
	e.clock.Add(time.Second)
	if d := e.decide("ann", "dp.shop.confidential", access.ViaSQL); d.Allow || !strings.Contains(d.Reason, "grant "+g.ID+" expired at 2026-11-26T12:00:00Z") {
		t.Fatalf("expired grant: %v %s", d.Allow, d.Reason)
	}
	gs, _ := e.svc.ListGrants(ctx, e.subject("ann"), access.GrantFilter{})
	rs, _ := e.svc.ListRequests(ctx, e.subject("ann"), access.RequestFilter{State: access.StateExpired})
	if len(gs) != 1 || gs[0].ID != g.ID || gs[0].State != access.StateExpired || len(rs) != 1 {
		t.Errorf("lists: %+v %+v", gs, rs)
	}
}

func TestRevokeTakesEffectAtOnce(t *testing.T) {
	e := newEnv(t, "")
	g := e.approve("olga", e.request("ann", "dp.shop.confidential", "").ID, access.Approval{})
	var mu sync.Mutex
	var told []string
	cancel := e.svc.Subscribe(func(p string) { mu.Lock(); told = append(told, p); mu.Unlock() })
	defer cancel()
	if !e.decide("ann", "dp.shop.confidential", access.ViaSQL).Allow {
		t.Fatal("grant does not allow")
	}
	gen := e.svc.Generation()
	if _, err := e.svc.Revoke(ctx, e.subject("nobody"), g.ID, ""); rhizome.Code(err) != rhizome.EForbidden {
		t.Errorf("stranger revoked: %v", err)
	}
	if _, err := e.svc.Revoke(ctx, e.subject("ann"), g.ID, "done"); err != nil { // the grantee may give it up
		t.Fatal(err)
	}
	if e.svc.Generation() <= gen {
		t.Error("generation did not move")
	}
	if d := e.decide("ann", "dp.shop.confidential", access.ViaSQL); d.Allow {
		t.Error("revoked grant allows")
	}
	mu.Lock()
	if !reflect.DeepEqual(told, []string{"dp.shop.confidential"}) {
		t.Errorf("subscribers told %v", told)
	}
	mu.Unlock()
	if _, err := e.svc.Revoke(ctx, e.subject("olga"), g.ID, ""); rhizome.Code(err) != rhizome.EConflict {
		t.Errorf("revoked twice: %v", err)
	}
	rs, _ := e.svc.ListRequests(ctx, e.subject("ann"), access.RequestFilter{State: access.StateRevoked})
	if len(rs) != 1 {
		t.Errorf("revoked requests: %+v", rs)
	}
}

// An apply takes effect at once although the cache TTL is an hour.
func TestApplyInvalidates(t *testing.T) {
	e := newEnv(t, "")
	if !e.decide("ann", "dp.shop.internal", access.ViaREST).Allow {
		t.Fatal("internal denied")
	}
	gen := e.svc.Generation()
	e.apply(strings.Replace(product("internal", ""), "sensitivity_level: internal", "sensitivity_level: confidential", 1))
	if e.decide("ann", "dp.shop.internal", access.ViaREST).Allow {
		t.Error("stale decision after apply")
	}
	if e.svc.Generation() <= gen {
		t.Error("generation did not move")
	}
}

func TestExplain(t *testing.T) {
	e := newEnv(t, "")
	d, err := e.svc.Explain(ctx, e.subject("olga"), "dp.shop.internal", "nobody", "")
	if err != nil || d.Allow {
		t.Errorf("olga explains nobody: %+v %v", d, err)
	}
	if _, err := e.svc.Explain(ctx, e.subject("ann"), "dp.shop.internal", "nobody", ""); rhizome.Code(err) != rhizome.EForbidden {
		t.Errorf("ann explains for nobody: %v", err)
	}
	if d, err := e.svc.Explain(ctx, e.subject("ann"), "dp.shop.internal", "", ""); err != nil || !d.Allow {
		t.Errorf("ann explains herself: %+v %v", d, err)
	}
}

// Decide answers from memory: far below the 2 ms point-query budget.
func TestDecideIsFast(t *testing.T) {
	e := newEnv(t, "")
	e.approve("sam", e.request("gus", "dp.shop.restricted", "30d").ID, access.Approval{RowFilter: "region = 'EU'"})
	subj := e.subject("gus")
	req := access.Request{Subject: subj, ProductID: "dp.shop.restricted", Via: access.ViaSQL}
	if _, err := e.svc.Decide(ctx, req); err != nil {
		t.Fatal(err)
	}
	const n = 2000
	start := time.Now()
	for range n {
		if _, err := e.svc.Decide(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	if per := time.Since(start) / n; per > 200*time.Microsecond {
		t.Errorf("Decide takes %s", per)
	}
}

func BenchmarkDecide(b *testing.B) {
	e := newEnv(b, "")
	req := access.Request{Subject: e.subject("ann"), ProductID: "dp.shop.internal", Via: access.ViaSQL}
	for b.Loop() {
		if _, err := e.svc.Decide(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// Decisions, grant changes and applies run concurrently (go test -race).
func TestConcurrentDecisions(t *testing.T) {
	e := newEnv(t, "")
	ann := e.subject("ann")
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				if _, err := e.svc.Decide(ctx, access.Request{Subject: ann, ProductID: "dp.shop." + levels[i], Via: access.ViaSQL}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for range 5 {
		g := e.approve("sam", e.request("ann", "dp.shop.confidential", "1d").ID, access.Approval{})
		if _, err := e.svc.Revoke(ctx, e.subject("sam"), g.ID, ""); err != nil {
			t.Fatal(err)
		}
		e.svc.Invalidate()
	}
	wg.Wait()
}
