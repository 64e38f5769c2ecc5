package retention_test

import (
	"context"
	"database/sql"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/audit"
	"github.com/rhizome-mesh/rhizome/catalog"
	"github.com/rhizome-mesh/rhizome/connector"
	_ "github.com/rhizome-mesh/rhizome/connector/all"
	"github.com/rhizome-mesh/rhizome/engine/duckdb"
	"github.com/rhizome-mesh/rhizome/internal/testenv"
	"github.com/rhizome-mesh/rhizome/keys"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/metastore/postgres"
	"github.com/rhizome-mesh/rhizome/metastore/sqlite"
	"github.com/rhizome-mesh/rhizome/pipeline"
	"github.com/rhizome-mesh/rhizome/retention"
	"github.com/rhizome-mesh/rhizome/table"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, false)) }

var ctx = context.Background()

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

type env struct {
	t      *testing.T
	store  metastore.Store
	tables *table.Catalog
	pipe   *pipeline.Pipeline
	cat    *catalog.Catalog
	log    *audit.Log
	enf    *retention.Enforcer
	base   string
	lake   string
	runs   int
}

func newEnv(t *testing.T, pg bool) *env {
	dir := t.TempDir()
	var store metastore.Store
	var db interface{ Close() error }
	dialect := "sqlite"
	if pg {
		s, err := postgres.Open(ctx, testenv.NewDatabase(t), metastore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		store, db, dialect = s, s, "postgres"
	} else {
		s, err := sqlite.Open(ctx, filepath.Join(dir, "m.db"), metastore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		store, db = s, s
	}
	t.Cleanup(func() { db.Close() })
	lake := filepath.Join(dir, "lake")
	url, err := keys.LocalMasterKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := keys.Open(ctx, url, keys.NewFileStore(filepath.Join(dir, "keys")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ring.Close() })
	tables, err := table.Open(ctx, table.Options{DB: store.(interface{ DB() *sql.DB }).DB(), Dialect: dialect, Warehouse: "file://" + lake, Keys: ring})
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, "files")
	if err := os.MkdirAll(base, 0o700); err != nil {
		t.Fatal(err)
	}
	p := pipeline.New(pipeline.Options{Store: store, Tables: tables, WorkDir: filepath.Join(dir, "work"), BaseDir: base,
		Secrets: connector.EnvSecrets{Getenv: func(string) string { return "" }}, Warehouse: "file://" + lake})
	log := audit.Open(audit.Options{Store: store})
	t.Cleanup(func() { log.Close() })
	enf := retention.New(retention.Options{Store: store, Tables: tables, WorkDir: filepath.Join(dir, "work"), Clock: fixedClock{now}, Audit: log})
	return &env{t: t, store: store, tables: tables, pipe: p, cat: catalog.New(store, catalog.Options{}), log: log, enf: enf, base: base, lake: lake}
}

func (e *env) apply(content string) {
	e.t.Helper()
	if _, err := e.cat.Apply(ctx, &rhizome.Principal{ID: "admin", Admin: true}, rhizome.ApplyRequest{Files: []rhizome.SourceFile{{Name: "mesh.yaml", Content: content}}}); err != nil {
		e.t.Fatal(err)
	}
}

// run publishes csv (with the header) as the product's next snapshot.
func (e *env) run(product, csv string) {
	e.t.Helper()
	if err := os.WriteFile(filepath.Join(e.base, "orders.csv"), []byte("order_id,customer_id,order_date\n"+csv), 0o600); err != nil {
		e.t.Fatal(err)
	}
	e.runs++
	var logs []string
	if _, err := e.pipe.Run(ctx, &rhizome.Run{ID: "run_" + string(rune('a'+e.runs)), ProductID: product}, func(l, m string) { logs = append(logs, m) }); err != nil {
		e.t.Fatalf("run: %v\n%s", err, strings.Join(logs, "\n"))
	}
	time.Sleep(5 * time.Millisecond) // snapshots a few ms apart, as in life
}

const mesh = `apiVersion: rhizome/v1
kind: Domain
name: sales
owner_teams: [sales-team]
---
apiVersion: rhizome/v1
kind: Team
name: sales-team
members: [{principal: bob@example.com}]
---
apiVersion: rhizome/v1
kind: DataProduct
id: dp.sales.orders
name: Orders
owner_team: sales-team
domain: sales
current_version: 1.0.0
sensitivity_level: confidential
retention_period_days: 30
custom_properties: {retention_column: order_date, subject_key: customer_id}
input_ports:
  - {name: raw, connector: csv, config: {path: orders.csv}}
pipeline:
  mode: MODE
  models:
    - name: orders
      sql: SELECT order_id, customer_id, CAST(order_date AS DATE) AS order_date FROM raw
`

func meshWith(mode string) string { return strings.Replace(mesh, "MODE", mode, 1) }

// query runs a count over parquet files with DuckDB.
func count(t *testing.T, files []string, where string) int64 {
	t.Helper()
	if len(files) == 0 {
		return 0
	}
	dirs := map[string]bool{}
	var allowed []string
	for _, f := range files {
		if d := filepath.Dir(f); !dirs[d] {
			dirs[d] = true
			allowed = append(allowed, d)
		}
	}
	eng, err := duckdb.Open(ctx, duckdb.Options{AllowedDirs: allowed})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	s, err := eng.Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Register(ctx, "t", duckdb.Source{Format: "parquet", Paths: files}); err != nil {
		t.Fatal(err)
	}
	rows, err := s.Query(ctx, "SELECT count(*) FROM t WHERE "+where)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var n int64
	rows.Next()
	if err := rows.Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// noRowBehind checks every kept snapshot (time travel) and every Parquet
// file left on disk under the lake: none holds a row where is true.
func (e *env) noRowBehind(ref table.Ref, where string) []table.Snapshot {
	e.t.Helper()
	snaps, err := e.tables.Snapshots(ctx, ref)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, s := range snaps {
		files, err := e.tables.Readable(ctx, ref, table.AsOf{SnapshotID: s.ID}, e.t.TempDir())
		if err != nil {
			e.t.Fatal(err)
		}
		if n := count(e.t, files, where); n != 0 {
			e.t.Fatalf("snapshot %d still holds %d rows where %s", s.ID, n, where)
		}
	}
	var onDisk []string
	_ = filepath.WalkDir(e.lake, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".parquet") {
			onDisk = append(onDisk, p)
		}
		return nil
	})
	if len(onDisk) == 0 {
		e.t.Fatal("no data files on disk at all")
	}
	if n := count(e.t, onDisk, where); n != 0 {
		e.t.Fatalf("%d rows where %s left in files on disk", n, where)
	}
	return snaps
}

