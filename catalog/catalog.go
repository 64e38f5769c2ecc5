// Package catalog applies manifests to the metastore. It owns the apply
// path: parse and validate the input (through spec), resolve references
// against the store, plan each object (create, update with a field diff,
// unchanged, delete on prune), check that the caller may make each change
// (the ownership rules), and write everything in one transaction with a
// revision per object. It also keeps product versions in step with the
// manifests' current_version and previous_versions.
package catalog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/spec"
)

// Catalog applies manifests.
type Catalog struct {
	store  metastore.Store
	clock  rhizome.Clock
	logger *slog.Logger
	newID  func() string

	mu        sync.Mutex
	onApplied []func(context.Context)
}

// OnApplied registers fn to run after every apply that wrote something
// (e.g. to refresh pipeline schedules).
func (c *Catalog) OnApplied(fn func(context.Context)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onApplied = append(c.onApplied, fn)
}

// Options configures a Catalog; zero values pick defaults.
type Options struct {
	Clock  rhizome.Clock
	Logger *slog.Logger
	// NewID makes apply ids; default random "ap_" ids.
	NewID func() string
}

// New returns a Catalog over store.
func New(store metastore.Store, opt Options) *Catalog {
	c := &Catalog{store: store, clock: opt.Clock, logger: opt.Logger, newID: opt.NewID}
	if c.clock == nil {
		c.clock = rhizome.SystemClock{}
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if c.newID == nil {
		c.newID = randomID
	}
	return c
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "ap_" + hex.EncodeToString(b[:])
}

var errDryRun = errors.New("dry run")

// Apply plans the request's files and, unless it is a dry run, applies the
// plan in one transaction. Problems in the input come back as one EInvalid
// error listing them all; nothing is written unless everything is valid,
// allowed and current.
func (c *Catalog) Apply(ctx context.Context, actor *rhizome.Principal, req rhizome.ApplyRequest) (*rhizome.ApplyResult, error) {
	files := make([]spec.File, len(req.Files))
	for i, f := range req.Files {
		files[i] = spec.File{Name: f.Name, Data: []byte(f.Content)}
	}
	if len(files) == 0 {
		return nil, rhizome.Errorf(rhizome.EInvalid, "nothing to apply: the request holds no files").WithHint("rhizome apply -f FILE|DIR")
	}
	docs, perr := spec.Parse(files...)
	if perr != nil && rhizome.Code(perr) != rhizome.EInvalid {
		return nil, perr
	}
	return c.run(ctx, actor, req, docs, rhizome.ProblemsOf(perr), nil)
}

// Delete removes one object, as a one-change apply.
func (c *Catalog) Delete(ctx context.Context, actor *rhizome.Principal, kind rhizome.Kind, id string, expected int64) (*rhizome.ApplyResult, error) {
	req := rhizome.ApplyRequest{}
	if expected != metastore.AnyRevision {
		req.Expected = map[string]int64{key(kind, id): expected}
	}
	return c.run(ctx, actor, req, nil, nil, &rhizome.Change{Action: rhizome.ActionDelete, Kind: kind, ID: id})
}

// resolver sees the store inside the apply's transaction, minus the objects
// the apply deletes.
type resolver struct {
	ctx     context.Context
	tx      metastore.Reader
	deleted map[string]bool
}

func (r resolver) Exists(kind rhizome.Kind, id string) bool {
	if r.deleted[key(kind, id)] {
		return false
	}
	_, err := r.tx.Get(r.ctx, kind, id)
	return err == nil
}

func (c *Catalog) run(ctx context.Context, actor *rhizome.Principal, req rhizome.ApplyRequest, docs []*spec.Document, problems []rhizome.Problem, del *rhizome.Change) (*rhizome.ApplyResult, error) {
	res := &rhizome.ApplyResult{ApplyID: c.newID(), DryRun: req.DryRun}
	err := c.store.Update(ctx, func(tx metastore.Tx) error {
		res.Changes = res.Changes[:0]
		w := &world{ctx: ctx, r: tx, input: map[string]*spec.Document{}}
		for _, d := range docs {
			w.input[key(d.Kind, d.ID)] = d
		}
		var deletes []rhizome.Change
		if del != nil {
			deletes = append(deletes, *del)
		}
		if req.Prune {
			p, err := pruneSet(ctx, tx, docs)
			if err != nil {
				return err
			}
			deletes = append(deletes, p...)
		}
		deleted := map[string]bool{}
		for _, d := range deletes {
			deleted[d.Key()] = true
		}
		// Update may run fn again (Postgres retries): build on a copy.
		probs := append([]rhizome.Problem(nil), problems...)
		if len(docs) > 0 {
			probs = append(probs, rhizome.ProblemsOf(spec.Check(docs, resolver{ctx, tx, deleted}))...)
			probs = append(probs, connectorProblems(docs)...)
			probs = append(probs, qualityProblems(ctx, tx, docs, deleted)...)
		}
		if len(probs) > 0 {
			return invalid(probs)
		}
		// Plan.
		type step struct {
			change    rhizome.Change
			cur, next json.RawMessage
			doc       *spec.Document
		}
		var steps []step
		sort.SliceStable(docs, func(i, j int) bool {
			if a, b := docs[i].Kind.Order(), docs[j].Kind.Order(); a != b {
				return a < b
			}
			return docs[i].ID < docs[j].ID
		})
		for _, d := range docs {
			ch := rhizome.Change{Kind: d.Kind, ID: d.ID, Source: &rhizome.Pos{File: d.Pos.File, Line: d.Pos.Line}}
			var cur json.RawMessage
			obj, err := tx.Get(ctx, d.Kind, d.ID)
			switch {
			case rhizome.Code(err) == rhizome.ENotFound:
				ch.Action = rhizome.ActionCreate
			case err != nil:
				return err
			default:
				cur = obj.Body
				ch.BaseRevision = obj.Revision
				diff, err := Diff(obj.Body, d.Body)
				if err != nil {
					return rhizome.Wrap(err, "comparing %s", ch.Key())
				}
				ch.Diff = diff
				ch.Action = rhizome.ActionUpdate
				if len(diff) == 0 {
					ch.Action = rhizome.ActionUnchanged
				}
			}
			if inf, ok := d.Value.(*rhizome.Infrastructure); ok {
				ch.Notes = mappingNotes(inf)
			}
			steps = append(steps, step{change: ch, cur: cur, next: d.Body, doc: d})
		}
		for _, dc := range deletes {
			obj, err := tx.Get(ctx, dc.Kind, dc.ID)
			if err != nil {
				return err
			}
			dc.BaseRevision = obj.Revision
			steps = append(steps, step{change: dc, cur: obj.Body})
		}
		// Check pinned revisions and permissions before writing anything.
		for _, s := range steps {
			if want, ok := req.Expected[s.change.Key()]; ok && want != s.change.BaseRevision {
				return conflict(s.change, want)
			}
			if s.change.Action == rhizome.ActionUnchanged {
				continue
			}
			if err := w.authorize(actor, s.change, s.cur, s.next); err != nil {
				return err
			}
		}
		for _, s := range steps {
			if s.change.Action == rhizome.ActionDelete {
				if err := referrers(ctx, tx, s.change.Kind, s.change.ID, deleted); err != nil {
					return err
				}
			}
			res.Changes = append(res.Changes, s.change)
		}
		if req.DryRun {
			return errDryRun
		}
		// Write.
		for i, s := range steps {
			ch := &res.Changes[i]
			switch ch.Action {
			case rhizome.ActionUnchanged:
				ch.Revision = ch.BaseRevision
			case rhizome.ActionDelete:
				if err := tx.Delete(ctx, ch.Kind, ch.ID, ch.BaseRevision, actor.ID, res.ApplyID); err != nil {
					return err
				}
			default:
				obj := &rhizome.Object{Kind: ch.Kind, ID: ch.ID, Body: s.next, Labels: spec.LabelsOf(s.doc)}
				rev, err := tx.Put(ctx, obj, ch.BaseRevision, actor.ID, res.ApplyID)
				if err != nil {
					return err
				}
				ch.Revision = rev
				if dp, ok := s.doc.Value.(*rhizome.DataProduct); ok {
					if err := c.putVersions(ctx, tx, dp, rev, s.next); err != nil {
						return err
					}
				}
			}
		}
		res.Applied = true
		return nil
	})
	if err != nil && !errors.Is(err, errDryRun) {
		return nil, err
	}
	for _, ch := range res.Changes {
		switch ch.Action {
		case rhizome.ActionCreate:
			res.Summary.Create++
		case rhizome.ActionUpdate:
			res.Summary.Update++
		case rhizome.ActionUnchanged:
			res.Summary.Unchanged++
		case rhizome.ActionDelete:
			res.Summary.Delete++
		}
	}
	if res.Applied {
		c.mu.Lock()
		hooks := append([]func(context.Context){}, c.onApplied...)
		c.mu.Unlock()
		for _, fn := range hooks {
			fn(ctx)
		}
		c.logger.InfoContext(ctx, "applied", "apply_id", res.ApplyID, "actor", actor.ID,
			"create", res.Summary.Create, "update", res.Summary.Update, "delete", res.Summary.Delete)
	}
	return res, nil
}

func (c *Catalog) putVersions(ctx context.Context, tx metastore.Tx, dp *rhizome.DataProduct, rev int64, body json.RawMessage) error {
	now := c.clock.Now()
	if err := tx.PutVersion(ctx, &rhizome.ProductVersion{ProductID: dp.ID, Version: dp.CurrentVersion, Current: true, Revision: rev, Body: body, CreatedAt: now}); err != nil {
		return err
	}
	for _, v := range dp.PreviousVersions {
		_, err := tx.Version(ctx, dp.ID, v)
		if rhizome.Code(err) == rhizome.ENotFound {
			err = tx.PutVersion(ctx, &rhizome.ProductVersion{ProductID: dp.ID, Version: v, CreatedAt: now})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func invalid(problems []rhizome.Problem) error {
	sort.SliceStable(problems, func(i, j int) bool {
		a, b := problems[i], problems[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	msg := fmt.Sprintf("%d problems in the input; nothing was applied", len(problems))
	if len(problems) == 1 {
		msg = "1 problem in the input; nothing was applied"
	}
	return rhizome.Invalid(msg, problems...)
}

func conflict(c rhizome.Change, want int64) error {
	var msg string
	switch {
	case want == 0:
		msg = fmt.Sprintf("%s was created by someone else since the plan (now at revision %d)", c.Key(), c.BaseRevision)
	case c.BaseRevision == 0:
		msg = fmt.Sprintf("%s was deleted since the plan was made on revision %d", c.Key(), want)
	default:
		msg = fmt.Sprintf("%s changed since the plan: it is at revision %d, the plan was made on %d", c.Key(), c.BaseRevision, want)
	}
	return rhizome.Errorf(rhizome.EConflict, "%s; nothing was applied", msg).WithHint("run the apply again to plan against the current state")
}

// MayOperate says whether actor may operate a product (run, backfill,
// cancel its runs): the same people who may change it.
func (c *Catalog) MayOperate(ctx context.Context, actor *rhizome.Principal, productID string) error {
	obj, err := c.store.Get(ctx, rhizome.KindDataProduct, productID)
	if err != nil {
		return err
	}
	if actor.Admin {
		return nil
	}
	w := &world{ctx: ctx, r: c.store, input: map[string]*spec.Document{}}
	g := &gate{w: w, p: actor}
	if w.mayChangeProduct(g, obj.Body, nil) {
		return nil
	}
	return g.refuse(rhizome.ActionUpdate, rhizome.KindDataProduct, productID, "only its owners operate it")
}
