package table

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	iceio "github.com/apache/iceberg-go/io"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/rhizome-mesh/rhizome"
)

// Snapshots lists the table's snapshots, oldest first.
func (c *Catalog) Snapshots(ctx context.Context, ref Ref) ([]Snapshot, error) {
	ctx = c.withIO(ctx)
	tbl, err := c.load(ctx, ref)
	if err != nil {
		return nil, err
	}
	meta := tbl.Metadata()
	var out []Snapshot
	for _, s := range meta.Snapshots() {
		out = append(out, snapshotOf(meta, &s))
	}
	slices.SortStableFunc(out, func(a, b Snapshot) int { return a.Time.Compare(b.Time) })
	return out, nil
}

// Current returns the table's current snapshot; ENotFound if the table
// does not exist or has none.
func (c *Catalog) Current(ctx context.Context, ref Ref) (*Snapshot, error) {
	ctx = c.withIO(ctx)
	tbl, err := c.load(ctx, ref)
	if err != nil {
		return nil, err
	}
	cur := tbl.CurrentSnapshot()
	if cur == nil {
		return nil, rhizome.Errorf(rhizome.ENotFound, "table %s has no snapshot yet", ref)
	}
	s := snapshotOf(tbl.Metadata(), cur)
	return &s, nil
}

// DataFiles returns the data files and the schema of a snapshot (time
// travel). Files of a file:// table are local paths; those of an s3://
// table are s3:// URIs, which Fetch downloads. Those of an encrypted table
// are rhizome+file:// or rhizome+s3:// URIs, which Fetch decrypts (see
// Readable, crypt_io.go).
func (c *Catalog) DataFiles(ctx context.Context, ref Ref, at AsOf) ([]string, []Column, error) {
	ctx = c.withIO(ctx)
	tbl, err := c.load(ctx, ref)
	if err != nil {
		return nil, nil, err
	}
	s, err := resolve(tbl, ref, at)
	if err != nil {
		return nil, nil, err
	}
	files, err := snapshotFiles(ctx, tbl, s)
	if err != nil {
		return nil, nil, rhizome.Wrap(err, "table %s", ref)
	}
	for i, f := range files {
		if p, ok := localPath(f); ok {
			files[i] = p
		}
	}
	return files, columnsOf(schemaOf(tbl.Metadata(), s)), nil
}

func resolve(tbl *icetable.Table, ref Ref, at AsOf) (*icetable.Snapshot, error) {
	var s *icetable.Snapshot
	switch {
	case at.SnapshotID != 0:
		if s = tbl.SnapshotByID(at.SnapshotID); s == nil {
			return nil, rhizome.Errorf(rhizome.ENotFound, "table %s has no snapshot %d", ref, at.SnapshotID).
				WithHint("it may have expired; list the table's snapshots")
		}
	case !at.Time.IsZero():
		if s = tbl.SnapshotAsOf(at.Time.UnixMilli(), true); s == nil {
			return nil, rhizome.Errorf(rhizome.ENotFound, "table %s had no snapshot at %s", ref, at.Time.UTC().Format(time.RFC3339Nano)).
				WithHint("pick a time after the first publish (or one whose snapshot has not expired)")
		}
	default:
		if s = tbl.CurrentSnapshot(); s == nil {
			return nil, rhizome.Errorf(rhizome.ENotFound, "table %s has no snapshot yet", ref)
		}
	}
	return s, nil
}

// localPath turns a file:// URI into a path.
func localPath(loc string) (string, bool) {
	u, err := url.Parse(loc)
	if err != nil || u.Scheme != "file" {
		return "", false
	}
	return filepath.FromSlash(u.Path), true
}

