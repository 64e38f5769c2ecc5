package jobs

import (
	"context"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
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
	if err := s.releaseStuck(ctx, atStart); err != nil {
		return err
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

// stuckReleaser is a queue that can list the jobs marked running and hand
// back the ones a dead worker held.
type stuckReleaser interface {
	// runningJobs returns the run jobs marked running.
	runningJobs(ctx context.Context) ([]*rivertype.JobRow, error)
	// release makes a job marked running available again, as River does
	// with a job its worker gave back at shutdown: the attempt the dead
	// worker began does not count. It reports false if the job was no
	// longer running.
	release(ctx context.Context, j *rivertype.JobRow) (bool, error)
}

// releaseStuck makes the queued runs whose job a dead worker left running
// runnable again. River marks a job running when a worker fetches it, and
// the worker then marks the run running (claim); a worker killed between
// the two left the run queued with nothing to run it until River rescued
// the job (after RescueStuckJobsAfter: hours). Such a job is dead by the
// evidence isDead weighs: at Start on SQLite any job marked running, on
// Postgres (and later on SQLite) one running longer than its run's timeout
// plus recoverGrace.
//
// Runs that are running are not touched here (recover fails them), nor are
// finished or unknown runs (their job cancels itself when it runs).
func (s *Scheduler) releaseStuck(ctx context.Context, atStart bool) error {
	rq, ok := s.q.(stuckReleaser)
	if !ok {
		return nil
	}
	jobs, err := rq.runningJobs(ctx)
	if err != nil {
		return rhizome.Wrap(err, "jobs: list running jobs")
	}
	for _, j := range jobs {
		if !s.isDead(j, atStart) {
			continue
		}
		var args runArgs
		if err := unmarshalArgs(j, &args); err != nil || args.RunID == "" {
			continue
		}
		r, err := s.store.GetRun(ctx, args.RunID)
		switch {
		case rhizome.Code(err) == rhizome.ENotFound:
			continue
		case err != nil:
			return rhizome.Wrap(err, "jobs: release the job of run %s", args.RunID)
		case r.State != rhizome.RunQueued:
			continue
		}
		released, err := rq.release(ctx, j)
		if err != nil {
			return rhizome.Wrap(err, "jobs: release the job of run %s", r.ID)
		}
		if released {
			s.log.Warn("jobs: released the job of a queued run that a dead worker held", "run", r.ID, "product", r.ProductID, "job", j.ID)
		}
	}
	return nil
}

func (q *riverQueue[TTx]) runningJobs(ctx context.Context) ([]*rivertype.JobRow, error) {
	var out []*rivertype.JobRow
	params := river.NewJobListParams().Kinds(runArgs{}.Kind()).States(rivertype.JobStateRunning).First(500)
	for {
		res, err := q.client.JobList(ctx, params)
		if err != nil {
			return nil, err
		}
		out = append(out, res.Jobs...)
		if len(res.Jobs) < 500 || res.LastCursor == nil {
			return out, nil
		}
		params = params.After(res.LastCursor)
	}
}

func (q *riverQueue[TTx]) release(ctx context.Context, j *rivertype.JobRow) (bool, error) {
	// Only if still running (the update is conditional on it): a job that
	// was finished or rescued meanwhile is left as it is.
	p := riverdriver.JobSetStateInterrupted(j.ID, time.Now(), max(j.Attempt-1, 0), nil)
	rows, err := q.client.Driver().GetExecutor().JobSetStateIfRunningMany(ctx, &riverdriver.JobSetStateIfRunningManyParams{
		ID:              []int64{p.ID},
		Attempt:         []*int{p.Attempt},
		ErrData:         [][]byte{p.ErrData},
		FinalizedAt:     []*time.Time{p.FinalizedAt},
		MetadataDoMerge: []bool{p.MetadataDoMerge},
		MetadataUpdates: [][]byte{p.MetadataUpdates},
		ScheduledAt:     []*time.Time{p.ScheduledAt},
		Schema:          q.client.Schema(),
		State:           []rivertype.JobState{p.State},
	})
	if err != nil {
		return false, err
	}
	for _, r := range rows {
		if r.ID == j.ID && r.State == rivertype.JobStateAvailable {
			return true, nil
		}
	}
	return false, nil
}
