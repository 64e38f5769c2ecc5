package catalog_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/catalog"
	"github.com/rhizome-mesh/rhizome/examples"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/metastore/sqlite"
)

var ctx = context.Background()

type clock struct{}

func (clock) Now() time.Time { return time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) }

var (
	admin = &rhizome.Principal{ID: "admin", Admin: true}
	bob   = &rhizome.Principal{ID: "bob@example.com"}   // sales-team
	carol = &rhizome.Principal{ID: "carol@example.com"} // sales domain owner via sales-owners
	eve   = &rhizome.Principal{ID: "eve@example.com"}   // nobody
)

func newCatalog(t *testing.T) (*catalog.Catalog, metastore.Store) {
	t.Helper()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "m.db"), metastore.Options{Clock: clock{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	n := 0
	return catalog.New(s, catalog.Options{Clock: clock{}, NewID: func() string { n++; return "ap_test" + string(rune('0'+n)) }}), s
}

const base = `apiVersion: rhizome/v1
kind: Domain
name: sales
owner_teams: [sales-owners]
---
apiVersion: rhizome/v1
kind: Team
name: sales-owners
domain: sales
members: [{principal: carol@example.com, roles: [business_owner]}]
---
apiVersion: rhizome/v1
kind: Team
name: sales-team
domain: sales
members: [{principal: bob@example.com, roles: [developer]}]
`

func product(id, team string, extra string) string {
	return "---\napiVersion: rhizome/v1\nkind: DataProduct\nid: " + id + "\nname: X\nowner_team: " + team +
		"\ndomain: sales\ncurrent_version: 1.0.0\nsensitivity_level: internal\n" + extra
}

func req(dry bool, content ...string) rhizome.ApplyRequest {
	r := rhizome.ApplyRequest{DryRun: dry}
	for i, c := range content {
		r.Files = append(r.Files, rhizome.SourceFile{Name: "f" + string(rune('0'+i)) + ".yaml", Content: c})
	}
	return r
}

func mustApply(t *testing.T, c *catalog.Catalog, p *rhizome.Principal, r rhizome.ApplyRequest) *rhizome.ApplyResult {
	t.Helper()
	res, err := c.Apply(ctx, p, r)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return res
}

func TestOwnership(t *testing.T) {
	c, _ := newCatalog(t)
	mustApply(t, c, admin, req(false, base+product("dp.sales.orders", "sales-team", "")))
	cases := []struct {
		name string
		who  *rhizome.Principal
		in   string
		want rhizome.ErrorCode
	}{
		{"owner team updates its product", bob, product("dp.sales.orders", "sales-team", "description: new"), ""},
		{"domain owner updates any product of the domain", carol, product("dp.sales.orders", "sales-team", "description: by carol"), ""},
		{"outsider cannot update", eve, product("dp.sales.orders", "sales-team", "description: eve"), rhizome.EForbidden},
		{"outsider cannot create in the domain", eve, product("dp.sales.new", "sales-team", ""), rhizome.EForbidden},
		{"team member creates a product of its team", bob, product("dp.sales.new", "sales-team", ""), ""},
		{"member cannot create a domain", bob, "apiVersion: rhizome/v1\nkind: Domain\nname: other\nowner_teams: [sales-team]\n", rhizome.EForbidden},
		{"domain owner updates the domain", carol, "apiVersion: rhizome/v1\nkind: Domain\nname: sales\ndescription: Sales\nowner_teams: [sales-owners]\n", ""},
		{"team member cannot update the domain", bob, "apiVersion: rhizome/v1\nkind: Domain\nname: sales\ndescription: Bob's\nowner_teams: [sales-owners]\n", rhizome.EForbidden},
		{"global policy needs an admin", carol, "apiVersion: rhizome/v1\nkind: Policy\nname: p\nscope: global\nenforcement: required\n", rhizome.EForbidden},
		{"domain policy by its owners", carol, "apiVersion: rhizome/v1\nkind: Policy\nname: p2\nscope: domain\ndomain: sales\nenforcement: required\n", ""},
		{"team members update their team", bob, "apiVersion: rhizome/v1\nkind: Team\nname: sales-team\ndomain: sales\nmembers: [{principal: bob@example.com, roles: [developer, steward]}]\n", ""},
		{"outsider cannot join a team", eve, "apiVersion: rhizome/v1\nkind: Team\nname: sales-team\ndomain: sales\nmembers: [{principal: eve@example.com}]\n", rhizome.EForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Apply(ctx, tc.who, req(false, tc.in))
			if got := rhizome.Code(err); got != tc.want {
				t.Fatalf("got %q (%v), want %q", got, err, tc.want)
			}
			if tc.want == rhizome.EForbidden {
				var e *rhizome.Error
				e, _ = err.(*rhizome.Error)
				if e == nil || !strings.Contains(e.Hint, "team") && !strings.Contains(e.Hint, "admin") {
					t.Fatalf("refusal gives no hint: %v", err)
				}
			}
		})
	}
}

