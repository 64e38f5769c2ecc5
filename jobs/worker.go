package jobs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/metastore"
)

// runWorker executes a run's job: it claims the run (one running run per
// product), calls the Runner and records the outcome.
type runWorker struct {
	river.WorkerDefaults[runArgs]
	s *Scheduler
}

// Timeout leaves River a minute past the run's own deadline, so that the
// worker, not River, ends a run that overran.
func (w *runWorker) Timeout(job *river.Job[runArgs]) time.Duration {
	if t := job.Args.timeout(); t > 0 {
		return t + time.Minute
	}
	return w.s.opt.DefaultTimeout + time.Minute
}

// timeoutError is the cause of a run's context when its deadline passes.
type timeoutError struct{ d time.Duration }

func (e timeoutError) Error() string { return fmt.Sprintf("timed out after %s", e.d) }

func (w *runWorker) Work(ctx context.Context, job *river.Job[runArgs]) error {
	s := w.s
	s.metrics.overhead.Observe(time.Since(job.ScheduledAt).Seconds())
	args := job.Args
	run, busy, err := s.claim(ctx, args.RunID, job.Attempt, job.MaxAttempts)
	switch {
	case rhizome.Code(err) == rhizome.ENotFound:
		return river.JobCancel(err)
	case err != nil:
		return err
	case run.State.Done():
		return river.JobCancel(fmt.Errorf("run %s is already %s", run.ID, run.State))
	case busy != "":
		// Another run of the product is running: wait without spending an
		// attempt (River does not count a snooze).
		return river.JobSnooze(s.opt.PollInterval)
	}

	timeout := args.timeout()
	if timeout <= 0 {
		timeout = s.opt.DefaultTimeout
	}
	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	s.mu.Lock()
	s.running[run.ID] = stop
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.running, run.ID)
		s.mu.Unlock()
	}()
	runCtx, cancelTimeout := context.WithTimeoutCause(runCtx, timeout, timeoutError{timeout})
	defer cancelTimeout()

	// Log lines outlive a cancelled run: the last ones say why it ended.
	logCtx := context.WithoutCancel(ctx)
	var logMu sync.Mutex
	logf := func(level, msg string) {
		logMu.Lock()
		defer logMu.Unlock()
		s.appendLog(logCtx, run.ID, level, msg)
	}
	began := time.Now()
	res, runErr := s.opt.Runner(runCtx, cloneRun(run), logf)
	s.metrics.duration.Observe(time.Since(began).Seconds())
	cause := context.Cause(runCtx)

	out := outcome{state: rhizome.RunSucceeded, res: res}
	var ret error
	switch {
	case runErr == nil:
	case errors.As(cause, new(timeoutError)):
		out.state, out.msg = rhizome.RunFailed, cause.Error()
		ret = river.JobCancel(cause)
	case errors.Is(cause, errCancelled) || errors.Is(cause, river.ErrJobCancelledRemotely):
		out.state, out.msg = rhizome.RunCancelled, "cancelled"
		ret = river.JobCancel(runErr)
	case ctx.Err() != nil:
		// The worker is stopping: River tries the job again later.
		out.state, out.msg = rhizome.RunQueued, "interrupted: the worker stopped; will retry"
		ret = runErr
	case permanent(runErr):
		// Bad SQL, a bad config or a refused read fails the same way on
		// every attempt: fail now rather than retry.
		out.state, out.msg = rhizome.RunFailed, runErr.Error()
		ret = river.JobCancel(runErr)
	case job.Attempt < job.MaxAttempts:
		out.state, out.msg = rhizome.RunQueued, runErr.Error()
		ret = runErr
	default:
		out.state, out.msg = rhizome.RunFailed, runErr.Error()
		ret = runErr
	}
	if err := s.finish(logCtx, run, job.Attempt, job.MaxAttempts, out); err != nil {
		// The record could not be written; let River retry the job, which
		// finds the record as it is.
		return errors.Join(ret, err)
	}
	return ret
}

// permanent reports whether a run's error would recur on a retry.
func permanent(err error) bool {
	switch rhizome.Code(err) {
	case rhizome.EInvalid, rhizome.EForbidden, rhizome.EUnauthorized:
		return true
	}
	return false
}

