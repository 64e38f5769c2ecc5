package bench

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/access"
	"github.com/rhizome-mesh/rhizome/audit"
	"github.com/rhizome-mesh/rhizome/catalog"
	"github.com/rhizome-mesh/rhizome/engine/duckdb"
	"github.com/rhizome-mesh/rhizome/identity"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/metastore/sqlite"
	"github.com/rhizome-mesh/rhizome/serve"
	"github.com/rhizome-mesh/rhizome/server"
	"github.com/rhizome-mesh/rhizome/table"
)

// The governed read path (serve) against bare DuckDB over the same
// Parquet files, the REST Arrow export's throughput and point queries.

const serveMesh = `apiVersion: rhizome/v1
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
---
apiVersion: rhizome/v1
kind: Team
name: analytics
members:
  - {principal: ann, roles: [developer]}
---
apiVersion: rhizome/v1
kind: Policy
name: shop-masks
scope: domain
domain: shop
masks:
  - {column: card, with: last4, when: always}
---
apiVersion: rhizome/v1
kind: DataProduct
id: dp.shop.orders
name: Shop orders
owner_team: shop-team
domain: shop
current_version: 1.0.0
sensitivity_level: confidential
contract: contract-shop-orders
---
apiVersion: v3.1.0
kind: DataContract
id: contract-shop-orders
version: 1.0.0
status: active
domain: shop
dataProduct: dp.shop.orders
schema:
  - name: orders
    properties:
      - {name: id, physicalType: BIGINT, classification: public}
      - {name: region, physicalType: VARCHAR, classification: internal}
      - {name: amount, physicalType: "DECIMAL(18,2)", classification: confidential}
      - {name: card, physicalType: VARCHAR, classification: internal}
`

// serveRows is the size of the benchmark table.
const serveRows = 2_000_000

type serveEnv struct {
	svc *serve.Service
	// viaFiles is the same service with products left as views over their files.
	viaFiles *serve.Service
	ann      access.Subject
	files    []string
	url      string
	token    string
}

var (
	serveOnce sync.Once
	serveBase *serveEnv
)

