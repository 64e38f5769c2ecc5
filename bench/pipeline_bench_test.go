package bench

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/catalog"
	"github.com/rhizome-mesh/rhizome/connector"
	_ "github.com/rhizome-mesh/rhizome/connector/all"
	"github.com/rhizome-mesh/rhizome/engine/duckdb"
	"github.com/rhizome-mesh/rhizome/internal/testenv"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/metastore/sqlite"
	"github.com/rhizome-mesh/rhizome/pipeline"
	"github.com/rhizome-mesh/rhizome/table"
)

// Issue 4's scales; smaller values make a quick check of the benchmarks.
var (
	csvRows = flag.Int("bench.csvrows", 10_000_000, "rows of the generated CSV that the ingest benchmarks read")
	pgRows  = flag.Int("bench.pgrows", 5_000_000, "rows of the Postgres table that BenchmarkPostgresStage5M reads")
)

// rssChildEnv, set, makes the test binary ingest the CSV it names through
// the pipeline and exit: BenchmarkIngestPeakRSS measures that process.
const rssChildEnv = "RHIZOME_BENCH_RSS_CSV"

var (
	pgOnce sync.Once
	pgStop func()
	pgErr  error
)

// TestMain stops the Postgres server that a benchmark started (only the
// Postgres benchmarks start one), and runs the peak-RSS child.
func TestMain(m *testing.M) {
	if csv := os.Getenv(rssChildEnv); csv != "" {
		os.Exit(rssChild(csv))
	}
	code := m.Run()
	if pgStop != nil {
		pgStop()
	}
	os.Exit(code)
}

// postgresServer starts the test binary's Postgres server on first use.
func postgresServer(b *testing.B) {
	b.Helper()
	pgOnce.Do(func() { _, pgStop, pgErr = testenv.Postgres() })
	if pgErr != nil {
		b.Fatal(pgErr)
	}
}

// writeCSV generates rows rows of six columns (about 57 bytes a row) into
// path, with a buffered writer and no fmt on the hot path.
func writeCSV(tb testing.TB, path string, rows int) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 4<<20)
	w.WriteString("id,customer_id,amount,status,created_at,note\n")
	statuses := []string{"new", "paid", "shipped", "cancelled"}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var buf []byte
	for i := range rows {
		buf = buf[:0]
		buf = strconv.AppendInt(buf, int64(i), 10)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, int64(i*7919%100_000), 10)
		buf = append(buf, ',')
		cents := i * 31 % 1_000_000
		buf = strconv.AppendInt(buf, int64(cents/100), 10)
		buf = append(buf, '.', byte('0'+cents/10%10), byte('0'+cents%10), ',')
		buf = append(buf, statuses[i%4]...)
		buf = append(buf, ',')
		buf = base.Add(time.Duration(i)*time.Second).AppendFormat(buf, "2006-01-02 15:04:05")
		buf = append(buf, ",note-"...)
		buf = strconv.AppendInt(buf, int64(i%9973), 36)
		buf = append(buf, '\n')
		w.Write(buf)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}

const ingestMesh = `apiVersion: rhizome/v1
kind: Domain
name: bench
owner_teams: [bench-team]
---
apiVersion: rhizome/v1
kind: Team
name: bench-team
members: [{principal: bob@example.com}]
---
apiVersion: rhizome/v1
kind: DataProduct
id: dp.bench.ingest
name: Ingest
owner_team: bench-team
domain: bench
current_version: 1.0.0
sensitivity_level: internal
input_ports:
  - name: raw
    connector: csv
    config: {path: %s}
pipeline:
  models:
    - name: ingest
      sql: SELECT * FROM raw
`

// ingestEnv is a store, table catalog and pipeline over dir, with the
// product dp.bench.ingest reading csvPath.
type ingestEnv struct {
	store metastore.Store
	pipe  *pipeline.Pipeline
}

func newIngestEnv(tb testing.TB, dir, csvPath string) (*ingestEnv, func()) {
	tb.Helper()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "m.db"), metastore.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	lake := "file://" + filepath.Join(dir, "lake")
	tables, err := table.Open(ctx, table.Options{DB: st.DB(), Dialect: "sqlite", Warehouse: lake})
	if err != nil {
		tb.Fatal(err)
	}
	mesh := fmt.Sprintf(ingestMesh, filepath.Base(csvPath))
	if _, err := catalog.New(st, catalog.Options{}).Apply(ctx, &rhizome.Principal{ID: "admin", Admin: true},
		rhizome.ApplyRequest{Files: []rhizome.SourceFile{{Name: "mesh.yaml", Content: mesh}}}); err != nil {
		tb.Fatal(err)
	}
	p := pipeline.New(pipeline.Options{Store: st, Tables: tables, WorkDir: filepath.Join(dir, "work"), BaseDir: filepath.Dir(csvPath),
		Secrets: connector.EnvSecrets{Getenv: func(string) string { return "" }}, Warehouse: lake})
	return &ingestEnv{store: st, pipe: p}, func() { st.Close() }
}

