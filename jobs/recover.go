package jobs

import (
	"context"
	"time"

	"github.com/riverqueue/river/rivertype"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/metastore"
)

// recoveredMsg is the error of a run that a dead worker left running.
const recoveredMsg = "worker died; recovered at start"

// recover fails the runs that a dead process left running, so that their
// product can run again, and hands each to Options.OnRecover. Start calls
// it, and the schedule loop every minute.
//
// A run is dead when its job is gone, finished, or waiting to be retried
// (River rescued it), or when its job has been running longer than the
// run's timeout plus a grace period (a live worker would have ended it).
// At Start on SQLite, a job still marked running is dead too: one process
// works the file, and it is only starting now. On Postgres another live
// worker may hold it, so staleness is the only evidence.
func (s *Scheduler) recover(ctx context.Context, atStart bool) error {
	var dead []rhizome.Run
	opt := metastore.RunListOptions{State: rhizome.RunRunning, Limit: 500}
	for {
		runs, next, err := s.store.ListRuns(ctx, opt)
		if err != nil {
			return rhizome.Wrap(err, "jobs: recover runs")
		}
		for _, r := range runs {
			j, err := s.q.job(ctx, r.ID)
			if err != nil {
				return rhizome.Wrap(err, "jobs: recover run %s", r.ID)
			}
			if s.isDead(j, atStart) {
				dead = append(dead, r)
			}
		}
		if next == "" {
			break
		}
		opt.After = next
	}
	if atStart {
		if err := s.requeueOrphans(ctx); err != nil {
			return err
		}
	}
	for _, r := range dead {
		var marked *rhizome.Run
		err := s.store.Update(ctx, func(tx metastore.Tx) error {
			marked = nil
			cur, err := tx.GetRun(ctx, r.ID)
			if err != nil || cur.State != rhizome.RunRunning || cur.Attempt != r.Attempt {
				return err
			}
			now := s.clock.Now()
			cur.State, cur.FinishedAt, cur.Error = rhizome.RunFailed, &now, recoveredMsg
			if cur.StartedAt != nil {
				cur.DurationMS = now.Sub(*cur.StartedAt).Milliseconds()
			}
			if err := tx.PutRun(ctx, cur); err != nil {
				return err
			}
			marked = cur
			return tx.AppendRunLog(ctx, rhizome.RunLog{RunID: r.ID, At: now, Level: "error", Msg: recoveredMsg})
		})
		if err != nil {
			return rhizome.Wrap(err, "jobs: recover run %s", r.ID)
		}
		if marked == nil {
			continue
		}
		s.log.Warn("jobs: recovered a run left running", "run", r.ID, "product", r.ProductID)
		s.metrics.finished(marked)
		if err := s.q.cancel(ctx, r.ID); err != nil {
			s.log.Warn("jobs: cancel the job of a recovered run", "run", r.ID, "err", err)
		}
		if s.opt.OnRecover != nil {
			s.opt.OnRecover(marked)
		}
	}
	return nil
}

// recoverGrace is how long past its timeout a Postgres job marked running
// may go silent before it is taken for dead.
const recoverGrace = 5 * time.Minute

func (s *Scheduler) isDead(j *rivertype.JobRow, atStart bool) bool {
	if j == nil || j.State != rivertype.JobStateRunning {
		return true
	}
	if (atStart && s.opt.Dialect == DialectSQLite) || j.AttemptedAt == nil {
		return true
	}
	var args runArgs
	timeout := s.opt.DefaultTimeout
	if err := unmarshalArgs(j, &args); err == nil && args.timeout() > 0 {
		timeout = args.timeout()
	}
	return time.Since(*j.AttemptedAt) > timeout+recoverGrace
}

// orphanAge is how long a queued run may be without a job before Start
// queues one: Enqueue writes the run, then inserts the job, and a process
// that died between the two left the run waiting for nothing.
const orphanAge = time.Minute

// requeueOrphans queues a job for each queued run that has none. The
// request's timeout died with the process; the run gets the default.
func (s *Scheduler) requeueOrphans(ctx context.Context) error {
	cutoff := s.clock.Now().Add(-orphanAge)
	opt := metastore.RunListOptions{State: rhizome.RunQueued, Limit: 500}
	for {
		runs, next, err := s.store.ListRuns(ctx, opt)
		if err != nil {
			return rhizome.Wrap(err, "jobs: requeue runs")
		}
		for _, r := range runs {
			if r.QueuedAt.After(cutoff) {
				continue
			}
			j, err := s.q.job(ctx, r.ID)
			if err != nil {
				return rhizome.Wrap(err, "jobs: requeue run %s", r.ID)
			}
			if j != nil {
				continue
			}
			args := runArgs{RunID: r.ID, ProductID: r.ProductID, TimeoutMS: s.opt.DefaultTimeout.Milliseconds()}
			if err := s.q.insert(ctx, args, s.opt.MaxAttempts); err != nil {
				return rhizome.Wrap(err, "jobs: requeue run %s", r.ID)
			}
			s.log.Warn("jobs: queued a job for a run that had none", "run", r.ID, "product", r.ProductID)
		}
		if next == "" {
			return nil
		}
		opt.After = next
	}
}
