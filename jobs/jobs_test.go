package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/internal/testenv"
	"github.com/rhizome-mesh/rhizome/jobs"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/metastore/postgres"
	"github.com/rhizome-mesh/rhizome/metastore/sqlite"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, true)) }

// backend opens an empty metastore and returns it with the Options that
// point a Scheduler at it.
type backend struct {
	name string
	open func(t testing.TB) (metastore.Store, jobs.Options)
}

func openSQLite(t testing.TB) (metastore.Store, jobs.Options) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "metastore.db"), metastore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, jobs.Options{Store: st, Dialect: jobs.DialectSQLite, DB: st.DB()}
}

func openPostgres(t testing.TB) (metastore.Store, jobs.Options) {
	t.Helper()
	dsn := testenv.NewDatabase(t)
	st, err := postgres.Open(context.Background(), dsn, metastore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, jobs.Options{Store: st, Dialect: jobs.DialectPostgres, PostgresURL: dsn}
}

var backends = []backend{{"sqlite", openSQLite}, {"postgres", openPostgres}}

// eachBackend runs fn as a parallel-free subtest per backend.
func eachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, b) })
	}
}

// start makes and starts a Scheduler with fast test timings, stopped when
// the test ends.
func start(t testing.TB, opt jobs.Options) *jobs.Scheduler {
	t.Helper()
	if opt.PollInterval == 0 {
		opt.PollInterval = 20 * time.Millisecond
	}
	if opt.RetryDelay == 0 {
		opt.RetryDelay = 10 * time.Millisecond
	}
	ctx := context.Background()
	s, err := jobs.New(ctx, opt)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	if err := s.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return s
}

// waitRun polls the store until the run is in a final state (or want, if
// given) and returns it.
func waitRun(t testing.TB, st metastore.Store, id string, want ...rhizome.RunState) *rhizome.Run {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := st.GetRun(context.Background(), id)
		if err != nil {
			t.Fatalf("GetRun %s: %v", id, err)
		}
		if len(want) == 0 && r.State.Done() {
			return r
		}
		for _, w := range want {
			if r.State == w {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s is %s after 20s (error %q), want %v", id, r.State, r.Error, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func logText(t testing.TB, st metastore.Store, id string) string {
	t.Helper()
	logs, err := st.RunLogs(context.Background(), id, 0)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, l := range logs {
		fmt.Fprintf(&b, "%s: %s\n", l.Level, l.Msg)
	}
	return b.String()
}

func enqueue(t testing.TB, s *jobs.Scheduler, req jobs.Request) *rhizome.Run {
	t.Helper()
	r, err := s.Enqueue(context.Background(), req)
	if err != nil {
		t.Fatalf("Enqueue %+v: %v", req, err)
	}
	return r
}

func TestSucceeded(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		st, opt := b.open(t)
		var calls atomic.Int32
		opt.Queue = true
		opt.Runner = func(ctx context.Context, run *rhizome.Run, log func(level, msg string)) (jobs.RunResult, error) {
			calls.Add(1)
			if run.State != rhizome.RunRunning || run.Attempt != 1 {
				return jobs.RunResult{}, fmt.Errorf("runner got run in state %s attempt %d", run.State, run.Attempt)
			}
			log("info", "reading orders")
			return jobs.RunResult{RowsIn: 10, RowsOut: 8, Bytes: 1024, SnapshotID: 42, Version: "1.1.0"}, nil
		}
		s := start(t, opt)
		q := enqueue(t, s, jobs.Request{ProductID: "dp.orders", Actor: "alice"})
		if !strings.HasPrefix(q.ID, "run_") || len(q.ID) != 30 || q.State != rhizome.RunQueued || q.Trigger != rhizome.TriggerManual {
			t.Errorf("Enqueue = %+v; want a queued manual run with a run_ id", q)
		}
		r := waitRun(t, st, q.ID)
		if r.State != rhizome.RunSucceeded || r.RowsIn != 10 || r.RowsOut != 8 || r.Bytes != 1024 ||
			r.SnapshotID != 42 || r.Version != "1.1.0" || r.Attempt != 1 || r.Error != "" ||
			r.StartedAt == nil || r.FinishedAt == nil || r.Actor != "alice" {
			t.Errorf("run = %+v; want succeeded with the runner's stats", r)
		}
		if n := calls.Load(); n != 1 {
			t.Errorf("runner called %d times, want 1", n)
		}
		logs := logText(t, st, q.ID)
		for _, want := range []string{"queued (manual) by alice", "attempt 1 of 3 started", "info: reading orders", "attempt 1 succeeded"} {
			if !strings.Contains(logs, want) {
				t.Errorf("log lacks %q:\n%s", want, logs)
			}
		}
	})
}

