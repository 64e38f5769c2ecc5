// Package jobs owns when and how often a product's pipeline runs: queueing,
// schedules, backfills, retries, timeouts, cancellation, at most one running
// run per product, and the state machine of the run records kept in the
// metastore (queued -> running -> succeeded | failed | cancelled, back to
// queued between attempts). The work of a run is left to a Runner, which
// the pipeline supplies.
//
// The queue is River's: on SQLite its tables live in the metastore's own
// file (one file holds everything) and one process works the queue; on
// Postgres they live in the metastore's database and every
// `rhizome up --worker` process shares them, each run executed once.
package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/metastore"
)

// Runner does the work of one attempt of a run. ctx carries the run's
// deadline and is cancelled when the run is cancelled or the worker stops;
// log appends a line to the run's log. An error fails the attempt, which is
// retried until Options.MaxAttempts.
type Runner func(ctx context.Context, run *rhizome.Run, log func(level, msg string)) (RunResult, error)

// RunResult is what a successful run reports; it is copied into the Run.
type RunResult struct {
	RowsIn, RowsOut, Bytes, SnapshotID int64
	Version                            string
}

// Dialects of the metastore that jobs can queue in.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

// Options configure a Scheduler. Store, Dialect and, for SQLite, DB or, for
// Postgres, PostgresURL are required; Runner is required when Queue is set.
type Options struct {
	Store metastore.Store
	// Dialect is DialectSQLite or DialectPostgres: the metastore's.
	Dialect string
	// DB is the metastore's SQLite pool (sqlstore.Store.DB()); River's
	// tables go in the same file.
	DB *sql.DB
	// PostgresURL is the metastore's database; River opens its own pgx
	// pool on it, for LISTEN/NOTIFY.
	PostgresURL string
	Runner      Runner
	Clock       rhizome.Clock // nil means rhizome.SystemClock
	Logger      *slog.Logger  // nil discards
	// Workers bounds the runs executing at once in this process; 0 means 2.
	Workers int
	// MaxAttempts is how often a failing run is tried; 0 means 3.
	MaxAttempts int
	// DefaultTimeout bounds a run whose Request has no Timeout and whose
	// product has none (TimeoutFor); 0 means 4h.
	DefaultTimeout time.Duration
	// TimeoutFor, if set, gives a product's own run timeout (0: none), used
	// when a Request names no Timeout.
	TimeoutFor func(ctx context.Context, productID string) time.Duration
	// Queue runs workers, schedules and recovery in this process; without
	// it the Scheduler only enqueues and cancels (an API-only server).
	Queue bool
	// OnRecover is called for each run that Start finds left running by a
	// process that died, after it is marked failed: the pipeline removes
	// the files the run left behind.
	OnRecover func(run *rhizome.Run)
	// OnFinish, if set, is called after a worker records that a run ended
	// for good (succeeded, failed or cancelled), with the final record:
	// alerting hears of failed runs here.
	OnFinish func(run *rhizome.Run)
	// Registry, if set, receives the scheduler's metrics.
	Registry *prometheus.Registry

	// RetryDelay is the wait before the second attempt, doubling after
	// each failed attempt (with jitter), at most an hour; 0 means 10s.
	RetryDelay time.Duration
	// PollInterval is how often workers look for runs that nothing
	// announced: retries, runs that waited for their product, and on
	// SQLite runs queued by another process; 0 means 200ms on SQLite (a
	// local indexed read) and 1s on Postgres (where inserts and cancels
	// are announced by LISTEN/NOTIFY).
	PollInterval time.Duration
}

func (o Options) withDefaults() Options {
	if o.Clock == nil {
		o.Clock = rhizome.SystemClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 3
	}
	if o.DefaultTimeout <= 0 {
		o.DefaultTimeout = 4 * time.Hour
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = 10 * time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
		if o.Dialect == DialectSQLite {
			o.PollInterval = 200 * time.Millisecond
		}
	}
	return o
}

// Request asks for one run of a product.
type Request struct {
	ProductID string
	Version   string
	Trigger   rhizome.Trigger // "" means TriggerManual
	Actor     string
	// From and To bound the data a backfill run reads.
	From, To *time.Time
	// Timeout bounds the run; 0 means Options.DefaultTimeout.
	Timeout time.Duration
	// Key makes Enqueue idempotent: a second request for the product with
	// the same Key (a push batch id, a schedule tick) returns the first
	// run instead of queueing another.
	Key string
}

// Scheduler queues, schedules and executes runs.
type Scheduler struct {
	opt     Options
	store   metastore.Store
	clock   rhizome.Clock
	log     *slog.Logger
	q       queue
	metrics *metrics

	mu      sync.Mutex
	running map[string]context.CancelCauseFunc // runs executing here, by id
	started bool
	stopped bool

	sched      schedules
	loopCancel context.CancelFunc
	loopDone   chan struct{}
}

