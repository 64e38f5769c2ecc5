package quality

import (
	"context"
	"testing"
	"time"
)

// BenchmarkTenChecks10M runs ten mixed aggregate and row checks on a
// 10M-row table (one scan) and, in the same iteration, a bare scan that
// counts the same columns; it reports both times and their ratio (target
// <= 1.3). The uniqueness check (count DISTINCT over 10M keys) is the
// costly one, so a second ratio leaves it out.
func BenchmarkTenChecks10M(b *testing.B) {
	s := newSession(b)
	ctx := context.Background()
	exec(b, s, `CREATE TABLE big AS SELECT i AS id, (i % 7)::INTEGER AS k,
		CASE WHEN i % 50 = 0 THEN NULL ELSE 'n' || (i % 1000) END AS name,
		(i % 10000) * 0.5 AS amount, TIMESTAMP '2026-11-25 00:00:00' - to_seconds(i) AS ts
		FROM range(10000000) r(i)`)
	nine := []Check{
		chk(b, "row_count", "", "== 10000000", nil),
		chk(b, "null_count", "name", "<= 200000", nil),
		chk(b, "null_percentage", "name", "<= 2%", nil),
		chk(b, "min", "amount", ">= 0", nil),
		chk(b, "max", "amount", "< 5000", nil),
		chk(b, "freshness", "ts", "< 200 days", nil),
		chk(b, "accepted_values", "k", "", map[string]any{"values": []any{0, 1, 2, 3, 4, 5, 6}}),
		chk(b, "range", "amount", "", map[string]any{"min": 0, "max": 5000}),
		chk(b, "length", "name", "", map[string]any{"min": 2, "max": 4}),
	}
	ten := append(append([]Check(nil), nine...), chk(b, "duplicate_count", "id", "", nil))
	for _, set := range [][]Check{nine, ten} {
		for i := range set {
			set[i].Name = set[i].Type + set[i].Column
		}
	}
	scan := func(q string) func() {
		return func() {
			rows, err := s.Query(ctx, q)
			if err != nil {
				b.Fatal(err)
			}
			for rows.Next() {
			}
			rows.Close()
		}
	}
	// bare counts the columns (DuckDB reads little more than validity
	// masks); bareRead also reads every value, a fairer floor for checks
	// that look at values.
	bare := scan(`SELECT count(*), count(id), count(k), count(name), count(amount), count(ts) FROM big`)
	bareRead := scan(`SELECT count(*), max(id), max(k), max(name), max(amount), max(ts) FROM big`)
	run := func(cs []Check) {
		rep, err := Run(ctx, s, "big", cs, RunOptions{Now: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)})
		if err != nil {
			b.Fatal(err)
		}
		if !rep.Passed {
			for _, r := range rep.Results {
				if !r.Passed {
					b.Fatalf("%s: metric %v %s %s", r.Check.Name, r.Metric, r.Threshold, r.Error)
				}
			}
		}
	}
	bare() // warm up
	var tBare, tRead, tTen, tNine time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		bare()
		t1 := time.Now()
		run(ten)
		t2 := time.Now()
		run(nine)
		t3 := time.Now()
		bareRead()
		tRead += time.Since(t3)
		tBare += t1.Sub(t0)
		tTen += t2.Sub(t1)
		tNine += t3.Sub(t2)
	}
	n := float64(b.N)
	b.ReportMetric(float64(tBare.Milliseconds())/n, "bare-ms")
	b.ReportMetric(float64(tTen.Milliseconds())/n, "ten-checks-ms")
	b.ReportMetric(float64(tTen)/float64(tBare), "ratio")
	b.ReportMetric(float64(tNine.Milliseconds())/n, "nine-no-distinct-ms")
	b.ReportMetric(float64(tNine)/float64(tBare), "ratio-no-distinct")
	b.ReportMetric(float64(tRead.Milliseconds())/n, "bare-read-ms")
	b.ReportMetric(float64(tNine)/float64(tRead), "ratio-no-distinct-vs-read")
}