func (e *env) current(ref table.Ref, where string) int64 {
	e.t.Helper()
	files, err := e.tables.Readable(ctx, ref, table.AsOf{}, e.t.TempDir())
	if err != nil {
		e.t.Fatal(err)
	}
	return count(e.t, files, where)
}

var ref = table.RefFor("dp.sales.orders", "1.0.0")

func TestRetentionAndErasure(t *testing.T) {
	for _, pg := range []bool{false, true} {
		name := "sqlite"
		if pg {
			name = "postgres"
		}
		t.Run(name, func(t *testing.T) { testRetentionAndErasure(t, newEnv(t, pg)) })
	}
}

func testRetentionAndErasure(t *testing.T, e *env) {
	e.apply(meshWith("append"))
	e.run("dp.sales.orders", "o1,zz-subject-1,2026-01-01\no2,c2,2026-05-20\n")
	e.run("dp.sales.orders", "o3,zz-subject-1,2026-05-25\no4,c3,2026-03-01\no5,c4,2026-05-30\n")
	old := "order_date < DATE '2026-05-02'"
	if n := e.current(ref, old); n != 2 {
		t.Fatalf("setup: %d old rows", n)
	}

	res, err := e.enf.Enforce(ctx, "dp.sales.orders", "rhizome")
	if err != nil {
		t.Fatal(err)
	}
	if res.RowsDeleted != 2 || res.SnapshotsExpired != 2 || len(res.Tables) != 1 || res.Tables[0].SnapshotID == 0 {
		t.Fatalf("enforce: %+v", res)
	}
	if snaps := e.noRowBehind(ref, old); len(snaps) != 1 {
		t.Fatalf("kept snapshots: %+v", snaps)
	}
	if n := e.current(ref, "true"); n != 3 {
		t.Fatalf("%d rows kept, want 3", n)
	}
	// Idempotent: nothing more to do.
	if res, err := e.enf.Enforce(ctx, "dp.sales.orders", "rhizome"); err != nil || res.RowsDeleted != 0 || res.SnapshotsExpired != 0 {
		t.Fatalf("second enforce: %+v %v", res, err)
	}

	// Right to be forgotten.
	e.run("dp.sales.orders", "o6,zz-subject-1,2026-05-31\n")
	rep, err := e.enf.Erase(ctx, retention.ErasureRequest{Key: "customer_id", Value: "zz-subject-1", Actor: "steward@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.RowsDeleted != 2 || len(rep.Products) != 1 || rep.Products[0].SnapshotsExpired != 2 {
		t.Fatalf("erasure report: %+v", rep)
	}
	e.noRowBehind(ref, "customer_id = 'zz-subject-1'")
	// Nor in any other file: manifests keep column bounds.
	_ = filepath.WalkDir(e.lake, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(p); strings.Contains(string(b), "zz-subject-1") {
				t.Errorf("%s still holds the subject's key", p)
			}
		}
		return nil
	})
	if n := e.current(ref, "true"); n != 2 {
		t.Fatalf("%d rows after erasure, want 2", n)
	}

	// Audited: the enforcement and the erasure, without the subject's value.
	p, err := e.log.Query(ctx, audit.Filter{ProductID: "dp.sales.orders"})
	if err != nil || len(p.Items) < 2 {
		t.Fatalf("audit: %+v %v", p, err)
	}
	er := p.Items[0]
	if er.Action != "erasure" || er.Actor != "steward@example.com" || er.Rows != 2 {
		t.Fatalf("erasure entry: %+v", er)
	}
	if v, err := e.log.Verify(ctx); err != nil || !v.OK {
		t.Fatalf("verify: %+v %v", v, err)
	}
	for _, it := range p.Items {
		if it.Action == "erasure" && strings.Contains(it.Query+it.Reason, "zz-subject-1") {
			t.Fatalf("the subject's value is in the audit log: %+v", it)
		}
	}
}

