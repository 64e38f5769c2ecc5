package jobs

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	"github.com/rhizome-mesh/rhizome"
)

// runArgs are a River job's arguments: the run it executes. The run id
// alone makes the job unique, so a run is queued at most once.
type runArgs struct {
	RunID     string `json:"run_id" river:"unique"`
	ProductID string `json:"product_id"`
	TimeoutMS int64  `json:"timeout_ms"`
}

func (runArgs) Kind() string { return "rhizome_run" }

func (a runArgs) timeout() time.Duration { return time.Duration(a.TimeoutMS) * time.Millisecond }

// queue is what the Scheduler needs of River, hiding the driver's
// transaction type (*sql.Tx for SQLite, pgx.Tx for Postgres).
type queue interface {
	insert(ctx context.Context, args runArgs, maxAttempts int) error
	// cancel cancels the job of a run, if it has one not yet finished.
	cancel(ctx context.Context, runID string) error
	// job returns the job of a run, or nil.
	job(ctx context.Context, runID string) (*rivertype.JobRow, error)
	start(ctx context.Context) error
	stop(ctx context.Context) error
	close()
}

type riverQueue[TTx any] struct {
	client  *river.Client[TTx]
	closeDB func()
}

// everyState keeps a run's job unique for as long as River keeps it.
var everyState = []rivertype.JobState{
	rivertype.JobStateAvailable, rivertype.JobStateCancelled, rivertype.JobStateCompleted,
	rivertype.JobStateDiscarded, rivertype.JobStatePending, rivertype.JobStateRetryable,
	rivertype.JobStateRunning, rivertype.JobStateScheduled,
}

func newRiverQueue[TTx any](ctx context.Context, driver riverdriver.Driver[TTx], cfg *river.Config, log *slog.Logger, closeDB func()) (*riverQueue[TTx], error) {
	m, err := rivermigrate.New(driver, &rivermigrate.Config{Logger: log})
	if err != nil {
		closeDB()
		return nil, rhizome.Wrap(err, "jobs: River migrations")
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		closeDB()
		return nil, rhizome.Wrap(err, "jobs: apply River's migrations")
	}
	c, err := river.NewClient(driver, cfg)
	if err != nil {
		closeDB()
		return nil, rhizome.Wrap(err, "jobs: River client")
	}
	return &riverQueue[TTx]{client: c, closeDB: closeDB}, nil
}

func newSQLiteQueue(ctx context.Context, db *sql.DB, cfg *river.Config, log *slog.Logger) (queue, error) {
	// The pool is the metastore's: closing it is the metastore's job.
	return newRiverQueue[*sql.Tx](ctx, sqliteDriver{riversqlite.New(db)}, cfg, log, func() {})
}

// sqliteDriver is River's SQLite driver without its emulated LISTEN, which
// polls a table every 50ms: one process works a SQLite queue, and River
// wakes that process's workers directly when it inserts or cancels, so
// the emulation only added 50ms to every run.
type sqliteDriver struct{ *riversqlite.Driver }

func (sqliteDriver) SupportsListener() bool     { return false }
func (sqliteDriver) SupportsListenNotify() bool { return false }

func newPostgresQueue(ctx context.Context, url string, cfg *river.Config, log *slog.Logger) (queue, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, &rhizome.Error{Code: rhizome.EInvalid, Message: "jobs: bad Postgres URL", Err: err}
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, &rhizome.Error{Code: rhizome.EUnavailable, Message: "jobs: cannot reach Postgres: " + err.Error(), Err: err}
	}
	return newRiverQueue(ctx, riverpgxv5.New(pool), cfg, log, pool.Close)
}

func (q *riverQueue[TTx]) insert(ctx context.Context, args runArgs, maxAttempts int) error {
	_, err := q.client.Insert(ctx, args, &river.InsertOpts{
		MaxAttempts: maxAttempts,
		UniqueOpts:  river.UniqueOpts{ByArgs: true, ByState: everyState},
	})
	return err
}

func (q *riverQueue[TTx]) job(ctx context.Context, runID string) (*rivertype.JobRow, error) {
	// ->> with a plain key reads a JSON field in Postgres and SQLite alike.
	res, err := q.client.JobList(ctx, river.NewJobListParams().
		Kinds(runArgs{}.Kind()).
		Where("args ->> 'run_id' = @run_id", river.NamedArgs{"run_id": runID}).
		First(1))
	if err != nil {
		return nil, err
	}
	if len(res.Jobs) == 0 {
		return nil, nil
	}
	return res.Jobs[0], nil
}

func (q *riverQueue[TTx]) cancel(ctx context.Context, runID string) error {
	j, err := q.job(ctx, runID)
	if err != nil || j == nil || finalized(j.State) {
		return err
	}
	_, err = q.client.JobCancel(ctx, j.ID)
	if errors.Is(err, river.ErrNotFound) {
		return nil
	}
	return err
}

func (q *riverQueue[TTx]) start(ctx context.Context) error { return q.client.Start(ctx) }

// stop waits for running jobs until ctx is done, then cancels them and
// waits for them to return.
func (q *riverQueue[TTx]) stop(ctx context.Context) error {
	err := q.client.Stop(ctx)
	if err == nil || ctx.Err() == nil {
		return err
	}
	hard, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return q.client.StopAndCancel(hard)
}

func (q *riverQueue[TTx]) close() { q.closeDB() }

func finalized(s rivertype.JobState) bool {
	return s == rivertype.JobStateCancelled || s == rivertype.JobStateCompleted || s == rivertype.JobStateDiscarded
}

// riverConfig is the River client configuration of s.
func (s *Scheduler) riverConfig() *river.Config {
	workers := river.NewWorkers()
	river.AddWorker(workers, &runWorker{s: s})
	cfg := &river.Config{
		Logger:      s.log,
		MaxAttempts: s.opt.MaxAttempts,
		// The worker enforces each run's own timeout (and says so in the
		// run's error); River's stays out of the way.
		JobTimeout:           -1,
		RescueStuckJobsAfter: s.opt.DefaultTimeout + time.Hour,
		RetryPolicy:          &backoff{base: s.opt.RetryDelay},
		FetchCooldown:        min(fetchCooldown(s.opt.Dialect), s.opt.PollInterval),
		FetchPollInterval:    s.opt.PollInterval,
		Workers:              workers,
	}
	if s.opt.Queue {
		cfg.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: s.opt.Workers}}
	}
	return cfg
}

// fetchCooldown is the least time between two fetches of a worker: each
// is one indexed UPDATE, local on SQLite, a round trip on Postgres (where
// many processes poll one server).
func fetchCooldown(dialect string) time.Duration {
	if dialect == DialectSQLite {
		return 2 * time.Millisecond
	}
	return 10 * time.Millisecond
}

// backoff is exponential: base, 2*base, 4*base... at most an hour, each
// with up to 10% jitter so that runs that failed together do not retry
// together.
type backoff struct{ base time.Duration }

func (b *backoff) NextRetry(job *rivertype.JobRow) time.Time {
	return time.Now().Add(b.delay(job.Attempt))
}

func (b *backoff) delay(attempt int) time.Duration {
	d := b.base
	for i := 1; i < attempt && d < time.Hour; i++ {
		d *= 2
	}
	d = min(d, time.Hour)
	return d + rand.N(d/10+1)
}