func TestDryRunAndPrune(t *testing.T) {
	c, s := newCatalog(t)
	all := base + product("dp.sales.a", "sales-team", "") + product("dp.sales.b", "sales-team", "")
	mustApply(t, c, admin, req(false, all))
	// Dropping b from the input: without --prune it stays; with it, it goes.
	less := base + product("dp.sales.a", "sales-team", "")
	res := mustApply(t, c, admin, req(false, less))
	if res.Summary.Delete != 0 {
		t.Fatalf("deleted without prune: %+v", res.Summary)
	}
	r := req(true, less)
	r.Prune = true
	res = mustApply(t, c, admin, r)
	if res.Summary.Delete != 1 || res.Applied {
		t.Fatalf("prune dry run: %+v", res)
	}
	if _, err := s.Get(ctx, rhizome.KindDataProduct, "dp.sales.b"); err != nil {
		t.Fatal("dry run deleted")
	}
	r.DryRun = false
	res = mustApply(t, c, admin, r)
	var del *rhizome.Change
	for i := range res.Changes {
		if res.Changes[i].Action == rhizome.ActionDelete {
			del = &res.Changes[i]
		}
	}
	if del == nil || del.ID != "dp.sales.b" {
		t.Fatalf("prune: %+v", res.Changes)
	}
	if _, err := s.Get(ctx, rhizome.KindDataProduct, "dp.sales.b"); rhizome.Code(err) != rhizome.ENotFound {
		t.Fatalf("b still there: %v", err)
	}
	// The domain and teams are never pruned by a product-only apply.
	if _, err := s.Get(ctx, rhizome.KindTeam, "sales-team"); err != nil {
		t.Fatal(err)
	}
}

func TestAllOrNothing(t *testing.T) {
	c, s := newCatalog(t)
	// The second file references a team that does not exist: nothing of
	// either file is written.
	_, err := c.Apply(ctx, admin, req(false, base, product("dp.sales.x", "no-such-team", "")))
	if rhizome.Code(err) != rhizome.EInvalid {
		t.Fatalf("want invalid, got %v", err)
	}
	if p := rhizome.ProblemsOf(err); len(p) == 0 || p[0].File != "f1.yaml" || p[0].Line == 0 {
		t.Fatalf("problem lacks its place: %+v", p)
	}
	page, err := s.List(ctx, metastore.ListOptions{Kind: rhizome.KindDomain})
	if err != nil || len(page.Items) != 0 {
		t.Fatalf("a failed apply wrote %d domains (%v)", len(page.Items), err)
	}
	// A pinned revision that moved fails the whole apply.
	mustApply(t, c, admin, req(false, base))
	r := req(false, base+product("dp.sales.y", "sales-team", ""))
	r.Expected = map[string]int64{"Team/sales-team": 7}
	if _, err := c.Apply(ctx, admin, r); rhizome.Code(err) != rhizome.EConflict {
		t.Fatalf("want conflict, got %v", err)
	}
	if _, err := s.Get(ctx, rhizome.KindDataProduct, "dp.sales.y"); rhizome.Code(err) != rhizome.ENotFound {
		t.Fatal("conflicting apply wrote")
	}
}