// Current data clean, an older snapshot kept for time travel not: only
// the snapshots up to that one go; later clean ones stay.
func TestRetentionExpiresOnlyDirtySnapshots(t *testing.T) {
	e := newEnv(t, false)
	e.apply(meshWith("replace"))
	e.run("dp.sales.orders", "o1,c1,2026-01-01\no2,c2,2026-05-20\n")
	e.run("dp.sales.orders", "o2,c2,2026-05-20\n")
	e.run("dp.sales.orders", "o2,c2,2026-05-20\no3,c3,2026-05-21\n")
	res, err := e.enf.Enforce(ctx, "dp.sales.orders", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if res.RowsDeleted != 0 || res.SnapshotsExpired != 1 || res.Tables[0].SnapshotID != 0 {
		t.Fatalf("enforce: %+v", res)
	}
	if snaps := e.noRowBehind(ref, "order_date < DATE '2026-05-02'"); len(snaps) != 2 {
		t.Fatalf("want the two clean snapshots kept, got %+v", snaps)
	}
}

func TestDeclarations(t *testing.T) {
	e := newEnv(t, false)
	noColumn := strings.Replace(meshWith("append"), "custom_properties: {retention_column: order_date, subject_key: customer_id}\n", "", 1)
	e.apply(noColumn)
	_, err := e.enf.Enforce(ctx, "dp.sales.orders", "rhizome")
	if rhizome.Code(err) != rhizome.EInvalid || !strings.Contains(err.Error(), "retention_column") {
		t.Fatalf("no retention column: %v", err)
	}
	if _, err := e.enf.Erase(ctx, retention.ErasureRequest{Key: "customer_id", Value: "c1"}); rhizome.Code(err) != rhizome.ENotFound {
		t.Fatalf("no subject key anywhere: %v", err)
	}
	if _, err := e.enf.Erase(ctx, retention.ErasureRequest{Value: "c1", Products: []string{"dp.sales.orders"}}); rhizome.Code(err) != rhizome.EInvalid {
		t.Fatalf("named product without a subject key: %v", err)
	}
	if _, err := e.enf.Erase(ctx, retention.ErasureRequest{Key: "customer_id"}); rhizome.Code(err) != rhizome.EInvalid {
		t.Fatalf("no value: %v", err)
	}
	wrongColumn := strings.Replace(meshWith("append"), "retention_column: order_date", "retention_column: shipped_at", 1)
	e.apply(wrongColumn)
	e.run("dp.sales.orders", "o1,c1,2026-01-01\n")
	if _, err := e.enf.Enforce(ctx, "dp.sales.orders", "rhizome"); rhizome.Code(err) != rhizome.EInvalid || !strings.Contains(err.Error(), "shipped_at") {
		t.Fatalf("unknown column: %v", err)
	}
	// Not yet published: nothing to do, no error.
	e.apply(strings.Replace(meshWith("append"), "1.0.0", "2.0.0", 1))
	if res, err := e.enf.Enforce(ctx, "dp.sales.orders", "rhizome"); err != nil {
		t.Fatalf("unpublished version: %+v %v", res, err)
	}
}

// An erasure without a key reaches every product declaring one, here a
// plain product and an encrypted one downstream of it.
func TestErasureAcrossProducts(t *testing.T) {
	e := newEnv(t, false)
	e.apply(meshWith("append") + `---
apiVersion: platform/v1
kind: DataProductInfrastructure
metadata: {name: sales-secure, namespace: sales}
spec:
  storage: {type: data-lake, format: iceberg, location: secure, encryption: "AES-256"}
---
apiVersion: rhizome/v1
kind: DataProduct
id: dp.sales.customers
name: Customers
owner_team: sales-team
domain: sales
current_version: 1.0.0
sensitivity_level: confidential
infrastructure: sales-secure
custom_properties: {subject_key: customer_id}
input_ports:
  - {name: orders, product: dp.sales.orders}
pipeline:
  models:
    - name: customers
      sql: SELECT customer_id, count(*) AS orders FROM orders GROUP BY customer_id
`)
	e.run("dp.sales.orders", "o1,c1,2026-05-01\no2,c2,2026-05-20\n")
	e.run("dp.sales.customers", "")
	e.run("dp.sales.orders", "o3,c1,2026-05-25\n")
	e.run("dp.sales.customers", "")
	cust := table.RefFor("dp.sales.customers", "1.0.0")
	if files, _, err := e.tables.DataFiles(ctx, cust, table.AsOf{}); err != nil || !strings.HasPrefix(files[0], "rhizome+file://") {
		t.Fatalf("customers should be encrypted: %v %v", files, err)
	}
	rep, err := e.enf.Erase(ctx, retention.ErasureRequest{Value: "c1", Actor: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Products) != 2 || rep.RowsDeleted != 3 || len(rep.Failed) != 0 {
		t.Fatalf("report: %+v", rep)
	}
	for _, r := range []table.Ref{ref, cust} {
		snaps, err := e.tables.Snapshots(ctx, r)
		if err != nil || len(snaps) != 1 {
			t.Fatalf("%s snapshots: %+v %v", r, snaps, err)
		}
		files, err := e.tables.Readable(ctx, r, table.AsOf{SnapshotID: snaps[0].ID}, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if n := count(t, files, "customer_id = 'c1'"); n != 0 {
			t.Fatalf("%s still holds c1", r)
		}
		if n := count(t, files, "true"); n != 1 {
			t.Fatalf("%s holds %d rows, want 1", r, n)
		}
	}
	// No data file of the encrypted table is left besides the kept one.
	var onDisk int
	_ = filepath.WalkDir(filepath.Join(e.lake, "secure"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".parquet") {
			onDisk++
		}
		return nil
	})
	if onDisk != 1 {
		t.Fatalf("%d encrypted data files on disk, want 1", onDisk)
	}
}