// Fetch downloads a data file that DataFiles returned into localDir and
// returns its local path; a local path is returned as is.
func (c *Catalog) Fetch(ctx context.Context, uri, localDir string) (string, error) {
	ctx = c.withIO(ctx)
	if p, ok := localPath(uri); ok {
		return p, nil
	}
	if filepath.IsAbs(uri) {
		return uri, nil
	}
	fsys, err := iceio.LoadFS(ctx, c.props, uri)
	if err != nil {
		return "", rhizome.Wrap(err, "fetch %s", uri)
	}
	u, err := url.Parse(uri)
	if err != nil {
		return "", rhizome.Errorf(rhizome.EInvalid, "fetch %s: %v", uri, err)
	}
	if err := os.MkdirAll(localDir, 0o700); err != nil {
		return "", rhizome.Wrap(err, "fetch %s", uri)
	}
	dst := filepath.Join(localDir, path.Base(u.Path))
	in, err := fsys.Open(uri)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", rhizome.Errorf(rhizome.ENotFound, "fetch %s: no such object", uri).WithHint("its snapshot may have expired")
		}
		return "", rhizome.Wrap(err, "fetch %s", uri)
	}
	defer in.Close()
	tmp, err := os.CreateTemp(localDir, ".fetch-*")
	if err != nil {
		return "", rhizome.Wrap(err, "fetch %s", uri)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, readerCtx{ctx, in}); err != nil {
		tmp.Close()
		return "", rhizome.Wrap(err, "fetch %s", uri)
	}
	if err := tmp.Close(); err != nil {
		return "", rhizome.Wrap(err, "fetch %s", uri)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", rhizome.Wrap(err, "fetch %s", uri)
	}
	return dst, nil
}

// readerCtx stops a copy when ctx is done.
type readerCtx struct {
	ctx context.Context
	r   io.Reader
}

func (r readerCtx) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// Expire removes the snapshots older than olderThan, keeping at least the
// keepLast newest (and always the current one), and deletes the files only
// they referenced. It returns the expired snapshots' ids.
func (c *Catalog) Expire(ctx context.Context, ref Ref, olderThan time.Time, keepLast int) ([]int64, error) {
	ctx = c.withIO(ctx)
	unlock := c.lock(ref)
	defer unlock()
	tbl, err := c.load(ctx, ref)
	if err != nil {
		return nil, err
	}
	// iceberg-go measures snapshot age against the wall clock, which also
	// stamped the snapshots.
	age := max(time.Since(olderThan), 0)
	txn := tbl.NewTransaction()
	if err := txn.ExpireSnapshots(icetable.WithOlderThan(age), icetable.WithRetainLast(max(keepLast, 1))); err != nil {
		return nil, rhizome.Wrap(err, "table %s: expire snapshots", ref)
	}
	next, err := txn.Commit(ctx)
	if next != nil && onlyNotExist(err) {
		// The snapshots are gone; deleting their files found some gone
		// already (iceberg-go deletes a replaced file once for each
		// expired snapshot that lists it).
		err = nil
	}
	if err != nil {
		if errors.Is(err, icetable.ErrCommitFailed) {
			return nil, &rhizome.Error{Code: rhizome.EConflict, Err: err,
				Message: fmt.Sprintf("table %s changed while expiring snapshots", ref), Hint: "try again"}
		}
		return nil, rhizome.Wrap(err, "table %s: expire snapshots", ref)
	}
	var expired []int64
	for _, s := range tbl.Metadata().Snapshots() {
		if next.SnapshotByID(s.SnapshotID) == nil {
			expired = append(expired, s.SnapshotID)
		}
	}
	return expired, nil
}