// TestSeedInfrastructure applies the guide's manifest exactly as written and
// checks that the plan says how each of its choices is carried out.
func TestSeedInfrastructure(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "examples", "mesh", "infrastructure", "marketing-campaign-data.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := newCatalog(t)
	dom := "apiVersion: rhizome/v1\nkind: Domain\nname: marketing\nowner_teams: [mkt]\n---\napiVersion: rhizome/v1\nkind: Team\nname: mkt\nmembers: [{principal: m@example.com}]\n"
	res := mustApply(t, c, admin, req(false, dom, string(raw)))
	var notes string
	for _, ch := range res.Changes {
		if ch.Kind == rhizome.KindInfrastructure {
			notes = strings.Join(ch.Notes, "\n")
		}
	}
	for _, want := range []string{"delta-lake", "Iceberg", "spark", "DuckDB", "airflow", "great-expectations", "amundsen", "AES-256"} {
		if !strings.Contains(notes, want) {
			t.Errorf("plan notes do not mention %q:\n%s", want, notes)
		}
	}
}

// TestDemoMesh applies the embedded example mesh; re-applying is a no-op.
func TestDemoMesh(t *testing.T) {
	files, err := examples.MeshFiles()
	if err != nil {
		t.Fatal(err)
	}
	var r rhizome.ApplyRequest
	for _, f := range files {
		r.Files = append(r.Files, rhizome.SourceFile{Name: f.Name, Content: string(f.Data)})
	}
	c, s := newCatalog(t)
	res := mustApply(t, c, admin, r)
	if res.Summary.Create < 20 {
		t.Fatalf("demo created only %d objects", res.Summary.Create)
	}
	res = mustApply(t, c, admin, r)
	if res.Summary.Create+res.Summary.Update+res.Summary.Delete != 0 {
		t.Fatalf("re-applying the demo changed things: %+v", res.Summary)
	}
	vs, err := s.Versions(ctx, "dp.customer.360")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, v := range vs {
		got[v.Version] = v.Current
	}
	if len(vs) != 3 || !got["2.1.0"] || got["2.0.0"] || got["1.9.0"] {
		t.Fatalf("dp.customer.360 versions: %+v", vs)
	}
}

func TestDiff(t *testing.T) {
	d, err := catalog.Diff([]byte(`{"a":1,"b":{"c":[1,2]},"gone":true}`), []byte(`{"b":{"c":[1,3,4]},"a":1,"new":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range d {
		paths = append(paths, f.Path)
	}
	if got := strings.Join(paths, " "); got != "b.c[1] b.c[2] gone new" {
		t.Fatalf("diff paths: %s", got)
	}
	if d, _ := catalog.Diff([]byte(`{"a":1,"b":2}`), []byte(`{"b":2,"a":1}`)); len(d) != 0 {
		t.Fatalf("key order counted: %+v", d)
	}
}

func TestConnectorConfigChecked(t *testing.T) {
	c, s := newCatalog(t)
	bad := base + product("dp.sales.x", "sales-team", "input_ports:\n  - name: raw\n    connector: csvv\n    config: {path: a.csv}\n  - name: raw2\n    connector: csv\n    config: {pth: a.csv}\n")
	_, err := c.Apply(ctx, admin, req(false, bad))
	ps := rhizome.ProblemsOf(err)
	var got []string
	for _, p := range ps {
		got = append(got, p.Path+": "+p.Message+" ("+p.Hint+")")
		if p.Line == 0 {
			t.Errorf("problem without a line: %+v", p)
		}
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{"input_ports[0].connector: no connector `csvv`", "`csv`", "input_ports[1].config.pth", "`path`"} {
		if !strings.Contains(all, want) {
			t.Errorf("problems lack %q:\n%s", want, all)
		}
	}
	if _, err := s.Get(ctx, rhizome.KindDataProduct, "dp.sales.x"); rhizome.Code(err) != rhizome.ENotFound {
		t.Fatal("a product with a bad connector config was applied")
	}
}