// New opens the queue (running River's migrations, which are idempotent)
// and returns a Scheduler that is not yet working: call Start.
func New(ctx context.Context, opt Options) (*Scheduler, error) {
	opt = opt.withDefaults()
	switch {
	case opt.Store == nil:
		return nil, rhizome.Errorf(rhizome.EInvalid, "jobs: no metastore")
	case opt.Queue && opt.Runner == nil:
		return nil, rhizome.Errorf(rhizome.EInvalid, "jobs: workers need a Runner").WithHint("pass the pipeline's Run, or set Queue to false")
	}
	m, err := newMetrics(opt.Registry)
	if err != nil {
		return nil, err
	}
	s := &Scheduler{opt: opt, store: opt.Store, clock: opt.Clock, log: opt.Logger, metrics: m,
		running: map[string]context.CancelCauseFunc{}}
	s.sched.entries = map[string]*scheduleEntry{}
	cfg := s.riverConfig()
	switch opt.Dialect {
	case DialectSQLite:
		if opt.DB == nil {
			return nil, rhizome.Errorf(rhizome.EInvalid, "jobs: SQLite needs the metastore's *sql.DB")
		}
		s.q, err = newSQLiteQueue(ctx, opt.DB, cfg, opt.Logger)
	case DialectPostgres:
		if opt.PostgresURL == "" {
			return nil, rhizome.Errorf(rhizome.EInvalid, "jobs: Postgres needs the database URL")
		}
		s.q, err = newPostgresQueue(ctx, opt.PostgresURL, cfg, opt.Logger)
	default:
		return nil, rhizome.Errorf(rhizome.EInvalid, "jobs: dialect %q is not %q or %q", opt.Dialect, DialectSQLite, DialectPostgres)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Start recovers runs that a dead process left running, then starts the
// workers and the schedule loop. Without Options.Queue it does nothing.
func (s *Scheduler) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.started || s.stopped {
		s.mu.Unlock()
		return rhizome.Errorf(rhizome.EInvalid, "jobs: Start called twice or after Stop")
	}
	s.started = true
	s.mu.Unlock()
	if !s.opt.Queue {
		return nil
	}
	if err := s.recover(ctx, true); err != nil {
		return err
	}
	if err := s.q.start(ctx); err != nil {
		return rhizome.Wrap(err, "jobs: start workers")
	}
	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.loopCancel, s.loopDone = cancel, make(chan struct{})
	go s.scheduleLoop(loopCtx, s.loopDone)
	return nil
}

// Stop stops the schedule loop, lets running runs finish until ctx is done
// (then cancels them: they are retried later) and closes the queue. It
// leaves no goroutine behind.
func (s *Scheduler) Stop(ctx context.Context) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	started := s.started && s.opt.Queue
	s.mu.Unlock()
	if s.loopCancel != nil {
		s.loopCancel()
		<-s.loopDone
	}
	var err error
	if started {
		err = s.q.stop(ctx)
	}
	s.q.close()
	return err
}

// Enqueue records a queued run and queues its job. With a Key, a request
// that was already made returns the run it made.
func (s *Scheduler) Enqueue(ctx context.Context, req Request) (*rhizome.Run, error) {
	if req.ProductID == "" {
		return nil, rhizome.Errorf(rhizome.EInvalid, "jobs: a run needs a product id")
	}
	if req.Trigger == "" {
		req.Trigger = rhizome.TriggerManual
	}
	if req.Timeout < 0 {
		return nil, rhizome.Errorf(rhizome.EInvalid, "jobs: timeout %s is negative", req.Timeout)
	}
	now := s.clock.Now()
	id := newRunID(now)
	if req.Key != "" {
		id = keyedRunID(req.ProductID, req.Key)
	}
	var run *rhizome.Run
	existed := false
	err := s.store.Update(ctx, func(tx metastore.Tx) error {
		existed = false
		if req.Key != "" {
			r, err := tx.GetRun(ctx, id)
			if err == nil {
				run, existed = r, true
				return nil
			}
			if rhizome.Code(err) != rhizome.ENotFound {
				return err
			}
		}
		run = &rhizome.Run{ID: id, ProductID: req.ProductID, Version: req.Version, Trigger: req.Trigger,
			State: rhizome.RunQueued, Actor: req.Actor, From: req.From, To: req.To, QueuedAt: now}
		if err := tx.PutRun(ctx, run); err != nil {
			return err
		}
		return tx.AppendRunLog(ctx, rhizome.RunLog{RunID: id, At: now, Level: "info",
			Msg: fmt.Sprintf("queued (%s) by %s", req.Trigger, actorOr(req.Actor))})
	})
	if err != nil {
		return nil, rhizome.Wrap(err, "jobs: enqueue a run of %s", req.ProductID)
	}
	if existed && run.State != rhizome.RunQueued {
		return run, nil
	}
	// A re-sent request for a queued run inserts again: River's unique
	// key makes that a no-op, unless the first request died before its
	// job was queued.
	timeout := req.Timeout
	if timeout == 0 && s.opt.TimeoutFor != nil {
		timeout = s.opt.TimeoutFor(ctx, req.ProductID)
	}
	if timeout == 0 {
		timeout = s.opt.DefaultTimeout
	}
	if err := s.q.insert(ctx, runArgs{RunID: id, ProductID: req.ProductID, TimeoutMS: timeout.Milliseconds()}, s.opt.MaxAttempts); err != nil {
		err = rhizome.Wrap(err, "jobs: queue run %s of %s", id, req.ProductID)
		s.finishNow(ctx, id, rhizome.RunFailed, err.Error())
		return nil, err
	}
	return run, nil
}