// run runs the product once. load is the time from the start of ingest
// to the start of the transform (staging the CSV, registering it with
// DuckDB (a view over the file since issue 4's fixes; a table before) and
// counting its rows); rest is the transform, the Parquet export and the
// publish.
func (e *ingestEnv) run(id string) (rows int64, load, rest time.Duration, err error) {
	var tIngest, tTransform time.Time
	logf := func(_, msg string) {
		switch {
		case strings.HasPrefix(msg, "ingest "):
			tIngest = time.Now()
		case strings.HasPrefix(msg, "transform:"):
			tTransform = time.Now()
		}
	}
	res, err := e.pipe.Run(ctx, &rhizome.Run{ID: id, ProductID: "dp.bench.ingest"}, logf)
	if err == nil && !tIngest.IsZero() && !tTransform.IsZero() {
		load, rest = tTransform.Sub(tIngest), time.Since(tTransform)
	}
	return res.RowsOut, load, rest, err
}

// bareCSVToParquet is the ingest baseline: one COPY in a bare sandboxed
// DuckDB session, CSV to a zstd Parquet file (the pipeline's settings).
func bareCSVToParquet(tb testing.TB, csvPath, out string) int64 {
	tb.Helper()
	eng, err := duckdb.Open(ctx, duckdb.Options{AllowedDirs: []string{filepath.Dir(csvPath), filepath.Dir(out)},
		TempDir: filepath.Join(filepath.Dir(out), "duck-tmp")})
	if err != nil {
		tb.Fatal(err)
	}
	defer eng.Close()
	s, err := eng.Session(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	var n int64
	q := fmt.Sprintf("COPY (SELECT * FROM read_csv('%s')) TO '%s' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)", csvPath, out)
	rows, err := s.Query(ctx, q)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	if !rows.Next() {
		tb.Fatal("COPY returned no row count", rows.Err())
	}
	if err := rows.Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// settle writes dirty pages back outside the timed part, so that the
// writeback of one side's hundreds of MB does not throttle the other's.
func settle(b *testing.B) {
	b.StopTimer()
	syscall.Sync()
	b.StartTimer()
}

// BenchmarkIngestCSV10M ingests a generated 10M-row CSV (six columns,
// about 570 MB) through pipeline.Run: the csv connector, DuckDB, Parquet
// and an Iceberg publish. Baseline in the same benchmark: the bare DuckDB
// COPY of the same file to Parquet. Target: ratio >= 0.8.
func BenchmarkIngestCSV10M(b *testing.B) {
	dir := b.TempDir()
	csvPath := filepath.Join(dir, "data", "big.csv")
	if err := os.MkdirAll(filepath.Dir(csvPath), 0o700); err != nil {
		b.Fatal(err)
	}
	writeCSV(b, csvPath, *csvRows)
	e, closeEnv := newIngestEnv(b, dir, csvPath)
	defer closeEnv()
	var rhz, bare, load, rest time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		settle(b)
		t0 := time.Now()
		rows, l, r, err := e.run(fmt.Sprintf("run_%d", i))
		if err != nil {
			b.Fatal(err)
		}
		rhz += time.Since(t0)
		load, rest = load+l, rest+r
		if rows != int64(*csvRows) {
			b.Fatalf("pipeline published %d rows, want %d", rows, *csvRows)
		}
		out := filepath.Join(dir, "bare", fmt.Sprintf("bare-%d.parquet", i))
		if err := os.MkdirAll(filepath.Dir(out), 0o700); err != nil {
			b.Fatal(err)
		}
		settle(b)
		t0 = time.Now()
		if n := bareCSVToParquet(b, csvPath, out); n != int64(*csvRows) {
			b.Fatalf("DuckDB copied %d rows, want %d", n, *csvRows)
		}
		bare += time.Since(t0)
		os.Remove(out)
	}
	b.StopTimer()
	n := float64(*csvRows) * float64(b.N)
	b.ReportMetric(n/rhz.Seconds(), "rows/s")
	b.ReportMetric(n/bare.Seconds(), "bare-duckdb-rows/s")
	b.ReportMetric(bare.Seconds()/rhz.Seconds(), "ratio")
	b.ReportMetric(load.Seconds()/float64(b.N), "load-s/op")
	b.ReportMetric(rest.Seconds()/float64(b.N), "transform+export+publish-s/op")
}

// BenchmarkIngestPeakRSS reports the peak resident memory of a process
// that ingests the 10M-row CSV through pipeline.Run (a re-exec of this
// binary, so the benchmark's own memory does not count). Target: none
// set; reported for issue 4.
func BenchmarkIngestPeakRSS(b *testing.B) {
	dir := b.TempDir()
	csvPath := filepath.Join(dir, "big.csv")
	writeCSV(b, csvPath, *csvRows)
	var peak int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), rssChildEnv+"="+csvPath)
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("ingest child: %v\n%s", err, out)
		}
		ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		if !ok {
			b.Fatal("no rusage for the child")
		}
		peak = max(peak, ru.Maxrss) // KiB on Linux
	}
	b.StopTimer()
	b.ReportMetric(float64(peak)/1024, "peak-RSS-MiB")
}

