package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/identity"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/metastore/sqlite"
	"github.com/rhizome-mesh/rhizome/server"
	"github.com/rhizome-mesh/rhizome/spec"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

// env is one server over a fresh store, with an admin token and a token for
// bob (a member of sales-team only).
type env struct {
	t     *testing.T
	srv   *server.Server
	ts    *httptest.Server
	admin string
	bob   string
	alice string
}

var testClock = fixedClock{time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}

func newEnv(t *testing.T, store metastore.Store) *env {
	t.Helper()
	clock := testClock
	srv := server.New(server.Deps{Store: store, Clock: clock, Version: "test"})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	m := identity.Minter{Store: store, Clock: clock}
	mk := func(p string, admin bool) string {
		_, secret, err := m.Create(context.Background(), identity.TokenSpec{Principal: p, Admin: admin})
		if err != nil {
			t.Fatal(err)
		}
		return secret
	}
	return &env{t: t, srv: srv, ts: ts, admin: mk("admin", true), bob: mk("bob@example.com", false), alice: mk("alice@example.com", false)}
}

func newSQLiteEnv(t *testing.T) *env {
	store, err := sqlite.Open(context.Background(), t.TempDir()+"/m.db", metastore.Options{Clock: testClock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return newEnv(t, store)
}

// do sends a request and decodes a JSON answer into out (if non-nil).
func (e *env) do(token, method, path string, body any, header map[string]string, out any) int {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, e.ts.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: %d %s: decoding: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode
}

const meshYAML = `apiVersion: rhizome/v1
kind: Domain
name: sales
description: Orders and revenue
owner_teams: [sales-team]
bounded_context:
  entities: [order]
---
apiVersion: rhizome/v1
kind: Team
name: sales-team
domain: sales
members:
  - principal: bob@example.com
    roles: [technical_owner, developer]
  - principal: carol@example.com
    roles: [business_owner, steward]
communication_channel: "slack:#sales-data"
---
apiVersion: rhizome/v1
kind: DataProduct
id: dp.sales.orders
name: Orders
owner_team: sales-team
domain: sales
description: Every order
tags: [sales, orders]
sla: {freshness: 1 hour, availability: 99.9%, accuracy: 99%}
current_version: 1.0.0
sensitivity_level: internal
retention_period_days: 365
output_ports:
  - {name: orders, type: table}
`

func applyReq(dry bool, files ...rhizome.SourceFile) rhizome.ApplyRequest {
	return rhizome.ApplyRequest{Files: files, DryRun: dry}
}

func file(name, content string) rhizome.SourceFile {
	return rhizome.SourceFile{Name: name, Content: content}
}

func TestAPI(t *testing.T) { runAPI(t, newSQLiteEnv) }

func runAPI(t *testing.T, newEnv func(*testing.T) *env) {
	t.Run("Unauthorized", func(t *testing.T) {
		e := newEnv(t)
		var er struct{ Error rhizome.Error }
		if got := e.do("", "GET", "/api/v1/products", nil, nil, &er); got != 401 || er.Error.Code != rhizome.EUnauthorized {
			t.Fatalf("no token: %d %+v", got, er)
		}
		if got := e.do("rhz_nope", "GET", "/api/v1/products", nil, nil, &er); got != 401 {
			t.Fatalf("bad token: %d", got)
		}
		if got := e.do("", "GET", "/api/v1/schemas/products", nil, nil, nil); got != 200 {
			t.Fatalf("schemas are public: %d", got)
		}
	})
	t.Run("ApplyPlanHistory", func(t *testing.T) {
		e := newEnv(t)
		var res rhizome.ApplyResult
		if got := e.do(e.admin, "POST", "/api/v1/apply", applyReq(true, file("mesh.yaml", meshYAML)), nil, &res); got != 200 {
			t.Fatalf("dry run: %d", got)
		}
		if res.Applied || res.Summary.Create != 3 {
			t.Fatalf("dry run result %+v", res)
		}
		var page metastore.Page
		e.do(e.admin, "GET", "/api/v1/products", nil, nil, &page)
		if len(page.Items) != 0 {
			t.Fatalf("dry run wrote: %d products", len(page.Items))
		}
		if got := e.do(e.admin, "POST", "/api/v1/apply", applyReq(false, file("mesh.yaml", meshYAML)), nil, &res); got != 200 || !res.Applied {
			t.Fatalf("apply: %d %+v", got, res)
		}
		// Re-apply: all unchanged.
		e.do(e.admin, "POST", "/api/v1/apply", applyReq(false, file("mesh.yaml", meshYAML)), nil, &res)
		if res.Summary.Unchanged != 3 || res.Summary.Create+res.Summary.Update != 0 {
			t.Fatalf("re-apply: %+v", res.Summary)
		}
		// Update one field: a diff naming it.
		changed := strings.Replace(meshYAML, "freshness: 1 hour", "freshness: 30min", 1)
		e.do(e.bob, "POST", "/api/v1/apply", applyReq(false, file("mesh.yaml", changed)), nil, &res)
		var upd *rhizome.Change
		for i := range res.Changes {
			if res.Changes[i].Action == rhizome.ActionUpdate {
				upd = &res.Changes[i]
			}
		}
		if upd == nil || upd.ID != "dp.sales.orders" || len(upd.Diff) != 1 || upd.Diff[0].Path != "sla.freshness" || upd.Diff[0].Old != "1 hour" || upd.Diff[0].New != "30min" || upd.Revision != 2 {
			t.Fatalf("update plan: %+v", res.Changes)
		}
		var hist struct{ Items []rhizome.Revision }
		e.do(e.admin, "GET", "/api/v1/products/dp.sales.orders/history", nil, nil, &hist)
		if len(hist.Items) != 2 || hist.Items[0].Actor != "admin" || hist.Items[1].Actor != "bob@example.com" || hist.Items[1].Op != rhizome.OpUpdate {
			t.Fatalf("history: %+v", hist.Items)
		}
		// Versions and the stable version URL.
		var v rhizome.ProductVersion
		if got := e.do(e.admin, "GET", "/api/v1/products/dp.sales.orders/versions/1.0.0", nil, nil, &v); got != 200 || !v.Current || v.Revision != 2 {
			t.Fatalf("version: %d %+v", got, v)
		}
		// The manifest comes back as applied.
		var obj rhizome.Object
		e.do(e.admin, "GET", "/api/v1/products/dp.sales.orders", nil, nil, &obj)
		var m map[string]any
		_ = json.Unmarshal(obj.Body, &m)
		if m["sensitivity_level"] != "internal" || obj.Labels.OwnerTeam != "sales-team" || obj.Revision != 2 {
			t.Fatalf("get: %+v %s", obj, obj.Body)
		}
	})
	t.Run("Invalid", func(t *testing.T) {
		e := newEnv(t)
		bad := strings.Replace(meshYAML, "owner_team: sales-team", "owner_tem: sales-team", 1)
		var er struct{ Error rhizome.Error }
		if got := e.do(e.admin, "POST", "/api/v1/apply", applyReq(false, file("good.yaml", meshYAML[:strings.Index(meshYAML, "---")]), file("bad.yaml", bad)), nil, &er); got != 422 {
			t.Fatalf("status %d", got)
		}
		found := false
		for _, p := range er.Error.Problems {
			if p.File == "bad.yaml" && strings.Contains(p.Hint, "owner_team") && p.Line > 0 {
				found = true
			}
		}
		if !found {
			t.Fatalf("no problem naming the misspelt field: %+v", er.Error)
		}
		var page metastore.Page
		e.do(e.admin, "GET", "/api/v1/domains", nil, nil, &page)
		if len(page.Items) != 0 {
			t.Fatal("a bad file in the input still applied the good one")
		}
	})
	t.Run("TooLarge", func(t *testing.T) {
		e := newEnv(t)
		big := strings.Repeat("#", server.MaxBodyBytes+10)
		var er struct{ Error rhizome.Error }
		if got := e.do(e.admin, "POST", "/api/v1/apply", big, map[string]string{"Content-Type": "application/yaml"}, &er); got != 413 || er.Error.Code != rhizome.ETooLarge {
			t.Fatalf("oversized: %d %+v", got, er)
		}
	})
	t.Run("Forbidden", func(t *testing.T) {
		e := newEnv(t)
		e.do(e.admin, "POST", "/api/v1/apply", applyReq(false, file("mesh.yaml", meshYAML)), nil, nil)
		changed := strings.Replace(meshYAML, "retention_period_days: 365", "retention_period_days: 30", 1)
		var er struct{ Error rhizome.Error }
		if got := e.do(e.alice, "POST", "/api/v1/apply", applyReq(false, file("mesh.yaml", changed)), nil, &er); got != 403 {
			t.Fatalf("alice changing sales' product: %d", got)
		}
		if !strings.Contains(er.Error.Hint, "sales-team") || !strings.Contains(er.Error.Message, "dp.sales.orders") {
			t.Fatalf("refusal does not name the team: %+v", er.Error)
		}
		if got := e.do(e.alice, "GET", "/api/v1/products/dp.sales.orders", nil, nil, nil); got != 200 {
			t.Fatalf("alice reading: %d", got)
		}
		if got := e.do(e.bob, "DELETE", "/api/v1/domains/sales", nil, nil, nil); got != 403 {
			t.Fatalf("bob deleting a domain: %d", got)
		}
	})
	t.Run("ConflictAndDelete", func(t *testing.T) {
		e := newEnv(t)
		e.do(e.admin, "POST", "/api/v1/apply", applyReq(false, file("mesh.yaml", meshYAML)), nil, nil)
		product := meshYAML[strings.LastIndex(meshYAML, "---")+4:]
		stale := map[string]string{"If-Match": `"7"`, "Content-Type": "application/yaml"}
		if got := e.do(e.bob, "PUT", "/api/v1/products/dp.sales.orders", product, stale, nil); got != 409 {
			t.Fatalf("stale If-Match: %d", got)
		}
		if got := e.do(e.bob, "PUT", "/api/v1/teams/dp.sales.orders", product, map[string]string{"Content-Type": "application/yaml"}, nil); got != 422 {
			t.Fatalf("kind/id mismatch: %d", got)
		}
		var er struct{ Error rhizome.Error }
		if got := e.do(e.admin, "DELETE", "/api/v1/teams/sales-team", nil, nil, &er); got != 409 || !strings.Contains(er.Error.Message, "dp.sales.orders") {
			t.Fatalf("deleting a referenced team: %d %+v", got, er)
		}
		if got := e.do(e.bob, "DELETE", "/api/v1/products/dp.sales.orders", nil, map[string]string{"If-Match": `"1"`}, nil); got != 200 {
			t.Fatalf("delete: %d", got)
		}
		if got := e.do(e.bob, "GET", "/api/v1/products/dp.sales.orders", nil, nil, nil); got != 404 {
			t.Fatalf("after delete: %d", got)
		}
		var hist struct{ Items []rhizome.Revision }
		e.do(e.admin, "GET", "/api/v1/products/dp.sales.orders/history", nil, nil, &hist)
		if n := len(hist.Items); n != 2 || hist.Items[1].Op != rhizome.OpDelete {
			t.Fatalf("history after delete: %+v", hist.Items)
		}
	})
	t.Run("ConcurrentApplies", func(t *testing.T) {
		e := newEnv(t)
		e.do(e.admin, "POST", "/api/v1/apply", applyReq(false, file("mesh.yaml", meshYAML)), nil, nil)
		const n = 8
		var wg sync.WaitGroup
		codes := make([]int, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				changed := strings.Replace(meshYAML, "retention_period_days: 365", fmt.Sprintf("retention_period_days: %d", 100+i), 1)
				req := applyReq(false, file("mesh.yaml", changed))
				req.Expected = map[string]int64{"DataProduct/dp.sales.orders": 1}
				codes[i] = e.do(e.bob, "POST", "/api/v1/apply", req, nil, nil)
			}()
		}
		wg.Wait()
		sort.Ints(codes)
		if codes[0] != 200 || codes[1] != 409 || codes[n-1] != 409 {
			t.Fatalf("want one 200 and the rest 409, got %v", codes)
		}
	})
	t.Run("ListFilters", func(t *testing.T) {
		e := newEnv(t)
		e.do(e.admin, "POST", "/api/v1/apply", applyReq(false, file("mesh.yaml", meshYAML)), nil, nil)
		var extra strings.Builder
		for i := range 25 {
			fmt.Fprintf(&extra, "---\napiVersion: rhizome/v1\nkind: DataProduct\nid: dp.sales.p%02d\nname: P%d\nowner_team: sales-team\ndomain: sales\ncurrent_version: 1.0.0\nsensitivity_level: %s\ntags: [t%d]\n", i, i, rhizome.SensitivityLevels()[i%4], i%3)
		}
		if got := e.do(e.bob, "POST", "/api/v1/apply", applyReq(false, file("more.yaml", extra.String())), nil, nil); got != 200 {
			t.Fatalf("apply more: %d", got)
		}
		seen := 0
		after := ""
		for {
			var page metastore.Page
			e.do(e.bob, "GET", "/api/v1/products?domain=sales&limit=10&after="+after, nil, nil, &page)
			seen += len(page.Items)
			if page.Next == "" {
				break
			}
			after = page.Next
		}
		if seen != 26 {
			t.Fatalf("paged through %d products, want 26", seen)
		}
		var page metastore.Page
		e.do(e.bob, "GET", "/api/v1/products?sensitivity=restricted&tag=t0", nil, nil, &page)
		for _, o := range page.Items {
			if o.Labels.Sensitivity != "restricted" {
				t.Fatalf("filter leaked %s", o.ID)
			}
		}
		if got := e.do(e.bob, "GET", "/api/v1/products?limit=0", nil, nil, nil); got != 422 {
			t.Fatalf("limit=0: %d", got)
		}
	})
	t.Run("Tokens", func(t *testing.T) {
		e := newEnv(t)
		var created struct {
			Token  rhizome.Token
			Secret string
		}
		if got := e.do(e.bob, "POST", "/api/v1/tokens", map[string]any{"principal": "eve@example.com"}, nil, nil); got != 403 {
			t.Fatalf("bob minting for eve: %d", got)
		}
		if got := e.do(e.admin, "POST", "/api/v1/tokens", map[string]any{"principal": "svc-ingest", "kind": "service", "name": "ci"}, nil, &created); got != 201 || !strings.HasPrefix(created.Secret, identity.SecretPrefix) {
			t.Fatalf("create: %d %+v", got, created)
		}
		var who rhizome.Principal
		e.do(created.Secret, "GET", "/api/v1/whoami", nil, nil, &who)
		if who.ID != "svc-ingest" || who.Kind != rhizome.PrincipalService {
			t.Fatalf("whoami: %+v", who)
		}
		if got := e.do(e.admin, "DELETE", "/api/v1/tokens/"+created.Token.ID, nil, nil, nil); got != 204 {
			t.Fatalf("revoke: %d", got)
		}
		if got := e.do(created.Secret, "GET", "/api/v1/whoami", nil, nil, nil); got != 401 {
			t.Fatalf("revoked token still works: %d", got)
		}
	})
	t.Run("Metrics", func(t *testing.T) {
		e := newEnv(t)
		e.do(e.admin, "GET", "/api/v1/products", nil, nil, nil)
		resp, err := http.Get(e.ts.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), `rhizome_http_requests_total{code="200",method="GET",route="/api/v1/products"}`) {
			t.Fatalf("metrics lack the request counter:\n%.2000s", b)
		}
	})
}

