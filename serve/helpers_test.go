package serve_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/access"
	"github.com/rhizome-mesh/rhizome/audit"
	"github.com/rhizome-mesh/rhizome/catalog"
	"github.com/rhizome-mesh/rhizome/engine/duckdb"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/metastore/sqlite"
	"github.com/rhizome-mesh/rhizome/serve"
	"github.com/rhizome-mesh/rhizome/table"
)

// recorder records entries in memory and appends them to the real audit
// log over the same store (so that the log accepts what serve writes).
type recorder struct {
	log *audit.Log
	mu  sync.Mutex
	all []audit.Entry
}

func (r *recorder) Record(ctx context.Context, e audit.Entry) error {
	r.mu.Lock()
	r.all = append(r.all, e)
	r.mu.Unlock()
	return r.log.Record(ctx, e)
}

func (r *recorder) entries() []audit.Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.all)
}

// last is the last entry but the ".done" ones (which count a read's
// rows once it is closed).
func (r *recorder) last() audit.Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.all) - 1; i >= 0; i-- {
		if !strings.HasSuffix(r.all[i].Action, ".done") {
			return r.all[i]
		}
	}
	return audit.Entry{}
}

// lastDone is the last ".done" entry.
func (r *recorder) lastDone() audit.Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.all) - 1; i >= 0; i-- {
		if strings.HasSuffix(r.all[i].Action, ".done") {
			return r.all[i]
		}
	}
	return audit.Entry{}
}

// rules is a Decider written for the tests: bob reads dp.sales.orders
// with email masked to its domain, secret hidden and only EU rows; he
// may not read dp.hr.salaries. admin reads everything in clear.
type rules struct{}

func (rules) Decide(ctx context.Context, req access.Request) (*access.Decision, error) {
	d := &access.Decision{Allow: true, Reason: "test rules", PolicyIDs: []string{"test"}}
	for _, c := range req.Columns {
		col := access.Column{Name: c, Expr: access.QuoteIdent(c)}
		if req.Subject.ID == "bob" && req.ProductID == "dp.sales.orders" {
			switch c {
			case "email":
				col.Mask, col.Classification = access.MaskEmailDomain, "pii"
				expr, err := access.MaskExpr(access.MaskEmailDomain, c, req.Types[c], "")
				if err != nil {
					return nil, err
				}
				col.Expr = expr
			case "secret":
				col.Hidden, col.Classification = true, "restricted"
			}
		}
		d.Columns = append(d.Columns, col)
	}
	if req.Subject.ID == "bob" {
		switch req.ProductID {
		case "dp.sales.orders":
			d.RowFilter = `"region" = 'EU'`
		default:
			return &access.Decision{Allow: false, Reason: "no grant", PolicyIDs: []string{"test"}}, nil
		}
	}
	return d, nil
}

var (
	bob   = access.Subject{ID: "bob", Teams: []string{"analytics"}}
	admin = access.Subject{ID: "admin", Admin: true}
)

type env struct {
	svc    *serve.Service
	rec    *recorder
	store  metastore.Store
	tables *table.Catalog
	lake   string
	dir    string
}

// newEnv opens a SQLite metastore, an Iceberg catalog on it, and a
// Service; it applies dp.sales.orders (orders, 1.0.0) and dp.hr.salaries
// and publishes their data.
func newEnv(t testing.TB, decider access.Decider) *env {
	t.Helper()
	return newEnvWith(t, func(metastore.Store) access.Decider {
		if decider == nil {
			return rules{}
		}
		return decider
	}, true)
}

// newEnvWith builds the env with the decider mk returns (given the
// store); with products it stores the two products' manifests itself.
func newEnvWith(t testing.TB, mk func(metastore.Store) access.Decider, products bool) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "m.db"), metastore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	lake := filepath.Join(dir, "lake")
	tables, err := table.Open(ctx, table.Options{DB: st.DB(), Dialect: "sqlite", Warehouse: "file://" + lake})
	if err != nil {
		t.Fatal(err)
	}
	log := audit.Open(audit.Options{Store: st})
	t.Cleanup(func() { log.Close() })
	rec := &recorder{log: log}
	decider := mk(st)
	svc := &serve.Service{Tables: tables, Store: st, Decider: decider, Audit: rec, CacheDir: filepath.Join(dir, "cache"),
		StatementTimeout: 20 * time.Second, MaxRows: 1000, Threads: 1}
	t.Cleanup(func() { svc.Close() })
	e := &env{svc: svc, rec: rec, store: st, tables: tables, lake: lake, dir: dir}
	if products {
		e.product(t, "dp.sales.orders", "sales", "1.0.0", nil)
		e.product(t, "dp.hr.salaries", "hr", "1.0.0", nil)
	}
	e.publish(t, "dp.sales.orders", "1.0.0", ordersSQL)
	e.publish(t, "dp.hr.salaries", "1.0.0", `SELECT * FROM (VALUES (1, 'ann', 100000), (2, 'ben', 90000)) AS t(id, name, salary)`)
	return e
}

const ordersSQL = `SELECT i AS id,
  CASE WHEN i % 2 = 0 THEN 'EU' ELSE 'US' END AS region,
  CAST(i * 10.5 AS DECIMAL(10,2)) AS amount,
  'user' || i || '@example.com' AS email,
  CASE WHEN i % 5 = 0 THEN TIMESTAMP '2026-01-01 00:00:00' + INTERVAL (i) DAY END AS deleted_at,
  'secret-' || i AS secret
FROM range(1, 21) AS r(i)`

