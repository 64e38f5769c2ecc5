package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/rhizome-mesh/rhizome/access"
	"github.com/rhizome-mesh/rhizome/engine/duckdb"
	"github.com/rhizome-mesh/rhizome/identity"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/metastore/sqlite"
)

const accessMeshYAML = `---
apiVersion: rhizome/v1
kind: Team
name: finance
members:
  - principal: dave@example.com
    roles: [developer]
---
apiVersion: rhizome/v1
kind: DataProduct
id: dp.sales.margins
name: Margins
owner_team: sales-team
domain: sales
current_version: 1.0.0
sensitivity_level: confidential
`

// TestAccessRoutes walks a request through the API: explain, request,
// approve with a row filter, list, revoke, deny.
func TestAccessRoutes(t *testing.T) {
	store, err := sqlite.Open(context.Background(), t.TempDir()+"/m.db", metastore.Options{Clock: testClock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := newEnv(t, store)
	m := identity.Minter{Store: store, Clock: testClock}
	mk := func(p string) string {
		_, secret, err := m.Create(context.Background(), identity.TokenSpec{Principal: p})
		if err != nil {
			t.Fatal(err)
		}
		return secret
	}
	carol, dave := mk("carol@example.com"), mk("dave@example.com")
	if got := e.do(e.admin, "POST", "/api/v1/apply", applyReq(false, file("mesh.yaml", meshYAML), file("more.yaml", accessMeshYAML)), nil, nil); got != 200 {
		t.Fatalf("apply: %d", got)
	}
	const p = "/api/v1/products/dp.sales.margins/access"

	var d access.Decision
	if got := e.do(dave, "GET", p, nil, nil, &d); got != 200 || d.Allow {
		t.Fatalf("dave before: %d %+v", got, d)
	}
	if got := e.do(dave, "POST", "/api/v1/access-requests", map[string]any{"product_id": "dp.sales.margins"}, nil, nil); got != 422 {
		t.Errorf("no purpose: %d", got)
	}
	if got := e.do(dave, "POST", "/api/v1/access-requests", map[string]any{"product_id": "dp.nope", "purpose": "x"}, nil, nil); got != 404 {
		t.Errorf("unknown product: %d", got)
	}
	var req access.AccessRequest
	if got := e.do(dave, "POST", "/api/v1/access-requests", access.NewRequest{ProductID: "dp.sales.margins", Purpose: "budget", Duration: "30d"}, nil, &req); got != 201 || req.State != access.StatePending {
		t.Fatalf("request: %d %+v", got, req)
	}
	if got := e.do(dave, "POST", "/api/v1/access-requests", access.NewRequest{ProductID: "dp.sales.margins", Purpose: "again"}, nil, nil); got != 409 {
		t.Errorf("second request: %d", got)
	}
	if got := e.do(dave, "POST", "/api/v1/access-requests/"+req.ID+"/approve", nil, nil, nil); got != 403 {
		t.Errorf("self approval: %d", got)
	}
	var list struct{ Items []access.AccessRequest }
	e.do(e.alice, "GET", "/api/v1/access-requests", nil, nil, &list)
	if len(list.Items) != 0 {
		t.Errorf("alice sees %d requests", len(list.Items))
	}
	e.do(e.bob, "GET", "/api/v1/access-requests?state=pending&product=dp.sales.margins", nil, nil, &list)
	if len(list.Items) != 1 || list.Items[0].ID != req.ID {
		t.Errorf("bob's pending list: %+v", list.Items)
	}
	var got1 access.AccessRequest
	if got := e.do(dave, "GET", "/api/v1/access-requests/"+req.ID, nil, nil, &got1); got != 200 || got1.ID != req.ID {
		t.Errorf("get: %d", got)
	}
	if got := e.do(e.alice, "GET", "/api/v1/access-requests/"+req.ID, nil, nil, nil); got != 404 {
		t.Errorf("alice gets: %d", got)
	}

	if got := e.do(e.bob, "POST", "/api/v1/access-requests/"+req.ID+"/approve", access.Approval{RowFilter: "region = 'EU'; DROP TABLE x"}, nil, nil); got != 422 {
		t.Errorf("bad row filter: %d", got)
	}
	var ap struct {
		Request access.AccessRequest
		Grant   access.Grant
	}
	if got := e.do(e.bob, "POST", "/api/v1/access-requests/"+req.ID+"/approve", access.Approval{RowFilter: "region = 'EU'"}, nil, &ap); got != 200 || ap.Grant.ID == "" || ap.Request.State != access.StateApproved {
		t.Fatalf("approve: %d %+v", got, ap)
	}
	d = access.Decision{}
	if e.do(dave, "GET", p+"?via=sql", nil, nil, &d); !d.Allow || d.RowFilter != "region = 'EU'" || d.GrantID != ap.Grant.ID {
		t.Errorf("dave after approval: %+v", d)
	}
	d = access.Decision{}
	if got := e.do(e.bob, "GET", p+"?principal=dave@example.com", nil, nil, &d); got != 200 || !d.Allow {
		t.Errorf("bob explains dave: %d %+v", got, d)
	}
	if got := e.do(e.alice, "GET", p+"?principal=dave@example.com", nil, nil, nil); got != 403 {
		t.Errorf("alice explains dave: %d", got)
	}
	var grants struct{ Items []access.Grant }
	e.do(dave, "GET", "/api/v1/grants", nil, nil, &grants)
	if len(grants.Items) != 1 || grants.Items[0].State != access.StateActive {
		t.Errorf("grants: %+v", grants.Items)
	}
	if got := e.do(e.alice, "DELETE", "/api/v1/grants/"+ap.Grant.ID, nil, nil, nil); got != 403 {
		t.Errorf("alice revokes: %d", got)
	}
	var g access.Grant
	if got := e.do(e.bob, "DELETE", "/api/v1/grants/"+ap.Grant.ID+"?reason=done", nil, nil, &g); got != 200 || g.State != access.StateRevoked {
		t.Errorf("revoke: %d %+v", got, g)
	}
	d = access.Decision{}
	if e.do(dave, "GET", p, nil, nil, &d); d.Allow {
		t.Error("revoked grant still allows")
	}

	if e.do(dave, "POST", "/api/v1/access-requests", access.NewRequest{ProductID: "dp.sales.margins", Purpose: "again"}, nil, &req); req.State != access.StatePending {
		t.Fatalf("second request: %+v", req)
	}
	if got := e.do(carol, "POST", "/api/v1/access-requests/"+req.ID+"/deny", map[string]string{}, nil, nil); got != 422 {
		t.Errorf("deny without reason: %d", got)
	}
	var denied access.AccessRequest
	if got := e.do(carol, "POST", "/api/v1/access-requests/"+req.ID+"/deny", map[string]string{"reason": "use dp.sales.orders"}, nil, &denied); got != 200 || denied.State != access.StateDenied {
		t.Errorf("deny: %d %+v", got, denied)
	}
	e.do(dave, "GET", "/api/v1/access-requests?mine=true", nil, nil, &list)
	if len(list.Items) != 2 || list.Items[0].State != access.StateDenied || list.Items[1].State != access.StateRevoked {
		t.Errorf("dave's list: %+v", list.Items)
	}
}

// TestMasksRunInDuckDB runs every mask expression of the access package in
// the engine: each yields the masked value and keeps the column's type.
func TestMasksRunInDuckDB(t *testing.T) {
	ctx := context.Background()
	eng, err := duckdb.Open(ctx, duckdb.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	sess, err := eng.Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	const from = ` FROM (SELECT 'jane.doe@example.com' AS email, '4111111111111111' AS card, DATE '1994-07-23' AS born,` +
		` TIMESTAMP '2026-03-04 05:06:07' AS seen, CAST(1994 AS INTEGER) AS yr, CAST(NULL AS VARCHAR) AS nothing) t`
	sum := sha256.Sum256([]byte("jane.doe@example.com"))
	hash := hex.EncodeToString(sum[:])
	cases := []struct{ kind, col, typ, custom, want, wantType string }{
		{access.MaskNone, "email", "", "", "jane.doe@example.com", "VARCHAR"},
		{access.MaskNull, "born", "DATE", "", "<nil>", "DATE"},
		{access.MaskHash, "email", "", "", hash, "VARCHAR"},
		{access.MaskRedact, "email", "", "", "***", "VARCHAR"},
		{access.MaskRedact, "nothing", "", "", "<nil>", "VARCHAR"},
		{access.MaskLast4, "card", "", "", "****1111", "VARCHAR"},
		{access.MaskEmailDomain, "email", "", "", "***@example.com", "VARCHAR"},
		{access.MaskYear, "born", "DATE", "", "1994-01-01", "DATE"},
		{access.MaskYear, "seen", "TIMESTAMP", "", "2026-01-01 00:00:00", "TIMESTAMP"},
		{access.MaskTruncate, "yr", "INTEGER", "", "1990", "INTEGER"},
		{access.MaskTruncate, "email", "VARCHAR", "", "j***", "VARCHAR"},
		{access.MaskTokenize, "email", "", "", "tok_" + hash[:16], "VARCHAR"},
		{access.MaskCustom, "email", "", "upper(left({column}, 4))", "JANE", "VARCHAR"},
	}
	for _, c := range cases {
		expr, err := access.MaskExpr(c.kind, c.col, c.typ, c.custom)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := sess.Query(ctx, "SELECT "+expr+" AS v"+from)
		if err != nil {
			t.Errorf("%s: %s: %v", c.kind, expr, err)
			continue
		}
		types, _ := rows.ColumnTypes()
		var v any
		for rows.Next() {
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
		}
		rows.Close()
		got := fmt.Sprint(v)
		if tm, ok := v.(time.Time); ok {
			got = tm.Format("2006-01-02")
			if c.wantType == "TIMESTAMP" {
				got = tm.Format("2006-01-02 15:04:05")
			}
		}
		if got != c.want {
			t.Errorf("%s(%s): %q, want %q", c.kind, c.col, got, c.want)
		}
		if types[0].DatabaseTypeName() != c.wantType {
			t.Errorf("%s(%s): type %s, want %s", c.kind, c.col, types[0].DatabaseTypeName(), c.wantType)
		}
	}
}