// claim moves a run to running for this attempt, unless it is final (the
// run is returned as it is) or a run of the product, this one included, is
// running (busy is that run's id). In one transaction, so that two workers cannot
// both see the product idle: SQLite has one writer, and on Postgres the
// serializable transactions conflict and the loser retries.
func (s *Scheduler) claim(ctx context.Context, runID string, attempt, maxAttempts int) (run *rhizome.Run, busy string, err error) {
	err = s.store.Update(ctx, func(tx metastore.Tx) error {
		run, busy = nil, ""
		r, err := tx.GetRun(ctx, runID)
		if err != nil {
			return err
		}
		run = r
		if r.State.Done() {
			return nil
		}
		if r.State == rhizome.RunRunning {
			// Its job was rescued while a worker may still hold it: wait
			// for that worker, or for recovery to fail the run.
			busy = r.ID
			return nil
		}
		others, _, err := tx.ListRuns(ctx, metastore.RunListOptions{ProductID: r.ProductID, State: rhizome.RunRunning, Limit: 2})
		if err != nil {
			return err
		}
		if len(others) > 0 {
			busy = others[0].ID
			return nil
		}
		now := s.clock.Now()
		r.State, r.Attempt, r.StartedAt, r.FinishedAt, r.Error = rhizome.RunRunning, attempt, &now, nil, ""
		if err := tx.PutRun(ctx, r); err != nil {
			return err
		}
		return tx.AppendRunLog(ctx, rhizome.RunLog{RunID: runID, At: now, Level: "info",
			Msg: fmt.Sprintf("attempt %d of %d started", attempt, maxAttempts)})
	})
	return run, busy, err
}

type outcome struct {
	state rhizome.RunState
	msg   string
	res   RunResult
}

// finish records how an attempt ended, unless the run was made final
// meanwhile (cancelled, or recovered as dead).
func (s *Scheduler) finish(ctx context.Context, run *rhizome.Run, attempt, maxAttempts int, out outcome) error {
	var final *rhizome.Run
	err := s.store.Update(ctx, func(tx metastore.Tx) error {
		final = nil
		r, err := tx.GetRun(ctx, run.ID)
		if err != nil {
			return err
		}
		if r.State.Done() || r.Attempt != attempt {
			return nil
		}
		now := s.clock.Now()
		r.State, r.Error = out.state, out.msg
		if r.StartedAt != nil {
			r.DurationMS = now.Sub(*r.StartedAt).Milliseconds()
		}
		line := rhizome.RunLog{RunID: r.ID, At: now}
		switch out.state {
		case rhizome.RunSucceeded:
			r.RowsIn, r.RowsOut, r.Bytes, r.SnapshotID = out.res.RowsIn, out.res.RowsOut, out.res.Bytes, out.res.SnapshotID
			if out.res.Version != "" {
				r.Version = out.res.Version
			}
			r.FinishedAt = &now
			line.Level, line.Msg = "info", fmt.Sprintf("attempt %d succeeded: %d rows in, %d rows out", attempt, r.RowsIn, r.RowsOut)
		case rhizome.RunQueued:
			line.Level, line.Msg = "warn", fmt.Sprintf("attempt %d of %d failed: %s; will retry", attempt, maxAttempts, out.msg)
		default:
			// What the attempt read and built before failing (a quarantined
			// run built its rows and did not publish them).
			r.RowsIn, r.RowsOut, r.Bytes = out.res.RowsIn, out.res.RowsOut, out.res.Bytes
			r.FinishedAt = &now
			line.Level, line.Msg = "error", fmt.Sprintf("attempt %d of %d %s: %s", attempt, maxAttempts, out.state, out.msg)
		}
		if err := tx.PutRun(ctx, r); err != nil {
			return err
		}
		if r.State.Done() {
			final = r
		}
		return tx.AppendRunLog(ctx, line)
	})
	if err != nil {
		s.log.Error("jobs: record the end of an attempt", "run", run.ID, "attempt", attempt, "err", err)
		return err
	}
	if final != nil {
		s.metrics.finished(final)
		if s.opt.OnFinish != nil {
			s.opt.OnFinish(cloneRun(final))
		}
	}
	return nil
}

func (s *Scheduler) appendLog(ctx context.Context, runID, level, msg string) {
	err := s.store.Update(ctx, func(tx metastore.Tx) error {
		return tx.AppendRunLog(ctx, rhizome.RunLog{RunID: runID, At: s.clock.Now(), Level: level, Msg: msg})
	})
	if err != nil {
		s.log.Warn("jobs: append to a run's log", "run", runID, "err", err)
	}
}

func cloneRun(r *rhizome.Run) *rhizome.Run {
	c := *r
	return &c
}