func (e *env) product(t testing.TB, id, domain, version string, previous []string) {
	t.Helper()
	dp := rhizome.DataProduct{APIVersion: "rhizome/v1", Kind: "DataProduct", ID: id, Name: id, OwnerTeam: "sales-team", Domain: domain,
		CurrentVersion: version, PreviousVersions: previous, SensitivityLevel: "internal", Description: "test product " + id}
	body, _ := json.Marshal(dp)
	obj := &rhizome.Object{Kind: rhizome.KindDataProduct, ID: id, Body: body, Labels: rhizome.Labels{Domain: domain}}
	err := e.store.Update(context.Background(), func(tx metastore.Tx) error {
		_, err := tx.Put(context.Background(), obj, metastore.AnyRevision, "test", "apply-1")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

var seq int

// publish writes query's rows to Parquet with DuckDB and publishes them
// as the product version's table (replacing its data).
func (e *env) publish(t testing.TB, id, version, query string) int64 {
	t.Helper()
	ctx := context.Background()
	seq++
	work := filepath.Join(e.dir, fmt.Sprintf("work%d", seq))
	eng, err := duckdb.Open(ctx, duckdb.Options{AllowedDirs: []string{work}, TempDir: filepath.Join(work, "tmp")})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	sess, err := eng.Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if _, err := sess.Exec(ctx, "CREATE TABLE out AS "+query); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(work, "part.parquet")
	if _, _, err := sess.ExportParquet(ctx, "out", file); err != nil {
		t.Fatal(err)
	}
	snap, err := e.tables.Publish(ctx, table.PublishRequest{Ref: table.RefFor(id, version), Files: []string{file}, Mode: table.Replace,
		Properties: map[string]string{"product-version": version}})
	if err != nil {
		t.Fatal(err)
	}
	return snap.ID
}

// rowsOf runs query as subj and returns its rows as strings.
func rowsOf(t testing.TB, e *env, subj access.Subject, query string) ([]serve.Column, [][]string) {
	t.Helper()
	res, err := e.svc.Query(context.Background(), subj, query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer res.Close()
	var out [][]string
	n := len(res.Columns)
	rows := res.Stream()
	for rows.Next() {
		vals := make([]any, n)
		ptrs := make([]any, n)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make([]string, n)
		for i, v := range vals {
			row[i] = fmt.Sprint(duckdb.PlainValue(v))
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return res.Columns, out
}

func joinRows(rows [][]string) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(strings.Join(r, "|"))
		b.WriteString("\n")
	}
	return b.String()
}

// realMesh is the same two products as rules decides, for the real
// access.Service: bob (analytics) gets a grant on dp.sales.orders limited
// to EU rows and to every column but secret; a policy masks email to its
// domain; he has no grant on dp.hr.salaries. Both are confidential.
const realMesh = `apiVersion: rhizome/v1
kind: Domain
name: sales
owner_teams: [sales-team]
---
apiVersion: rhizome/v1
kind: Domain
name: hr
owner_teams: [hr-team]
---
apiVersion: rhizome/v1
kind: Team
name: sales-team
domain: sales
members:
  - {principal: sam, roles: [steward]}
---
apiVersion: rhizome/v1
kind: Team
name: hr-team
domain: hr
members:
  - {principal: hal, roles: [steward]}
---
apiVersion: rhizome/v1
kind: Team
name: analytics
members:
  - {principal: bob, roles: [developer]}
---
apiVersion: rhizome/v1
kind: Policy
name: email-masks
scope: global
domains_applicable: [all]
masks:
  - {column: email, with: email_domain, when: always}
---
apiVersion: rhizome/v1
kind: DataProduct
id: dp.sales.orders
name: Orders
owner_team: sales-team
domain: sales
current_version: 1.0.0
sensitivity_level: confidential
---
apiVersion: rhizome/v1
kind: DataProduct
id: dp.hr.salaries
name: Salaries
owner_team: hr-team
domain: hr
current_version: 1.0.0
sensitivity_level: confidential
`

// newRealEnv is newEnv with the real access.Service deciding.
func newRealEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	var acc *access.Service
	e := newEnvWith(t, func(st metastore.Store) access.Decider {
		cat := catalog.New(st, catalog.Options{})
		if _, err := cat.Apply(ctx, &rhizome.Principal{ID: "admin", Admin: true}, rhizome.ApplyRequest{Files: []rhizome.SourceFile{{Name: "mesh.yaml", Content: realMesh}}}); err != nil {
			t.Fatal(err)
		}
		acc = access.New(access.Options{Store: st})
		return acc
	}, false)
	req, err := acc.RequestAccess(ctx, bob, access.NewRequest{ProductID: "dp.sales.orders", Purpose: "tests", Duration: "30d"})
	if err != nil {
		t.Fatal(err)
	}
	sam := access.Subject{ID: "sam", Teams: []string{"sales-team"}}
	if _, _, err := acc.Approve(ctx, sam, req.ID, access.Approval{RowFilter: "region = 'EU'", Columns: []string{"id", "region", "amount", "email", "deleted_at"}}); err != nil {
		t.Fatal(err)
	}
	return e
}