// RemoveOrphans deletes the files under the table's location that no
// snapshot references (what a crashed publish left behind) and returns
// their locations. Files modified at or after olderThan stay, referenced or
// not (the file's mtime locally, the blob's ModTime on S3): another process
// may be uploading files for a publish it has not committed yet, so pass a
// moment before which every such publish is known to have ended (or
// failed). Publishes from this process wait.
func (c *Catalog) RemoveOrphans(ctx context.Context, ref Ref, olderThan time.Time) ([]string, error) {
	ctx = c.withIO(ctx)
	unlock := c.lock(ref)
	defer unlock()
	tbl, err := c.load(ctx, ref)
	if rhizome.Code(err) == rhizome.ENotFound {
		return c.removeUncreated(ctx, ref, olderThan, err)
	}
	if err != nil {
		return nil, err
	}
	fsys, err := tbl.FS(ctx)
	if err != nil {
		return nil, rhizome.Wrap(err, "table %s: remove orphan files", ref)
	}
	// iceberg-go takes an age and measures it from its own clock, read a
	// little later than ours: its cutoff may fall just after olderThan. So
	// each candidate's time is checked again before it is deleted.
	var (
		keptMu sync.Mutex
		kept   = map[string]bool{}
	)
	remove := func(loc string) error {
		if !modifiedBefore(fsys, loc, olderThan) {
			keptMu.Lock()
			kept[loc] = true
			keptMu.Unlock()
			return nil
		}
		return fsys.Remove(loc)
	}
	res, err := tbl.DeleteOrphanFiles(ctx, icetable.WithFilesOlderThan(max(time.Since(olderThan), 0)),
		icetable.WithDeleteFunc(remove))
	if err != nil {
		return nil, rhizome.Wrap(err, "table %s: remove orphan files", ref)
	}
	removed := make([]string, 0, len(res.DeletedFiles))
	for _, f := range res.DeletedFiles {
		if kept[f] {
			continue
		}
		if p, ok := localPath(f); ok {
			f = p
		}
		removed = append(removed, f)
	}
	slices.Sort(removed)
	return removed, nil
}

// removeUncreated deletes what a crashed first publish left at the
// table's default location (<warehouse>/<namespace>.db/<name>) when the
// catalog has no such table: the metadata file of a create that never
// committed, uploaded data files. No snapshot can reference them; the
// cutoff keeps a concurrent first publish's files. With nothing there it
// returns notFound, the table's ENotFound.
func (c *Catalog) removeUncreated(ctx context.Context, ref Ref, olderThan time.Time, notFound error) ([]string, error) {
	loc := strings.TrimSuffix(c.props["warehouse"], "/") + "/" + ref.Namespace + ".db/" + ref.Name
	fsys, err := iceio.LoadFS(ctx, c.props, loc)
	if err != nil {
		return nil, rhizome.Wrap(err, "table %s: remove orphan files", ref)
	}
	l, ok := fsys.(iceio.ListableIO)
	if !ok {
		return nil, notFound
	}
	var old []string
	err = l.WalkDir(loc, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if mt := info.ModTime(); !mt.IsZero() && mt.Before(olderThan) {
			old = append(old, p)
		}
		return nil
	})
	if err != nil && !onlyNotExist(err) {
		return nil, rhizome.Wrap(err, "table %s: list the files of a table never created", ref)
	}
	if len(old) == 0 {
		return nil, notFound
	}
	var removed []string
	var errs []error
	for _, f := range old {
		if err := fsys.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		if p, ok := localPath(f); ok {
			f = p
		}
		removed = append(removed, f)
	}
	slices.Sort(removed)
	if len(errs) > 0 {
		return removed, rhizome.Wrap(errors.Join(errs...), "table %s: remove orphan files", ref)
	}
	return removed, nil
}

// modifiedBefore reports whether the file at loc was last modified before
// t. A file it cannot stat, or whose time is unknown, counts as new: it
// is kept.
func modifiedBefore(fsys iceio.IO, loc string, t time.Time) bool {
	if c, ok := fsys.(*cryptIO); ok {
		// The storage's own file: opening it through cryptIO would decrypt
		// it, and an orphan may be no valid ciphertext (half an upload).
		fsys, loc = c.inner, plainLocation(loc)
	}
	f, err := fsys.Open(loc)
	if err != nil {
		return false
	}
	defer f.Close()
	info, err := f.Stat()
	return err == nil && !info.ModTime().IsZero() && info.ModTime().Before(t)
}

// onlyNotExist reports whether err is made only of "file does not exist"
// errors (errors.Join trees).
func onlyNotExist(err error) bool {
	if err == nil {
		return false
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if e != nil && !onlyNotExist(e) {
				return false
			}
		}
		return true
	}
	return errors.Is(err, fs.ErrNotExist)
}