// Cancel stops a queued or running run and marks it cancelled at once; a
// running Runner sees its context cancelled (at once in this process, at
// the next notification or poll in another). Cancelling a cancelled run
// does nothing; a finished one is EConflict, an unknown one ENotFound.
func (s *Scheduler) Cancel(ctx context.Context, runID string) error {
	var run *rhizome.Run
	changed := false
	err := s.store.Update(ctx, func(tx metastore.Tx) error {
		changed = false
		r, err := tx.GetRun(ctx, runID)
		if err != nil {
			return err
		}
		run = r
		if r.State == rhizome.RunCancelled {
			return nil
		}
		if r.State.Done() {
			return rhizome.Errorf(rhizome.EConflict, "run %s already %s; there is nothing to cancel", runID, r.State)
		}
		now := s.clock.Now()
		r.State, r.FinishedAt, r.Error = rhizome.RunCancelled, &now, "cancelled"
		if r.StartedAt != nil {
			r.DurationMS = now.Sub(*r.StartedAt).Milliseconds()
		}
		if err := tx.PutRun(ctx, r); err != nil {
			return err
		}
		changed = true
		return tx.AppendRunLog(ctx, rhizome.RunLog{RunID: runID, At: now, Level: "warn", Msg: "cancelled"})
	})
	if err != nil {
		return rhizome.Wrap(err, "jobs: cancel run %s", runID)
	}
	if !changed {
		return nil
	}
	s.metrics.finished(run)
	s.mu.Lock()
	stop := s.running[runID]
	s.mu.Unlock()
	if stop != nil {
		stop(errCancelled)
	}
	// The record is final already; River's cancel stops the job (and
	// tells another process's worker). If it fails, the worker still finds
	// the run cancelled when it starts.
	if err := s.q.cancel(ctx, runID); err != nil {
		s.log.Warn("jobs: cancel the queued job", "run", runID, "err", err)
	}
	return nil
}

// MaxBackfillRuns bounds the windows of one Backfill.
const MaxBackfillRuns = 10000

// Backfill queues one TriggerBackfill run per step-sized window of
// [from, to), oldest first; the last window ends at to.
func (s *Scheduler) Backfill(ctx context.Context, productID string, from, to time.Time, step time.Duration, actor string) ([]*rhizome.Run, error) {
	switch {
	case step <= 0:
		return nil, rhizome.Errorf(rhizome.EInvalid, "jobs: backfill step %s is not positive", step)
	case !from.Before(to):
		return nil, rhizome.Errorf(rhizome.EInvalid, "jobs: backfill from %s is not before to %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	if n := (to.Sub(from) + step - 1) / step; n > MaxBackfillRuns {
		return nil, rhizome.Errorf(rhizome.EInvalid, "jobs: backfill of %s in steps of %s is %d runs, more than %d", to.Sub(from), step, n, MaxBackfillRuns).
			WithHint("use a larger step")
	}
	var runs []*rhizome.Run
	for start := from; start.Before(to); start = start.Add(step) {
		end := start.Add(step)
		if end.After(to) {
			end = to
		}
		w0, w1 := start, end
		r, err := s.Enqueue(ctx, Request{ProductID: productID, Trigger: rhizome.TriggerBackfill, Actor: actor, From: &w0, To: &w1})
		if err != nil {
			return runs, err
		}
		runs = append(runs, r)
	}
	return runs, nil
}

// finishNow marks a run final outside a worker (a job that could not be
// queued); errors are only logged, as the caller is already failing.
func (s *Scheduler) finishNow(ctx context.Context, runID string, state rhizome.RunState, msg string) {
	ctx = context.WithoutCancel(ctx)
	err := s.store.Update(ctx, func(tx metastore.Tx) error {
		r, err := tx.GetRun(ctx, runID)
		if err != nil || r.State.Done() {
			return err
		}
		now := s.clock.Now()
		r.State, r.FinishedAt, r.Error = state, &now, msg
		return tx.PutRun(ctx, r)
	})
	if err != nil {
		s.log.Error("jobs: record the end of a run", "run", runID, "err", err)
	}
}

func actorOr(a string) string {
	if a == "" {
		return "system"
	}
	return a
}

var errCancelled = errors.New("run cancelled")
