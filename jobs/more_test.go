package jobs_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/jobs"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/metastore/metastoretest"
	"github.com/rhizome-mesh/rhizome/metastore/sqlite"
)

// riverStates returns the River job states of the runs, by run id.
func riverStates(t testing.TB, st metastore.Store) map[string]string {
	t.Helper()
	db := st.(interface{ DB() *sql.DB }).DB()
	args := "args::text"
	if _, ok := st.(*sqlite.Store); ok {
		args = "json(args)" // stored as JSONB
	}
	rows, err := db.Query(`SELECT ` + args + `, state FROM river_job WHERE kind = 'rhizome_run'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var args, state string
		if err := rows.Scan(&args, &state); err != nil {
			t.Fatal(err)
		}
		var a struct {
			RunID string `json:"run_id"`
		}
		if err := json.Unmarshal([]byte(args), &a); err != nil {
			t.Fatalf("job args %s: %v", args, err)
		}
		out[a.RunID] = state
	}
	return out
}

func TestCancelQueuedCancelsRiverJob(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		st, opt := b.open(t)
		s := start(t, opt) // Queue false: nothing works the queue
		r := enqueue(t, s, jobs.Request{ProductID: "dp.a"})
		if got := riverStates(t, st)[r.ID]; got != "available" {
			t.Fatalf("River job of the queued run is %q, want available", got)
		}
		if err := s.Cancel(context.Background(), r.ID); err != nil {
			t.Fatal(err)
		}
		if got := riverStates(t, st)[r.ID]; got != "cancelled" {
			t.Errorf("River job after Cancel is %q, want cancelled", got)
		}
	})
}

func TestScheduleTick(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		st, opt := b.open(t)
		ctx := context.Background()
		clk := metastoretest.NewClock(time.Date(2026, 1, 5, 10, 2, 0, 0, time.UTC))
		opt.Clock = clk
		s := start(t, opt)
		// A second process sharing the queue, with the same schedules.
		s2 := start(t, opt)

		tick := func(sc *jobs.Scheduler, at time.Time) []string {
			t.Helper()
			runs, err := sc.Tick(ctx, at)
			if err != nil {
				t.Fatalf("Tick %s: %v", at, err)
			}
			var out []string
			for _, r := range runs {
				if r.Trigger != rhizome.TriggerSchedule || r.Actor != "scheduler" {
					t.Errorf("scheduled run %+v", r)
				}
				out = append(out, r.ProductID+"@"+r.ID)
			}
			return out
		}
		err := s.SetSchedules(map[string]jobs.Schedule{"dp.bad": {Cron: "every hour"}, "dp.c": {Cron: "13 10 * * *"}})
		if rhizome.Code(err) != rhizome.EInvalid || !strings.Contains(err.Error(), "dp.bad") {
			t.Fatalf("SetSchedules with a bad cron: %v, want invalid naming dp.bad", err)
		}
		// The valid schedule applied regardless.
		if got := tick(s, clk.Now().Add(11*time.Minute)); len(got) != 1 || !strings.HasPrefix(got[0], "dp.c@") {
			t.Fatalf("Tick at 10:13 = %v, want the run of dp.c", got)
		}
		scheds := map[string]jobs.Schedule{
			"dp.a": {Cron: "*/15 * * * *", Timeout: time.Minute},
			"dp.b": {Cron: "0 * * * *"},
		}
		for _, sc := range []*jobs.Scheduler{s, s2} {
			if err := sc.SetSchedules(scheds); err != nil {
				t.Fatal(err)
			}
		}
		base := clk.Now()
		if got := tick(s, base.Add(12*time.Minute)); len(got) != 0 {
			t.Errorf("Tick before 10:15 queued %v", got)
		}
		first := tick(s, base.Add(13*time.Minute)) // 10:15
		if len(first) != 1 || !strings.HasPrefix(first[0], "dp.a@") {
			t.Fatalf("Tick at 10:15 = %v, want one run of dp.a", first)
		}
		if got := tick(s, base.Add(13*time.Minute+30*time.Second)); len(got) != 0 {
			t.Errorf("second Tick in the same minute queued %v", got)
		}
		// The other process ticks late for the same time: same run.
		if got := tick(s2, base.Add(14*time.Minute)); !slices.Equal(got, first) {
			t.Errorf("other process's Tick = %v, want the same run %v", got, first)
		}
		// Missed ticks (10:30, 10:45, 11:00) run once each product.
		got := tick(s, base.Add(70*time.Minute)) // 11:12
		if len(got) != 2 || !strings.HasPrefix(got[0], "dp.a@") || !strings.HasPrefix(got[1], "dp.b@") {
			t.Errorf("Tick after missed ticks = %v, want one run each of dp.a and dp.b", got)
		}
		runs, _, err := st.ListRuns(ctx, metastore.RunListOptions{})
		if err != nil || len(runs) != 4 {
			t.Errorf("ListRuns = %d runs, %v; want 4", len(runs), err)
		}
	})
}

func TestBackfill(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		st, opt := b.open(t)
		var (
			mu      sync.Mutex
			windows []string
		)
		opt.Queue = true
		opt.Runner = func(ctx context.Context, run *rhizome.Run, log func(level, msg string)) (jobs.RunResult, error) {
			mu.Lock()
			defer mu.Unlock()
			windows = append(windows, run.From.Format("15h")+"-"+run.To.Format("15h"))
			return jobs.RunResult{}, nil
		}
		s := start(t, opt)
		from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		runs, err := s.Backfill(context.Background(), "dp.a", from, from.Add(10*time.Hour), 3*time.Hour, "bob")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range runs {
			if r.Trigger != rhizome.TriggerBackfill || r.Actor != "bob" {
				t.Errorf("backfill run %+v", r)
			}
			got = append(got, r.From.Format("15h")+"-"+r.To.Format("15h"))
			waitRun(t, st, r.ID)
		}
		want := []string{"00h-03h", "03h-06h", "06h-09h", "09h-10h"}
		if !slices.Equal(got, want) {
			t.Errorf("windows = %v, want %v", got, want)
		}
		mu.Lock()
		slices.Sort(windows)
		if !slices.Equal(windows, want) {
			t.Errorf("runner saw windows %v, want %v", windows, want)
		}
		mu.Unlock()
		for _, bad := range []struct {
			from, to time.Time
			step     time.Duration
		}{{from, from, time.Hour}, {from, from.Add(time.Hour), 0}, {from, from.Add(24 * 365 * time.Hour), time.Second}} {
			if _, err := s.Backfill(context.Background(), "dp.a", bad.from, bad.to, bad.step, "bob"); rhizome.Code(err) != rhizome.EInvalid {
				t.Errorf("Backfill %v..%v step %s: %v, want invalid", bad.from, bad.to, bad.step, err)
			}
		}
	})
}

func TestRecover(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		st, opt := b.open(t)
		ctx := context.Background()
		// A process queued two runs and died while running one of them:
		// the record says running, and no worker holds it.
		dead := start(t, opt)
		r1 := enqueue(t, dead, jobs.Request{ProductID: "dp.a"})
		r2 := enqueue(t, dead, jobs.Request{ProductID: "dp.a"})
		now := time.Now()
		if err := st.Update(ctx, func(tx metastore.Tx) error {
			r, err := tx.GetRun(ctx, r1.ID)
			if err != nil {
				return err
			}
			r.State, r.Attempt, r.StartedAt = rhizome.RunRunning, 1, &now
			if err := tx.PutRun(ctx, r); err != nil {
				return err
			}
			// One whose job is gone altogether.
			if err := tx.PutRun(ctx, &rhizome.Run{ID: "run_orphan", ProductID: "dp.b", Trigger: rhizome.TriggerManual,
				State: rhizome.RunRunning, Attempt: 2, StartedAt: &now}); err != nil {
				return err
			}
			// And a queued run whose job was never inserted (the process
			// died inside Enqueue).
			return tx.PutRun(ctx, &rhizome.Run{ID: "run_nojob", ProductID: "dp.c", Trigger: rhizome.TriggerManual,
				State: rhizome.RunQueued, QueuedAt: now.Add(-time.Hour)})
		}); err != nil {
			t.Fatal(err)
		}
		if b.name == "sqlite" {
			// On SQLite the dead process's job is still marked running.
			db := st.(interface{ DB() *sql.DB }).DB()
			res, err := db.Exec(`UPDATE river_job SET state = 'running', attempt = 1, attempted_at = ? WHERE args ->> 'run_id' = ?`,
				now.UTC().Format(time.RFC3339Nano), r1.ID)
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := res.RowsAffected(); n != 1 {
				t.Fatalf("marked %d River jobs running, want 1", n)
			}
		}

		var (
			mu        sync.Mutex
			recovered []string
			ran       []string
		)
		opt.Queue = true
		opt.OnRecover = func(r *rhizome.Run) {
			mu.Lock()
			defer mu.Unlock()
			recovered = append(recovered, r.ID)
		}
		opt.Runner = func(ctx context.Context, run *rhizome.Run, log func(level, msg string)) (jobs.RunResult, error) {
			mu.Lock()
			defer mu.Unlock()
			ran = append(ran, run.ID)
			return jobs.RunResult{}, nil
		}
		start(t, opt)
		for _, id := range []string{r1.ID, "run_orphan"} {
			r, err := st.GetRun(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if r.State != rhizome.RunFailed || r.Error != "worker died; recovered at start" || r.FinishedAt == nil {
				t.Errorf("run %s after Start: %s %q; want failed, recovered", id, r.State, r.Error)
			}
		}
		// The product is free again: the queued runs run.
		for _, id := range []string{r2.ID, "run_nojob"} {
			if r := waitRun(t, st, id); r.State != rhizome.RunSucceeded {
				t.Errorf("queued run %s after recovery: %s %q", id, r.State, r.Error)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		slices.Sort(recovered)
		want := []string{r1.ID, "run_orphan"}
		slices.Sort(want)
		if !slices.Equal(recovered, want) {
			t.Errorf("OnRecover got %v, want %v", recovered, want)
		}
		if slices.Contains(ran, r1.ID) {
			t.Errorf("the recovered run was run again")
		}
	})
}

// TestSharedQueue has two workers on one Postgres database, as two
// `rhizome up --worker` processes: every run executes exactly once, and
// runs of one product never overlap across the processes.
func TestSharedQueue(t *testing.T) {
	st, opt := openPostgres(t)
	var (
		mu      sync.Mutex
		calls   = map[string]int{}
		by      = map[string]int{}
		active  = map[string]int{}
		overlap int
	)
	runner := func(worker string) jobs.Runner {
		return func(ctx context.Context, run *rhizome.Run, log func(level, msg string)) (jobs.RunResult, error) {
			mu.Lock()
			calls[run.ID]++
			by[worker]++
			active[run.ProductID]++
			if active[run.ProductID] > 1 {
				overlap++
			}
			mu.Unlock()
			time.Sleep(10 * time.Millisecond)
			mu.Lock()
			active[run.ProductID]--
			mu.Unlock()
			return jobs.RunResult{}, nil
		}
	}
	opt.Queue = true
	o1, o2 := opt, opt
	o1.Runner, o2.Runner = runner("w1"), runner("w2")
	s1, s2 := start(t, o1), start(t, o2)
	var ids []string
	for i := range 30 {
		s := s1
		if i%2 == 1 {
			s = s2
		}
		ids = append(ids, enqueue(t, s, jobs.Request{ProductID: fmt.Sprintf("dp.%d", i%5)}).ID)
	}
	for _, id := range ids {
		if r := waitRun(t, st, id); r.State != rhizome.RunSucceeded {
			t.Errorf("run %s: %s %q", id, r.State, r.Error)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		if calls[id] != 1 {
			t.Errorf("run %s executed %d times, want once", id, calls[id])
		}
	}
	if overlap > 0 {
		t.Errorf("runs of one product overlapped %d times across the workers", overlap)
	}
	t.Logf("runs per worker: %v", by)
}

func TestMetrics(t *testing.T) {
	st, opt := openSQLite(t)
	reg := prometheus.NewRegistry()
	opt.Registry = reg
	opt.Queue = true
	opt.MaxAttempts = 1
	opt.Runner = func(ctx context.Context, run *rhizome.Run, log func(level, msg string)) (jobs.RunResult, error) {
		if run.ProductID == "dp.bad" {
			return jobs.RunResult{}, fmt.Errorf("boom")
		}
		return jobs.RunResult{}, nil
	}
	s := start(t, opt)
	waitRun(t, st, enqueue(t, s, jobs.Request{ProductID: "dp.ok"}).ID)
	waitRun(t, st, enqueue(t, s, jobs.Request{ProductID: "dp.bad"}).ID)
	err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP rhizome_runs_total Runs that ended, by final state.
# TYPE rhizome_runs_total counter
rhizome_runs_total{state="failed"} 1
rhizome_runs_total{state="succeeded"} 1
`), "rhizome_runs_total")
	if err != nil {
		t.Error(err)
	}
	for _, name := range []string{"rhizome_run_duration_seconds", "rhizome_scheduler_overhead_seconds"} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != 1 {
			t.Errorf("%s: %d series, %v", name, n, err)
		}
	}
	// A second Scheduler on the same registry is a clear error.
	if _, err := jobs.New(context.Background(), opt); err == nil || !strings.Contains(err.Error(), "metrics") {
		t.Errorf("New with a registry already holding the metrics: %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	st, opt := openSQLite(t)
	ctx := context.Background()
	for name, o := range map[string]jobs.Options{
		"no store":    {Dialect: jobs.DialectSQLite, DB: opt.DB},
		"no runner":   {Store: st, Dialect: jobs.DialectSQLite, DB: opt.DB, Queue: true},
		"no db":       {Store: st, Dialect: jobs.DialectSQLite},
		"no url":      {Store: st, Dialect: jobs.DialectPostgres},
		"bad dialect": {Store: st, Dialect: "mysql"},
	} {
		if _, err := jobs.New(ctx, o); rhizome.Code(err) != rhizome.EInvalid {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	s := start(t, opt)
	if _, err := s.Enqueue(ctx, jobs.Request{}); rhizome.Code(err) != rhizome.EInvalid {
		t.Errorf("Enqueue without a product: %v", err)
	}
	if err := s.Start(ctx); err == nil {
		t.Errorf("second Start: no error")
	}
}

// TestCancelAcrossProcesses cancels, from an API-only Scheduler, a run
// that a worker process is running on the same Postgres database: the
// record is cancelled at once and the worker's Runner sees its context
// cancelled through River's notification.
func TestCancelAcrossProcesses(t *testing.T) {
	st, opt := openPostgres(t)
	started := make(chan string, 1)
	causes := make(chan error, 1)
	w := opt
	w.Queue = true
	w.Runner = func(ctx context.Context, run *rhizome.Run, log func(level, msg string)) (jobs.RunResult, error) {
		started <- run.ID
		<-ctx.Done()
		causes <- context.Cause(ctx)
		return jobs.RunResult{}, ctx.Err()
	}
	start(t, w)
	api := start(t, opt)
	r := enqueue(t, api, jobs.Request{ProductID: "dp.a"})
	<-started
	if err := api.Cancel(context.Background(), r.ID); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if c, err := st.GetRun(context.Background(), r.ID); err != nil || c.State != rhizome.RunCancelled {
		t.Fatalf("right after Cancel: %+v, %v; want cancelled", c, err)
	}
	select {
	case cause := <-causes:
		t.Logf("runner's context ended: %v", cause)
	case <-time.After(15 * time.Second):
		t.Fatal("the worker's Runner was not cancelled")
	}
	time.Sleep(100 * time.Millisecond)
	if got := waitRun(t, st, r.ID); got.State != rhizome.RunCancelled {
		t.Errorf("run after the worker returned: %s %q", got.State, got.Error)
	}
}

// TestRecoverQueuedRunOfDeadWorker: a worker killed after River handed it a
// job (the job is marked running) but before it marked the run running
// left the run queued with nothing to run it. On SQLite, Start frees such a
// job at once (one process works the file); on Postgres, once it has been
// running longer than the run's timeout plus a grace period (another live
// worker may hold a fresher one, which stays).
func TestRecoverQueuedRunOfDeadWorker(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		st, opt := b.open(t)
		ctx := context.Background()
		dead := start(t, opt) // Queue false: nothing works the queue
		stuck := enqueue(t, dead, jobs.Request{ProductID: "dp.a"})
		held := enqueue(t, dead, jobs.Request{ProductID: "dp.b"})

		db := st.(interface{ DB() *sql.DB }).DB()
		markRunning := func(runID string, attemptedAt time.Time) {
			t.Helper()
			var (
				res sql.Result
				err error
			)
			if b.name == "sqlite" {
				res, err = db.Exec(`UPDATE river_job SET state = 'running', attempt = 1, attempted_at = ? WHERE args ->> 'run_id' = ?`,
					attemptedAt.UTC().Format(time.RFC3339Nano), runID)
			} else {
				res, err = db.Exec(`UPDATE river_job SET state = 'running', attempt = 1, attempted_at = $1 WHERE args ->> 'run_id' = $2`,
					attemptedAt, runID)
			}
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := res.RowsAffected(); n != 1 {
				t.Fatalf("marked %d River jobs running, want 1", n)
			}
		}
		if b.name == "sqlite" {
			markRunning(stuck.ID, time.Now())
		} else {
			// Past the default timeout (4h) and the grace period (5m), short
			// of River's own rescue (after 5h).
			markRunning(stuck.ID, time.Now().Add(-4*time.Hour-30*time.Minute))
			// A job a live worker fetched a moment ago: not evidence.
			markRunning(held.ID, time.Now())
		}
		if got := riverStates(t, st)[stuck.ID]; got != "running" {
			t.Fatalf("River job of the stuck run is %q, want running", got)
		}

		var (
			mu  sync.Mutex
			ran = map[string]int{}
		)
		opt.Queue = true
		opt.Runner = func(ctx context.Context, run *rhizome.Run, log func(level, msg string)) (jobs.RunResult, error) {
			mu.Lock()
			defer mu.Unlock()
			ran[run.ID]++
			return jobs.RunResult{}, nil
		}
		start(t, opt)
		r := waitRun(t, st, stuck.ID)
		if r.State != rhizome.RunSucceeded {
			t.Fatalf("stuck run after Start: %s %q; want succeeded", r.State, r.Error)
		}
		// The dead worker's attempt never reached the run: it does not count.
		if r.Attempt != 1 {
			t.Errorf("stuck run ran as attempt %d, want 1", r.Attempt)
		}
		// River records the job's end after the run's (asynchronously).
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			got := riverStates(t, st)[stuck.ID]
			if got == "completed" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("River job of the stuck run is %q, want completed", got)
			}
		}

		if b.name == "sqlite" {
			// Both were dead at Start on SQLite.
			if r := waitRun(t, st, held.ID); r.State != rhizome.RunSucceeded {
				t.Errorf("run %s after Start: %s %q; want succeeded", held.ID, r.State, r.Error)
			}
		} else {
			time.Sleep(200 * time.Millisecond) // ten poll intervals
			r, err := st.GetRun(ctx, held.ID)
			if err != nil {
				t.Fatal(err)
			}
			if r.State != rhizome.RunQueued {
				t.Errorf("run whose job was fetched a moment ago is %s, want queued (its worker may be alive)", r.State)
			}
			if got := riverStates(t, st)[held.ID]; got != "running" {
				t.Errorf("River job fetched a moment ago is %q, want running (left alone)", got)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if ran[stuck.ID] != 1 {
			t.Errorf("stuck run executed %d times, want once", ran[stuck.ID])
		}
	})
}
