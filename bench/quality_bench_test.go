package bench

import (
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/rhizome-mesh/rhizome/engine/duckdb"
	"github.com/rhizome-mesh/rhizome/quality"
	"github.com/rhizome-mesh/rhizome/spec"
)

var qualityRows = flag.Int("bench.qualityrows", 10_000_000, "rows of the table BenchmarkQualityTenChecks10M checks")

// BenchmarkQualityTenChecks10M runs ten mixed checks (row count, nulls,
// null %, uniqueness, min, max, freshness, accepted values, range, length)
// on a 10M-row table through quality.Run, and in the same iteration two
// bare scans of the same five columns: bare-read computes one aggregate
// over every value of each column (the floor for anything that looks at
// values), bare-count only counts them (DuckDB then reads little more than
// validity masks). The target is ratio (ten checks / bare-read)
// <= 1.3; ratio-no-unique leaves out the uniqueness check, whose exact
// count (a bitmap of every key) is the one cost a bare read does not have.
// ratio-parquet is the same suite on the same data as a Parquet file, what
// the pipeline's gate checks (a run's exported output). The machine is
// shared: read the ratios, not the times.
func BenchmarkQualityTenChecks10M(b *testing.B) {
	dir := b.TempDir()
	e, err := duckdb.Open(ctx, duckdb.Options{AllowedDirs: []string{dir}, TempDir: dir + "/tmp"})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	s, err := e.Session(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Exec(ctx, `CREATE TABLE big AS SELECT i AS id, (i % 7)::INTEGER AS k,
		CASE WHEN i % 50 = 0 THEN NULL ELSE 'n' || (i % 1000) END AS name,
		(i % 10000) * 0.5 AS amount, TIMESTAMP '2026-11-25 00:00:00' - to_seconds(i) AS ts
		FROM range(?) r(i)`, *qualityRows); err != nil {
		b.Fatal(err)
	}
	// The gate checks a run's exported Parquet file, not a DuckDB table:
	// the same data as Parquet, read through a view.
	if _, err := s.Exec(ctx, `COPY big TO '`+dir+`/big.parquet' (FORMAT parquet)`); err != nil {
		b.Fatal(err)
	}
	if _, err := s.Exec(ctx, `CREATE VIEW pq AS SELECT * FROM read_parquet('`+dir+`/big.parquet')`); err != nil {
		b.Fatal(err)
	}
	n := float64(*qualityRows)
	mk := func(typ, col, threshold string, args map[string]any) quality.Check {
		c := quality.Check{Name: typ + "." + col, Type: typ, Column: col, Args: args}
		if threshold != "" {
			th, err := spec.ParseThreshold(threshold)
			if err != nil {
				b.Fatal(err)
			}
			c.Threshold, c.ThresholdText = th, threshold
		}
		return c
	}
	ten := []quality.Check{
		mk("row_count", "", "> 0", nil),
		mk("null_count", "name", "<= "+ftoa(n/50+1), nil),
		mk("null_percentage", "name", "<= 2%", nil),
		mk("duplicate_count", "id", "", nil),
		mk("min", "amount", ">= 0", nil),
		mk("max", "amount", "< 5000", nil),
		mk("freshness", "ts", "< 200 days", nil),
		mk("accepted_values", "k", "", map[string]any{"values": []any{0, 1, 2, 3, 4, 5, 6}}),
		mk("range", "amount", "", map[string]any{"min": 0, "max": 5000}),
		mk("length", "name", "", map[string]any{"min": 2, "max": 4}),
	}
	scan := func(q string) {
		rows, err := s.Query(ctx, q)
		if err != nil {
			b.Fatal(err)
		}
		for rows.Next() {
		}
		rows.Close()
	}
	bareCount := `SELECT count(*), count(id), count(k), count(name), count(amount), count(ts) FROM big`
	bareRead := `SELECT count(*), max(id), max(k), max(name), max(amount), max(ts) FROM big`
	opt := quality.RunOptions{Now: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)}
	var runOn func(table string, set []quality.Check)
	// nine is the suite without uniqueness, the one check whose exact
	// answer costs more than reading its column (see docs/quality-checks.md)
	nine := append(append([]quality.Check(nil), ten[:3]...), ten[4:]...)
	run := func(set []quality.Check) { runOn("big", set) }
	runOn = func(table string, set []quality.Check) {
		rep, err := quality.Run(ctx, s, table, set, opt)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range rep.Results {
			if !r.Passed {
				b.Fatalf("%s: metric %v %s %s", r.Check.Name, r.Metric, r.Threshold, r.Error)
			}
		}
	}
	scan(bareRead) // warm up
	run(ten)
	var tCount, tRead, tTen, tNine, tPqRead, tPqTen time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p0 := time.Now()
		scan(strings.ReplaceAll(bareRead, "big", "pq"))
		p1 := time.Now()
		runOn("pq", ten)
		tPqRead += p1.Sub(p0)
		tPqTen += time.Since(p1)
		t0 := time.Now()
		scan(bareRead)
		t1 := time.Now()
		run(ten)
		t2 := time.Now()
		scan(bareCount)
		t3 := time.Now()
		run(nine)
		tNine += time.Since(t3)
		tRead += t1.Sub(t0)
		tTen += t2.Sub(t1)
		tCount += t3.Sub(t2)
	}
	N := float64(b.N)
	b.ReportMetric(float64(tRead.Microseconds())/N/1000, "bare-read-ms")
	b.ReportMetric(float64(tCount.Microseconds())/N/1000, "bare-count-ms")
	b.ReportMetric(float64(tTen.Microseconds())/N/1000, "ten-checks-ms")
	b.ReportMetric(float64(tTen)/float64(tRead), "ratio")
	b.ReportMetric(float64(tTen)/float64(tCount), "ratio-vs-count")
	b.ReportMetric(float64(tNine.Microseconds())/N/1000, "nine-no-unique-ms")
	b.ReportMetric(float64(tNine)/float64(tRead), "ratio-no-unique")
	b.ReportMetric(float64(tPqRead.Microseconds())/N/1000, "parquet-bare-read-ms")
	b.ReportMetric(float64(tPqTen.Microseconds())/N/1000, "parquet-ten-checks-ms")
	b.ReportMetric(float64(tPqTen)/float64(tPqRead), "ratio-parquet")
}

func ftoa(f float64) string { return spec.Threshold{Value: f}.String()[1:] }