func TestRetry(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		st, opt := b.open(t)
		var calls sync.Map // product -> *atomic.Int32
		opt.Queue = true
		opt.Runner = func(ctx context.Context, run *rhizome.Run, log func(level, msg string)) (jobs.RunResult, error) {
			v, _ := calls.LoadOrStore(run.ProductID, new(atomic.Int32))
			n := v.(*atomic.Int32).Add(1)
			if int(n) != run.Attempt {
				return jobs.RunResult{}, fmt.Errorf("call %d has attempt %d", n, run.Attempt)
			}
			if run.ProductID == "dp.flaky" && n < 3 {
				return jobs.RunResult{}, fmt.Errorf("source unavailable (%d)", n)
			}
			if run.ProductID == "dp.broken" {
				return jobs.RunResult{}, errors.New("bad credentials")
			}
			return jobs.RunResult{RowsOut: 1}, nil
		}
		s := start(t, opt)
		flaky := enqueue(t, s, jobs.Request{ProductID: "dp.flaky"})
		broken := enqueue(t, s, jobs.Request{ProductID: "dp.broken"})

		r := waitRun(t, st, flaky.ID)
		if r.State != rhizome.RunSucceeded || r.Attempt != 3 || r.Error != "" {
			t.Errorf("flaky run = %s, attempt %d, error %q; want succeeded on attempt 3", r.State, r.Attempt, r.Error)
		}
		logs := logText(t, st, flaky.ID)
		for _, want := range []string{"attempt 1 of 3 failed: source unavailable (1); will retry",
			"attempt 2 of 3 failed: source unavailable (2); will retry", "attempt 3 of 3 started", "attempt 3 succeeded"} {
			if !strings.Contains(logs, want) {
				t.Errorf("flaky log lacks %q:\n%s", want, logs)
			}
		}
		r = waitRun(t, st, broken.ID)
		if r.State != rhizome.RunFailed || r.Attempt != 3 || r.Error != "bad credentials" {
			t.Errorf("broken run = %s, attempt %d, error %q; want failed after 3 attempts", r.State, r.Attempt, r.Error)
		}
		if v, _ := calls.Load("dp.broken"); v.(*atomic.Int32).Load() != 3 {
			t.Errorf("broken run tried %d times, want 3", v.(*atomic.Int32).Load())
		}
	})
}

func TestTimeout(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		st, opt := b.open(t)
		deadlines := make(chan time.Duration, 2)
		opt.Queue = true
		opt.Runner = func(ctx context.Context, run *rhizome.Run, log func(level, msg string)) (jobs.RunResult, error) {
			d, ok := ctx.Deadline()
			if !ok {
				return jobs.RunResult{}, errors.New("no deadline")
			}
			deadlines <- time.Until(d)
			if run.ProductID == "dp.quick" {
				return jobs.RunResult{}, nil
			}
			<-ctx.Done()
			return jobs.RunResult{}, ctx.Err()
		}
		s := start(t, opt)
		quick := enqueue(t, s, jobs.Request{ProductID: "dp.quick"})
		if r := waitRun(t, st, quick.ID); r.State != rhizome.RunSucceeded {
			t.Fatalf("quick run %s: %s", r.State, r.Error)
		}
		// Without a Timeout, the default: 4h.
		if d := <-deadlines; d < 4*time.Hour-time.Minute || d > 4*time.Hour {
			t.Errorf("default deadline in %s, want about 4h", d)
		}

		slow := enqueue(t, s, jobs.Request{ProductID: "dp.slow", Timeout: 100 * time.Millisecond})
		r := waitRun(t, st, slow.ID)
		if r.State != rhizome.RunFailed || r.Error != "timed out after 100ms" || r.Attempt != 1 {
			t.Errorf("slow run = %s, attempt %d, error %q; want failed, timed out after 100ms, not retried", r.State, r.Attempt, r.Error)
		}
		if d := <-deadlines; d > 100*time.Millisecond {
			t.Errorf("deadline in %s, want at most 100ms", d)
		}
	})
}

