package pipeline_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/catalog"
	"github.com/rhizome-mesh/rhizome/connector"
	_ "github.com/rhizome-mesh/rhizome/connector/all"
	"github.com/rhizome-mesh/rhizome/engine/duckdb"
	"github.com/rhizome-mesh/rhizome/keys"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/metastore/sqlite"
	"github.com/rhizome-mesh/rhizome/pipeline"
	"github.com/rhizome-mesh/rhizome/table"
)

var ctx = context.Background()

// env is a store, a table catalog and a pipeline over temp dirs, with the
// files of testdata/ (copied, so tests may change them) as the base dir.
type env struct {
	t      *testing.T
	store  metastore.Store
	tables *table.Catalog
	pipe   *pipeline.Pipeline
	cat    *catalog.Catalog
	base   string
}

// backend says where an env keeps its metadata and tables.
type backend struct {
	name string
	// open returns a store, its table catalog, and the warehouse.
	open func(t *testing.T, dir string) (metastore.Store, *table.Catalog, string)
}

// sqliteFiles is the default deployment: SQLite and local files.
var sqliteFiles = backend{"sqlite+file", func(t *testing.T, dir string) (metastore.Store, *table.Catalog, string) {
	store, err := sqlite.Open(ctx, filepath.Join(dir, "m.db"), metastore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	wh := "file://" + filepath.Join(dir, "lake")
	tables, err := table.Open(ctx, table.Options{DB: store.DB(), Dialect: "sqlite", Warehouse: wh, Keys: keyring(t, dir)})
	if err != nil {
		t.Fatal(err)
	}
	return store, tables, wh
}}

// keyring is a local master key and data key store in dir.
func keyring(t *testing.T, dir string) *keys.Keyring {
	url, err := keys.LocalMasterKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := keys.Open(ctx, url, keys.NewFileStore(filepath.Join(dir, "keys")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ring.Close() })
	return ring
}

func newEnv(t *testing.T) *env { return newEnvOn(t, sqliteFiles) }

func newEnvOn(t *testing.T, b backend) *env {
	t.Helper()
	dir := t.TempDir()
	store, tables, wh := b.open(t, dir)
	base := filepath.Join(dir, "files")
	if err := os.MkdirAll(base, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"orders.csv", "orders_update.csv"} {
		b, _ := os.ReadFile(filepath.Join("testdata", f))
		if err := os.WriteFile(filepath.Join(base, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p := pipeline.New(pipeline.Options{Store: store, Tables: tables, WorkDir: filepath.Join(dir, "work"), BaseDir: base,
		Secrets: connector.EnvSecrets{Getenv: func(string) string { return "" }}, Warehouse: wh, ObjectStorage: true})
	return &env{t: t, store: store, tables: tables, pipe: p, cat: catalog.New(store, catalog.Options{}), base: base}
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
sensitivity_level: internal
input_ports:
  - name: raw
    connector: csv
    config: {path: orders.csv}
pipeline:
  models:
    - name: orders
      sql: |
        SELECT order_id, customer_id, CAST(amount AS DECIMAL(10, 2)) AS amount, status
        FROM raw
---
apiVersion: rhizome/v1
kind: DataProduct
id: dp.sales.revenue
name: Revenue
owner_team: sales-team
domain: sales
current_version: 2.0.0
sensitivity_level: internal
input_ports:
  - {name: orders, product: dp.sales.orders}
pipeline:
  models:
    - name: live
      sql: SELECT * FROM orders WHERE status <> 'cancelled'
    - name: revenue
      sql: |
        SELECT customer_id, sum(amount) AS revenue, count(*) AS orders
        FROM live GROUP BY customer_id
`

func (e *env) apply(content string) {
	e.t.Helper()
	if _, err := e.cat.Apply(ctx, &rhizome.Principal{ID: "admin", Admin: true}, rhizome.ApplyRequest{Files: []rhizome.SourceFile{{Name: "mesh.yaml", Content: content}}}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) run(id, product string) (jobRes struct{ rows, snap int64 }, logs []string, err error) {
	res, err := e.pipe.Run(ctx, &rhizome.Run{ID: id, ProductID: product}, func(level, msg string) { logs = append(logs, level+": "+msg) })
	jobRes.rows, jobRes.snap = res.RowsOut, res.SnapshotID
	return jobRes, logs, err
}

// count reads a product version's current table back with DuckDB.
func (e *env) count(product, version, where string) int64 {
	e.t.Helper()
	dir := e.t.TempDir()
	files, err := e.tables.Readable(ctx, table.RefFor(product, version), table.AsOf{}, dir)
	if err != nil {
		e.t.Fatal(err)
	}
	if !strings.HasPrefix(files[0], dir) {
		dir = filepath.Dir(files[0])
	}
	eng, err := duckdb.Open(ctx, duckdb.Options{AllowedDirs: []string{dir}})
	if err != nil {
		e.t.Fatal(err)
	}
	defer eng.Close()
	s, err := eng.Session(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	defer s.Close()
	if err := s.Register(ctx, "t", duckdb.Source{Format: "parquet", Paths: files}); err != nil {
		e.t.Fatal(err)
	}
	rows, err := s.Query(ctx, "SELECT count(*) FROM t "+where)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var n int64
	rows.Next()
	if err := rows.Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func TestIngestTransformPublish(t *testing.T) {
	for _, b := range []backend{sqliteFiles, postgresS3} {
		t.Run(b.name, func(t *testing.T) { testIngestTransformPublish(t, newEnvOn(t, b)) })
	}
}

func testIngestTransformPublish(t *testing.T, e *env) {
	e.apply(mesh)
	res, logs, err := e.run("run_1", "dp.sales.orders")
	if err != nil {
		t.Fatalf("run: %v\n%s", err, strings.Join(logs, "\n"))
	}
	if res.rows != 4 || res.snap == 0 {
		t.Fatalf("result %+v", res)
	}
	if n := e.count("dp.sales.orders", "1.0.0", ""); n != 4 {
		t.Fatalf("published %d rows", n)
	}
	// Downstream reads the upstream's published table.
	if res, _, err = e.run("run_2", "dp.sales.revenue"); err != nil || res.rows != 2 {
		t.Fatalf("downstream: %+v %v", res, err)
	}
	if n := e.count("dp.sales.revenue", "2.0.0", "WHERE customer_id = 'c1' AND revenue = 30.50 AND orders = 2"); n != 1 {
		t.Fatal("downstream aggregate is wrong")
	}
	// The snapshot records the run that made it.
	snaps, err := e.tables.Snapshots(ctx, table.RefFor("dp.sales.orders", "1.0.0"))
	if err != nil || len(snaps) != 1 || snaps[0].Properties["run-id"] != "run_1" {
		t.Fatalf("snapshots: %+v %v", snaps, err)
	}
	// OpenLineage: START and COMPLETE, with column lineage back to the input.
	evs, err := e.store.LineageEvents(ctx, "run_2")
	if err != nil || len(evs) != 2 {
		t.Fatalf("lineage events: %d %v", len(evs), err)
	}
	var complete struct {
		EventType string
		Inputs    []struct{ Namespace, Name string }
		Outputs   []struct {
			Name   string
			Facets struct {
				ColumnLineage struct {
					Fields map[string]struct {
						InputFields []struct{ Namespace, Name, Field string } `json:"inputFields"`
					}
				} `json:"columnLineage"`
			}
			OutputFacets struct {
				OutputStatistics struct{ RowCount int64 } `json:"outputStatistics"`
			} `json:"outputFacets"`
		}
	}
	if err := json.Unmarshal(evs[1], &complete); err != nil {
		t.Fatal(err)
	}
	up := table.RefFor("dp.sales.orders", "1.0.0")
	if complete.EventType != "COMPLETE" || len(complete.Inputs) != 1 || complete.Inputs[0].Name != up.Name {
		t.Fatalf("complete event: %+v", complete)
	}
	rev := complete.Outputs[0].Facets.ColumnLineage.Fields["revenue"].InputFields
	if len(rev) == 0 || rev[0].Field != "amount" || complete.Outputs[0].OutputFacets.OutputStatistics.RowCount != 2 {
		t.Fatalf("column lineage / statistics: %+v", complete.Outputs[0])
	}
}

func TestMergeAndAppend(t *testing.T) {
	e := newEnv(t)
	merge := strings.Replace(mesh, "        FROM raw\n", "        FROM raw\n  mode: merge\n  merge_key: [order_id]\n", 1)
	e.apply(merge)
	if _, _, err := e.run("run_1", "dp.sales.orders"); err != nil {
		t.Fatal(err)
	}
	// The source now holds an update of order 3 and a new order 5.
	e.apply(strings.Replace(merge, "path: orders.csv", "path: orders_update.csv", 1))
	if _, _, err := e.run("run_2", "dp.sales.orders"); err != nil {
		t.Fatal(err)
	}
	if n := e.count("dp.sales.orders", "1.0.0", ""); n != 5 {
		t.Fatalf("merged table has %d rows, want 5", n)
	}
	if n := e.count("dp.sales.orders", "1.0.0", "WHERE order_id = 3 AND status = 'shipped'"); n != 1 {
		t.Fatal("order 3 was not updated")
	}
	appendMode := strings.Replace(mesh, "        FROM raw\n", "        FROM raw\n  mode: append\n", 1)
	e.apply(appendMode)
	if _, _, err := e.run("run_3", "dp.sales.orders"); err != nil {
		t.Fatal(err)
	}
	if n := e.count("dp.sales.orders", "1.0.0", ""); n != 9 {
		t.Fatalf("appended table has %d rows, want 9", n)
	}
}

func TestBadRunsLeaveTheLastGoodSnapshot(t *testing.T) {
	e := newEnv(t)
	e.apply(mesh)
	if _, _, err := e.run("run_ok", "dp.sales.orders"); err != nil {
		t.Fatal(err)
	}
	before, err := e.tables.Current(ctx, table.RefFor("dp.sales.orders", "1.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, from, to, want string
		code                 rhizome.ErrorCode
	}{
		{"syntax error", "FROM raw\n", "FROM raw WHERE\n", "pipeline.models[0].sql", rhizome.EInvalid},
		{"reads /etc/passwd", "FROM raw\n", "FROM read_csv('/etc/passwd')\n", "read_csv", rhizome.EInvalid},
		{"reads a URL", "FROM raw\n", "FROM 'https://example.com/x.csv'\n", "", rhizome.EInvalid},
		{"reads an undeclared product", "FROM raw\n", "FROM revenue\n", "revenue", rhizome.EInvalid},
		{"missing file", "path: orders.csv", "path: nope.csv", "nope.csv", ""},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.apply(strings.Replace(mesh, tc.from, tc.to, 1))
			id := "run_bad_" + string(rune('a'+i))
			_, _, err := e.run(id, "dp.sales.orders")
			if err == nil {
				t.Fatal("the run succeeded")
			}
			if tc.code != "" && rhizome.Code(err) != tc.code {
				t.Fatalf("code %s: %v", rhizome.Code(err), err)
			}
			if tc.want != "" && !strings.Contains(err.Error()+problems(err), tc.want) {
				t.Fatalf("error does not mention %q: %v %s", tc.want, err, problems(err))
			}
			now, err := e.tables.Current(ctx, table.RefFor("dp.sales.orders", "1.0.0"))
			if err != nil || now.ID != before.ID {
				t.Fatalf("current snapshot moved: %+v %v", now, err)
			}
			evs, _ := e.store.LineageEvents(ctx, id)
			if len(evs) != 2 || !strings.Contains(string(evs[1]), `"FAIL"`) {
				t.Fatalf("lineage of a failed run: %s", evs)
			}
		})
	}
	if n := e.count("dp.sales.orders", "1.0.0", ""); n != 4 {
		t.Fatalf("served data changed: %d rows", n)
	}
}

func problems(err error) string {
	var b strings.Builder
	for _, p := range rhizome.ProblemsOf(err) {
		b.WriteString(p.String() + "\n")
	}
	return b.String()
}

// TestRunContext: a backfill run's window reaches the SQL.
func TestRunContext(t *testing.T) {
	e := newEnv(t)
	e.apply(strings.Replace(mesh, "        FROM raw\n", "        FROM raw, run_context WHERE window_start = TIMESTAMPTZ '2026-11-01 00:00:00+00' AND run_id = 'run_bf'\n", 1))
	from, to := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	res, err := e.pipe.Run(ctx, &rhizome.Run{ID: "run_bf", ProductID: "dp.sales.orders", Trigger: rhizome.TriggerBackfill, From: &from, To: &to}, func(string, string) {})
	if err != nil || res.RowsOut != 4 {
		t.Fatalf("backfill run: %+v %v", res, err)
	}
}

// TestEncryptedProduct: an infrastructure with encryption "AES-256" (the
// guide's) publishes data files that are not readable Parquet on disk, yet
// downstream runs and readers through the table layer get the rows.
func TestEncryptedProduct(t *testing.T) {
	e := newEnv(t)
	infra := `---
apiVersion: platform/v1
kind: DataProductInfrastructure
metadata: {name: sales-secure, namespace: sales}
spec:
  storage: {type: data-lake, format: iceberg, location: secure, encryption: "AES-256"}
`
	e.apply(strings.Replace(mesh, "sensitivity_level: internal\ninput_ports:\n  - name: raw", "sensitivity_level: internal\ninfrastructure: sales-secure\ninput_ports:\n  - name: raw", 1) + infra)
	if _, _, err := e.run("run_enc", "dp.sales.orders"); err != nil {
		t.Fatal(err)
	}
	files, _, err := e.tables.DataFiles(ctx, table.RefFor("dp.sales.orders", "1.0.0"), table.AsOf{})
	if err != nil || len(files) != 1 || !strings.HasPrefix(files[0], "rhizome+file://") {
		t.Fatalf("data files of an encrypted table: %v %v", files, err)
	}
	raw, err := os.ReadFile(strings.TrimPrefix(files[0], "rhizome+file://"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "PAR1") || strings.Contains(string(raw), "shipped") {
		t.Fatal("the data file on disk is readable Parquet")
	}
	if n := e.count("dp.sales.orders", "1.0.0", "WHERE status = 'shipped'"); n != 2 {
		t.Fatalf("decrypted read: %d shipped rows", n)
	}
	if res, _, err := e.run("run_down", "dp.sales.revenue"); err != nil || res.rows != 2 {
		t.Fatalf("downstream of an encrypted product: %+v %v", res, err)
	}
}
