package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/table"
)

// Recover cleans up after a run whose process died (jobs calls it through
// Options.OnRecover once the run is marked failed): it removes the run's
// work dir and deletes the files its publish may have left in the
// product's table that no snapshot references. The table itself needs no
// repair: a publish is one atomic catalog commit, so the table is at the
// snapshot before the run or at the run's own.
//
// The product's table is the one for its current version, and the run's
// version too when that names another major (the product may have moved
// on since). For a table that does not exist yet, what a crashed first
// publish left at its default location goes (table.RemoveOrphans). While
// another run of the product is running, orphan removal is left for a
// later recovery: that run may be uploading files it has not committed.
// Nor are files modified since Recover began removed: the dead run's files
// are older, and a run that starts after the check above writes newer ones.
func (p *Pipeline) Recover(ctx context.Context, run *rhizome.Run) error {
	// Wall time, as file mtimes are: not the pipeline's clock.
	began := time.Now()
	var errs []error
	if run.ID != "" && filepath.Base(run.ID) == run.ID {
		if err := os.RemoveAll(filepath.Join(p.opt.WorkDir, run.ID)); err != nil {
			errs = append(errs, rhizome.Wrap(err, "recover run %s: remove its work dir", run.ID))
		}
	}
	busy, err := p.otherRunning(ctx, run)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	if busy != "" {
		p.opt.Logger.Info("pipeline: recover: orphan files left for later; another run of the product is running",
			"run", run.ID, "product", run.ProductID, "running", busy)
		return errors.Join(errs...)
	}
	refs, err := p.recoverRefs(ctx, run)
	if err != nil {
		errs = append(errs, err)
	}
	for _, ref := range refs {
		removed, err := p.opt.Tables.RemoveOrphans(ctx, ref, began)
		switch {
		case rhizome.Code(err) == rhizome.ENotFound:
		case err != nil:
			errs = append(errs, rhizome.Wrap(err, "recover run %s", run.ID))
		case len(removed) > 0:
			p.opt.Logger.Info("pipeline: recover: removed orphan files", "run", run.ID, "table", ref.String(), "files", len(removed))
		}
	}
	return errors.Join(errs...)
}

// otherRunning returns the id of a running run of run's product other
// than run, or "".
func (p *Pipeline) otherRunning(ctx context.Context, run *rhizome.Run) (string, error) {
	runs, _, err := p.opt.Store.ListRuns(ctx, metastore.RunListOptions{ProductID: run.ProductID, State: rhizome.RunRunning, Limit: 2})
	if err != nil {
		return "", rhizome.Wrap(err, "recover run %s: list the product's running runs", run.ID)
	}
	for _, r := range runs {
		if r.ID != run.ID {
			return r.ID, nil
		}
	}
	return "", nil
}

// recoverRefs lists the tables a run of run's product may have published
// to: its current version's and the run's own version's.
func (p *Pipeline) recoverRefs(ctx context.Context, run *rhizome.Run) ([]table.Ref, error) {
	var refs []table.Ref
	add := func(version string) {
		if version == "" {
			return
		}
		ref := table.RefFor(run.ProductID, version)
		for _, r := range refs {
			if r == ref {
				return
			}
		}
		refs = append(refs, ref)
	}
	dp, _, err := p.product(ctx, run.ProductID)
	switch {
	case err == nil:
		add(dp.CurrentVersion)
	case rhizome.Code(err) != rhizome.ENotFound:
		err = rhizome.Wrap(err, "recover run %s: read product %s", run.ID, run.ProductID)
	default:
		err = nil // deleted since: the run's own version still names its table
	}
	add(run.Version)
	return refs, err
}