func TestCancel(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		st, opt := b.open(t)
		ctx := context.Background()

		// Queued: no workers in this scheduler, so the run waits.
		idle := opt
		idle.Queue = false
		s := start(t, idle)
		q := enqueue(t, s, jobs.Request{ProductID: "dp.a"})
		if err := s.Cancel(ctx, q.ID); err != nil {
			t.Fatalf("Cancel queued: %v", err)
		}
		c, err := st.GetRun(ctx, q.ID)
		if err != nil || c.State != rhizome.RunCancelled || c.FinishedAt == nil || c.Error != "cancelled" {
			t.Fatalf("after Cancel: %+v, %v; want cancelled", c, err)
		}
		if err := s.Cancel(ctx, q.ID); err != nil {
			t.Errorf("Cancel again: %v; want nothing to do", err)
		}
		if err := s.Cancel(ctx, "run_none"); rhizome.Code(err) != rhizome.ENotFound {
			t.Errorf("Cancel of an unknown run: %v, want not found", err)
		}

		// Running: the runner's context is cancelled at once.
		started := make(chan string, 1)
		causes := make(chan error, 1)
		var calls atomic.Int32
		opt.Queue = true
		opt.Runner = func(ctx context.Context, run *rhizome.Run, log func(level, msg string)) (jobs.RunResult, error) {
			calls.Add(1)
			if run.ProductID == "dp.done" {
				return jobs.RunResult{}, nil
			}
			started <- run.ID
			<-ctx.Done()
			causes <- context.Cause(ctx)
			return jobs.RunResult{}, ctx.Err()
		}
		w := start(t, opt)
		r := enqueue(t, w, jobs.Request{ProductID: "dp.b"})
		<-started
		if err := w.Cancel(ctx, r.ID); err != nil {
			t.Fatalf("Cancel running: %v", err)
		}
		// At once: before the Runner has returned.
		if c, err := st.GetRun(ctx, r.ID); err != nil || c.State != rhizome.RunCancelled {
			t.Fatalf("right after Cancel: %+v, %v; want cancelled", c, err)
		}
		select {
		case <-causes:
		case <-time.After(10 * time.Second):
			t.Fatal("the runner's context was not cancelled")
		}
		// The worker's end of the attempt does not undo the cancel, and
		// the run is not retried.
		time.Sleep(200 * time.Millisecond)
		if got := waitRun(t, st, r.ID); got.State != rhizome.RunCancelled || got.Error != "cancelled" {
			t.Errorf("after the runner returned: %s %q, want cancelled", got.State, got.Error)
		}
		// The cancelled queued run never reaches this worker.
		done := enqueue(t, w, jobs.Request{ProductID: "dp.done"})
		waitRun(t, st, done.ID)
		if n := calls.Load(); n != 2 {
			t.Errorf("runner called %d times, want 2 (the cancelled runs once, then dp.done)", n)
		}
		if err := w.Cancel(ctx, done.ID); rhizome.Code(err) != rhizome.EConflict {
			t.Errorf("Cancel of a succeeded run: %v, want conflict", err)
		}
	})
}

func TestPerProductSerialization(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		st, opt := b.open(t)
		var (
			mu        sync.Mutex
			active    = map[string]int{}
			overlap   []string
			maxGlobal int
			global    int
		)
		opt.Queue = true
		opt.Workers = 4
		opt.Runner = func(ctx context.Context, run *rhizome.Run, log func(level, msg string)) (jobs.RunResult, error) {
			mu.Lock()
			active[run.ProductID]++
			global++
			maxGlobal = max(maxGlobal, global)
			if active[run.ProductID] > 1 {
				overlap = append(overlap, run.ID)
			}
			mu.Unlock()
			time.Sleep(30 * time.Millisecond)
			mu.Lock()
			active[run.ProductID]--
			global--
			mu.Unlock()
			return jobs.RunResult{}, nil
		}
		s := start(t, opt)
		var ids []string
		for i := range 12 {
			r := enqueue(t, s, jobs.Request{ProductID: fmt.Sprintf("dp.%d", i%3)})
			ids = append(ids, r.ID)
		}
		for _, id := range ids {
			if r := waitRun(t, st, id); r.State != rhizome.RunSucceeded || r.Attempt != 1 {
				t.Errorf("run %s: %s attempt %d (%s); want succeeded on attempt 1 (waiting spends no attempt)", id, r.State, r.Attempt, r.Error)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if len(overlap) > 0 {
			t.Errorf("runs of one product overlapped: %v", overlap)
		}
		if maxGlobal > 4 {
			t.Errorf("%d runs at once, more than Workers (4)", maxGlobal)
		}
		if maxGlobal < 2 {
			t.Logf("note: runs of different products never overlapped (max %d at once)", maxGlobal)
		}
	})
}

