package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/jobs"
)

// BenchmarkSchedulerOverhead measures one run's trip through the queue on
// SQLite with a no-op Runner and production timings: Enqueue, a worker
// picking it up, the Runner, and the succeeded record. Target: < 50 ms.
func BenchmarkSchedulerOverhead(b *testing.B) {
	st, opt := openSQLite(b)
	started := make(chan time.Time, 1)
	opt.Queue = true
	opt.PollInterval = 200 * time.Millisecond // the default; in-process inserts wake the worker
	opt.Runner = func(ctx context.Context, run *rhizome.Run, log func(level, msg string)) (jobs.RunResult, error) {
		started <- time.Now()
		return jobs.RunResult{}, nil
	}
	s := start(b, opt)
	ctx := context.Background()
	var toStart time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		r, err := s.Enqueue(ctx, jobs.Request{ProductID: "dp.bench"})
		if err != nil {
			b.Fatal(err)
		}
		toStart += (<-started).Sub(t0)
		for {
			got, err := st.GetRun(ctx, r.ID)
			if err != nil {
				b.Fatal(err)
			}
			if got.State == rhizome.RunSucceeded {
				break
			}
			if got.State.Done() {
				b.Fatalf("run %s: %s %s", r.ID, got.State, got.Error)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/run")
	b.ReportMetric(float64(toStart.Microseconds())/1000/float64(b.N), "ms-to-start/run")
}