// TestOpenAPIInSync fails when a route is missing from openapi.json or the
// document names a route that does not exist.
func TestOpenAPIInSync(t *testing.T) {
	e := newSQLiteEnv(t)
	routes := map[string]bool{}
	err := chi.Walk(e.srv.Handler().(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routes[strings.ToLower(method)+" "+strings.TrimSuffix(route, "/")] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := server.OpenAPIDocument()
	if err != nil {
		t.Fatalf("openapi.json and openapi/*.json do not merge: %v", err)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for p, ops := range doc.Paths {
		for m := range ops {
			documented[m+" "+p] = true
		}
	}
	for r := range routes {
		if !documented[r] {
			t.Errorf("route %s is not in openapi.json", r)
		}
	}
	for d := range documented {
		if !routes[d] {
			t.Errorf("openapi.json documents %s, which the server does not serve", d)
		}
	}
	var served map[string]any
	if got := e.do("", "GET", "/api/v1/openapi.json", nil, nil, &served); got != 200 || served["openapi"] != "3.1.0" {
		t.Fatalf("serving openapi.json: %d", got)
	}
}

// TestContractRoundTrip: an ODCS contract comes back field for field, keys
// in the author's order, as it was applied.
func TestContractRoundTrip(t *testing.T) {
	e := newSQLiteEnv(t)
	raw, err := os.ReadFile("../examples/mesh/contracts/customer-360.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := spec.DecodeOne("c.yaml", raw)
	if err != nil {
		t.Fatal(err)
	}
	dom := "apiVersion: rhizome/v1\nkind: Domain\nname: customer\nowner_teams: [t]\n---\napiVersion: rhizome/v1\nkind: Team\nname: t\nmembers: [{principal: a@example.com}]\n"
	if got := e.do(e.admin, "POST", "/api/v1/apply", applyReq(false, file("d.yaml", dom), file("c.yaml", string(raw))), nil, nil); got != 200 {
		t.Fatalf("apply: %d", got)
	}
	var obj struct {
		Manifest json.RawMessage `json:"manifest"`
	}
	if got := e.do(e.admin, "GET", "/api/v1/contracts/"+doc.ID, nil, nil, &obj); got != 200 {
		t.Fatalf("get: %d", got)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, obj.Manifest); err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	_ = json.Compact(&want, doc.Body)
	if compact.String() != want.String() {
		t.Fatalf("contract changed on the way:\n got %s\nwant %s", compact.String(), want.String())
	}
}