func TestDedupeKey(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		st, opt := b.open(t)
		var calls atomic.Int32
		opt.Queue = true
		opt.Runner = func(ctx context.Context, run *rhizome.Run, log func(level, msg string)) (jobs.RunResult, error) {
			calls.Add(1)
			return jobs.RunResult{}, nil
		}
		s := start(t, opt)
		req := jobs.Request{ProductID: "dp.events", Trigger: rhizome.TriggerPush, Key: "batch-0001"}
		// Concurrent duplicates, as a retried push would send.
		runs := make([]*rhizome.Run, 4)
		var wg sync.WaitGroup
		for i := range runs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := s.Enqueue(context.Background(), req)
				if err != nil {
					t.Errorf("Enqueue: %v", err)
					return
				}
				runs[i] = r
			}()
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		for _, r := range runs[1:] {
			if r.ID != runs[0].ID {
				t.Fatalf("same key, different runs: %s and %s", runs[0].ID, r.ID)
			}
		}
		waitRun(t, st, runs[0].ID)
		again := enqueue(t, s, req)
		if again.ID != runs[0].ID || again.State != rhizome.RunSucceeded {
			t.Errorf("after the run: Enqueue = %s %s, want the succeeded run %s", again.ID, again.State, runs[0].ID)
		}
		other := enqueue(t, s, jobs.Request{ProductID: "dp.events", Trigger: rhizome.TriggerPush, Key: "batch-0002"})
		elsewhere := enqueue(t, s, jobs.Request{ProductID: "dp.other", Trigger: rhizome.TriggerPush, Key: "batch-0001"})
		if other.ID == runs[0].ID || elsewhere.ID == runs[0].ID {
			t.Errorf("different key or product shares run %s", runs[0].ID)
		}
		waitRun(t, st, other.ID)
		waitRun(t, st, elsewhere.ID)
		if n := calls.Load(); n != 3 {
			t.Errorf("runner called %d times, want 3 (once per distinct key and product)", n)
		}
	})
}

// TestPermanentFailure: an invalid-input error (bad SQL, bad config) fails
// the run at once; retrying would fail the same way.
func TestPermanentFailure(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		st, opt := b.open(t)
		var calls atomic.Int32
		opt.Queue = true
		opt.Runner = func(ctx context.Context, run *rhizome.Run, log func(level, msg string)) (jobs.RunResult, error) {
			calls.Add(1)
			// What it read before failing is kept on the record (a
			// quarantined run built rows it did not publish).
			return jobs.RunResult{RowsIn: 7, RowsOut: 5, Bytes: 99}, rhizome.Errorf(rhizome.EInvalid, "syntax error at line 2")
		}
		s := start(t, opt)
		q := enqueue(t, s, jobs.Request{ProductID: "dp.bad"})
		r := waitRun(t, st, q.ID)
		if r.State != rhizome.RunFailed || r.Attempt != 1 || !strings.Contains(r.Error, "syntax error") {
			t.Errorf("run = %s, attempt %d, error %q; want failed on attempt 1", r.State, r.Attempt, r.Error)
		}
		if r.RowsIn != 7 || r.RowsOut != 5 || r.Bytes != 99 || r.SnapshotID != 0 {
			t.Errorf("failed run records rows %d/%d, bytes %d, snapshot %d; want 7/5, 99, 0", r.RowsIn, r.RowsOut, r.Bytes, r.SnapshotID)
		}
		if n := calls.Load(); n != 1 {
			t.Errorf("runner called %d times, want 1", n)
		}
	})
}

// TestTimeoutFor: a product's own timeout bounds runs that name none.
func TestTimeoutFor(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		st, opt := b.open(t)
		opt.Queue = true
		opt.TimeoutFor = func(ctx context.Context, productID string) time.Duration {
			if productID == "dp.slow" {
				return 100 * time.Millisecond
			}
			return 0
		}
		opt.Runner = func(ctx context.Context, run *rhizome.Run, log func(level, msg string)) (jobs.RunResult, error) {
			<-ctx.Done()
			return jobs.RunResult{}, ctx.Err()
		}
		s := start(t, opt)
		q := enqueue(t, s, jobs.Request{ProductID: "dp.slow"})
		r := waitRun(t, st, q.ID)
		if r.State != rhizome.RunFailed || !strings.Contains(r.Error, "timed out after 100ms") {
			t.Errorf("run = %s %q; want failed, timed out after 100ms", r.State, r.Error)
		}
	})
}