// rssChild is the process BenchmarkIngestPeakRSS measures: one pipeline
// run over csvPath in a fresh data dir beside it.
func rssChild(csvPath string) int {
	dir, err := os.MkdirTemp(filepath.Dir(csvPath), "rss-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	tb := &childTB{}
	e, closeEnv := newIngestEnv(tb, dir, csvPath)
	defer closeEnv()
	if _, _, _, err := e.run("run_rss"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "VmHWM:") {
				fmt.Println(l)
			}
		}
	}
	return 0
}

// childTB lets the setup helpers run outside a test: a failure exits.
type childTB struct{ testing.TB }

func (childTB) Helper() {}
func (childTB) Fatal(args ...any) {
	fmt.Fprintln(os.Stderr, args...)
	os.Exit(1)
}

// BenchmarkPostgresStage5M stages a 5M-row Postgres table (six columns)
// with the postgres connector (COPY TO STDOUT as CSV into the stage).
// Baseline in the same benchmark: psql's \copy of the same SELECT to a CSV
// file. Target: ratio >= 1.0.
func BenchmarkPostgresStage5M(b *testing.B) {
	postgresServer(b)
	dsn := testenv.NewDatabase(b)
	setup := fmt.Sprintf(`CREATE TABLE orders AS SELECT g AS id, g %% 100000 AS customer_id,
  ((g * 31) %% 1000000 / 100.0)::numeric(10, 2) AS amount,
  (ARRAY['new', 'paid', 'shipped', 'cancelled'])[1 + g %% 4] AS status,
  timestamp '2026-01-01' + g * interval '1 second' AS created_at,
  'note-' || (g %% 9973) AS note
FROM generate_series(1, %d) g`, *pgRows)
	if out, err := exec.Command("psql", dsn, "-v", "ON_ERROR_STOP=1", "-qc", setup).CombinedOutput(); err != nil {
		b.Fatalf("psql: %v\n%s", err, out)
	}
	c, err := connector.Open("postgres", map[string]any{"dsn_secret": "env:BENCH_PG_DSN", "table": "public.orders"})
	if err != nil {
		b.Fatal(err)
	}
	secrets := connector.EnvSecrets{Getenv: func(k string) string {
		if k == "BENCH_PG_DSN" {
			return dsn
		}
		return ""
	}}
	dir := b.TempDir()
	var rhz, bare time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		stage := filepath.Join(dir, fmt.Sprintf("stage-%d", i))
		if err := os.MkdirAll(stage, 0o700); err != nil {
			b.Fatal(err)
		}
		settle(b)
		t0 := time.Now()
		st, err := c.Stage(ctx, connector.Env{StageDir: stage, Secrets: secrets, Clock: rhizome.SystemClock{}})
		if err != nil {
			b.Fatal(err)
		}
		rhz += time.Since(t0)
		if st.Rows != int64(*pgRows) {
			b.Fatalf("staged %d rows, want %d", st.Rows, *pgRows)
		}
		os.RemoveAll(stage)

		out := filepath.Join(dir, fmt.Sprintf("psql-%d.csv", i))
		settle(b)
		t0 = time.Now()
		cmd := exec.Command("psql", dsn, "-v", "ON_ERROR_STOP=1", "-qc", `\copy (SELECT * FROM public.orders) TO '`+out+`' csv header`)
		if msg, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("psql: %v\n%s", err, msg)
		}
		bare += time.Since(t0)
		os.Remove(out)
	}
	b.StopTimer()
	n := float64(*pgRows) * float64(b.N)
	b.ReportMetric(n/rhz.Seconds(), "rows/s")
	b.ReportMetric(n/bare.Seconds(), "psql-rows/s")
	b.ReportMetric(bare.Seconds()/rhz.Seconds(), "ratio")
}