// newServeEnv builds (once per process) a mesh where ann reads
// dp.shop.orders with card masked and only EU rows (half the table).
func newServeEnv(b *testing.B) *serveEnv {
	serveOnce.Do(func() {
		dir, err := osMkdirTemp()
		if err != nil {
			b.Fatal(err)
		}
		store := openStoreAt(b, filepath.Join(dir, "m.db"))
		cat := catalog.New(store, catalog.Options{})
		admin := &rhizome.Principal{ID: "admin", Admin: true}
		if _, err := cat.Apply(ctx, admin, rhizome.ApplyRequest{Files: []rhizome.SourceFile{{Name: "mesh.yaml", Content: serveMesh}}}); err != nil {
			b.Fatal(err)
		}
		log := audit.Open(audit.Options{Store: store})
		acc := access.New(access.Options{Store: store, Audit: log})
		teams, _ := store.TeamsOf(ctx, "ann")
		ann := access.Subject{ID: "ann", Teams: teams}
		req, err := acc.RequestAccess(ctx, ann, access.NewRequest{ProductID: "dp.shop.orders", Purpose: "bench", Duration: "30d"})
		if err != nil {
			b.Fatal(err)
		}
		sam, _ := store.TeamsOf(ctx, "sam")
		if _, _, err := acc.Approve(ctx, access.Subject{ID: "sam", Teams: sam}, req.ID, access.Approval{RowFilter: "region = 'EU'"}); err != nil {
			b.Fatal(err)
		}
		tables, err := table.Open(ctx, table.Options{DB: store.DB(), Dialect: "sqlite", Warehouse: "file://" + filepath.Join(dir, "lake")})
		if err != nil {
			b.Fatal(err)
		}
		work := filepath.Join(dir, "work")
		eng, err := duckdb.Open(ctx, duckdb.Options{AllowedDirs: []string{work}, TempDir: filepath.Join(work, "tmp")})
		if err != nil {
			b.Fatal(err)
		}
		sess, err := eng.Session(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := sess.Exec(ctx, fmt.Sprintf(`CREATE VIEW out AS SELECT i::BIGINT AS id, CASE WHEN i %% 2 = 0 THEN 'EU' ELSE 'US' END AS region,
  CAST(i %% 100000 * 0.01 AS DECIMAL(18,2)) AS amount, '4111-0000-' || lpad((i %% 100000)::VARCHAR, 8, '0') AS card
FROM range(%d) r(i)`, serveRows)); err != nil {
			b.Fatal(err)
		}
		f := filepath.Join(work, "part.parquet")
		if _, _, err := sess.ExportParquet(ctx, "out", f); err != nil {
			b.Fatal(err)
		}
		sess.Close()
		eng.Close()
		if _, err := tables.Publish(ctx, table.PublishRequest{Ref: table.RefFor("dp.shop.orders", "1.0.0"), Files: []string{f}, Mode: table.Replace}); err != nil {
			b.Fatal(err)
		}
		files, _, err := tables.DataFiles(ctx, table.RefFor("dp.shop.orders", "1.0.0"), table.AsOf{})
		if err != nil {
			b.Fatal(err)
		}
		svc := &serve.Service{Tables: tables, Store: store, Decider: acc, Audit: log, CacheDir: filepath.Join(dir, "serve"), MaxRows: 10_000_000}
		srv := server.New(server.Deps{Store: store, Catalog: cat, Access: acc, Tables: tables, Audit: log, Serve: svc, Version: "bench"})
		ts := httptest.NewServer(srv.Handler())
		_, secret, err := identity.Minter{Store: store, Clock: rhizome.SystemClock{}}.Create(ctx, identity.TokenSpec{Principal: "ann"})
		if err != nil {
			b.Fatal(err)
		}
		viaFiles := &serve.Service{Tables: tables, Store: store, Decider: acc, Audit: log, CacheDir: filepath.Join(dir, "serve-files"), MaxRows: 10_000_000, MaterializeBytes: -1}
		serveBase = &serveEnv{svc: svc, viaFiles: viaFiles, ann: ann, files: files, url: ts.URL, token: secret}
	})
	if serveBase == nil {
		b.Fatal("serve benchmark setup failed")
	}
	return serveBase
}

const governedSQL = `SELECT region, count(*) AS n, sum(amount) AS total, count(DISTINCT card) AS cards FROM shop.orders GROUP BY region`

// drain reads every row of rows.
func drain(b *testing.B, res *serve.Result) int {
	n := 0
	vals := make([]any, len(res.Columns))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for res.Rows.Next() {
		if err := res.Rows.Scan(ptrs...); err != nil {
			b.Fatal(err)
		}
		n++
	}
	if err := res.Rows.Err(); err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkServeGovernedQuery: an aggregate over 2M rows as ann (card
// masked, row filter) through serve.Service.Query, against the same SQL
// on a bare DuckDB view over the same Parquet files (no masking, no
// filter, no checks, no audit). The ratio governed/bare is the overhead.
// "governed" is the default service (a product this small is held in
// memory, masked and filtered, once per engine); "governed-files" keeps
// it a view over the files, as products above MaterializeBytes are.
func BenchmarkServeGovernedQuery(b *testing.B) {
	e := newServeEnv(b)
	var governed, governedFiles, bare time.Duration
	run := func(svc *serve.Service, out *time.Duration) func(b *testing.B) {
		return func(b *testing.B) {
			start := time.Now()
			for b.Loop() {
				res, err := svc.Query(ctx, e.ann, governedSQL)
				if err != nil {
					b.Fatal(err)
				}
				drain(b, res)
				res.Close()
			}
			*out = time.Since(start) / time.Duration(b.N)
		}
	}
	b.Run("governed", run(e.svc, &governed))
	b.Run("governed-files", run(e.viaFiles, &governedFiles))
	b.Run("bare", func(b *testing.B) {
		eng, err := duckdb.Open(ctx, duckdb.Options{AllowedDirs: []string{filepath.Dir(e.files[0])}})
		if err != nil {
			b.Fatal(err)
		}
		defer eng.Close()
		sess, err := eng.Session(ctx)
		if err != nil {
			b.Fatal(err)
		}
		defer sess.Close()
		if _, err := sess.Exec(ctx, "CREATE SCHEMA shop; CREATE VIEW shop.orders AS SELECT * FROM read_parquet('"+e.files[0]+"')"); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for b.Loop() {
			rows, err := sess.Query(ctx, governedSQL)
			if err != nil {
				b.Fatal(err)
			}
			for rows.Next() {
			}
			rows.Close()
		}
		bare = time.Since(start) / time.Duration(b.N)
	})
	if governed > 0 && bare > 0 {
		b.Logf("governed %s (%.2fx), governed over files %s (%.2fx), bare %s", governed, float64(governed)/float64(bare),
			governedFiles, float64(governedFiles)/float64(bare), bare)
	}
}

// BenchmarkServeArrowExport: GET /products/dp.shop.orders/data?format=arrow
// of ann's 1M rows over HTTP; reports rows/s.
func BenchmarkServeArrowExport(b *testing.B) {
	e := newServeEnv(b)
	rows := serveRows / 2
	for b.Loop() {
		req, _ := http.NewRequest("GET", e.url+"/api/v1/products/dp.shop.orders/data?format=arrow", nil)
		req.Header.Set("Authorization", "Bearer "+e.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || n < int64(rows) {
			b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
		}
		b.SetBytes(n)
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkServePointQuery: one row by id through serve.Service.Query as
// ann (decision, checks, audit, masked view); reports the p50 latency.
func BenchmarkServePointQuery(b *testing.B) {
	e := newServeEnv(b)
	var lat []time.Duration
	i := 0
	for b.Loop() {
		i++
		start := time.Now()
		res, err := e.svc.Query(ctx, e.ann, fmt.Sprintf("SELECT * FROM shop.orders WHERE id = %d", (i*7919)%serveRows/2*2))
		if err != nil {
			b.Fatal(err)
		}
		if drain(b, res) != 1 {
			b.Fatal("want one row")
		}
		res.Close()
		lat = append(lat, time.Since(start))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// osMkdirTemp is a directory that outlives one benchmark (the serve
// environment is shared by the serve benchmarks of a run).
func osMkdirTemp() (string, error) { return os.MkdirTemp("", "rhizome-bench-serve-") }

func openStoreAt(b *testing.B, path string) *sqlite.Store {
	s, err := sqlite.Open(ctx, path, metastore.Options{Clock: rhizome.SystemClock{}})
	if err != nil {
		b.Fatal(err)
	}
	return s
}
