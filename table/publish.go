package table

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	iceio "github.com/apache/iceberg-go/io"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/rhizome-mesh/rhizome"
)

// Mode says what a publish does to the data already in the table.
type Mode string

const (
	// Replace makes the files the table's only data.
	Replace Mode = "replace"
	// Append adds the files to the table's data.
	Append Mode = "append"
)

// PublishRequest is one publish of a product version's data.
type PublishRequest struct {
	Ref Ref
	// Location is the table's location when the publish creates it
	// (file:///abs/dir, an absolute directory, or s3://bucket/prefix); ""
	// means <warehouse>/<namespace>.db/<name>. An existing table keeps
	// its location.
	Location string
	// Files are local Parquet files (as DuckDB writes them: no field ids),
	// all with the same columns.
	Files []string
	Mode  Mode
	// Properties (run id, product version...) go into the snapshot
	// summary, each key prefixed with PropertyPrefix.
	Properties map[string]string
	// Encrypt creates the table encrypted at rest (the manifest's
	// storage.encryption: "AES-256"; see crypt.go): its data files are
	// encrypted with ProductID's data key from Options.Keys. A table is
	// encrypted or not from its creation on; publishes to an encrypted
	// table always encrypt.
	Encrypt bool
	// ProductID owns the data key (e.g. dp.customer.360); "" means the
	// table's name (Ref).
	ProductID string
}

// Publish commits the files as one new snapshot of the table, creating the
// namespace and the table (its schema from the files) on first publish.
// The files are copied into the table's data directory under new names
// (hard-linked instead when the table is a plain local directory on the
// files' filesystem: the caller's files are left in place either way);
// readers see the table before or after, never a mix. New columns are
// added to the schema; a missing column or a changed type is EConflict
// (it needs a new major version). A concurrent publish to the table from
// another process makes one of them fail with EConflict. On failure the
// copies are deleted and the table is unchanged.
func (c *Catalog) Publish(ctx context.Context, req PublishRequest) (_ *Snapshot, err error) {
	ctx = c.withIO(ctx)
	ref := req.Ref
	if err := ref.check(); err != nil {
		return nil, err
	}
	switch req.Mode {
	case Replace, Append:
	default:
		return nil, rhizome.Errorf(rhizome.EInvalid, "table %s: unknown publish mode %q", ref, req.Mode).WithHint(`want "replace" or "append"`)
	}
	if len(req.Files) == 0 {
		return nil, rhizome.Errorf(rhizome.EInvalid, "table %s: nothing to publish", ref).WithHint("pass at least one Parquet file")
	}
	location, err := normalizeLocation(req.Location)
	if err != nil {
		return nil, rhizome.Wrap(err, "table %s", ref)
	}
	if req.Encrypt { // crypt_io.go
		location = c.encryptedLocation(ref, location)
	}
	fileSchema, err := schemaOfFiles(req.Files)
	if err != nil {
		return nil, rhizome.Wrap(err, "table %s", ref)
	}

	unlock := c.lock(ref)
	defer unlock()

	tbl, err := c.loadOrCreate(ctx, ref, location, fileSchema)
	if err != nil {
		return nil, err
	}
	added, err := evolution(ref, tbl.Schema(), fileSchema)
	if err != nil {
		return nil, err
	}

	if err := c.checkEncryption(req, tbl.Location()); err != nil { // crypt_io.go
		return nil, err
	}
	fsys, err := tbl.FS(ctx)
	if err != nil {
		return nil, rhizome.Wrap(err, "table %s: open storage", ref)
	}
	// An encrypted table's IO encrypts the uploads with the product's key.
	fsys = cryptForWriting(fsys, encryptionProductID(req))
	var uploaded, staged []string
	committed := false
	defer func() {
		if err != nil && !committed && len(uploaded)+len(staged) > 0 {
			// No orphans: no snapshot references the copies. A blob
			// store's FileIO keeps the context it was made with, so
			// delete through one that a cancelled publish did not end.
			if fsys, ferr := tbl.FS(context.WithoutCancel(ctx)); ferr == nil {
				removeAll(fsys, append(uploaded, staged...))
			}
		}
	}()
	if uploaded, err = c.upload(ctx, fsys, tbl.Location(), req.Files); err != nil {
		return nil, rhizome.Wrap(err, "table %s: upload", ref)
	}
	if c.testHookBeforeCommit != nil {
		if err := c.testHookBeforeCommit(); err != nil {
			return nil, err
		}
	}
	next, staged, err := c.commit(ctx, tbl, req, added, uploaded)
	if err != nil && rhizome.Code(err) != rhizome.EConflict {
		// The commit's fate is unknown (the catalog may have taken it):
		// look before deleting the files a snapshot may now reference.
		next, committed, err = c.afterFailedCommit(context.WithoutCancel(ctx), tbl, uploaded, err)
	}
	if err != nil {
		return nil, err
	}
	cur := next.CurrentSnapshot()
	if cur == nil {
		committed = true // the files may be referenced; RemoveOrphans decides
		return nil, rhizome.Errorf(rhizome.EInternal, "table %s: the commit left no current snapshot", ref)
	}
	s := snapshotOf(next.Metadata(), cur)
	return &s, nil
}

// afterFailedCommit looks at the table after a commit failed with err.
// If the current snapshot references the files, the commit went through
// and it returns the table. If another snapshot took the place of base's,
// a concurrent publish won: EConflict. When it cannot tell, committed is
// true so that the files stay (RemoveOrphans can delete them later).
func (c *Catalog) afterFailedCommit(ctx context.Context, base *icetable.Table, files []string, err error) (_ *icetable.Table, committed bool, _ error) {
	ref := Ref{Namespace: base.Identifier()[0], Name: base.Identifier()[1]}
	tbl, lerr := c.cat.LoadTable(ctx, ref.ident())
	if lerr != nil {
		return nil, true, err
	}
	cur, lerr := currentFiles(ctx, tbl)
	if lerr != nil {
		return nil, true, err
	}
	for _, f := range cur {
		if slices.Contains(files, f) {
			return tbl, true, nil
		}
	}
	if snapshotID(tbl.CurrentSnapshot()) != snapshotID(base.CurrentSnapshot()) {
		return nil, false, conflict(ref, err)
	}
	return nil, false, err
}

func snapshotID(s *icetable.Snapshot) int64 {
	if s == nil {
		return 0
	}
	return s.SnapshotID
}

func conflict(ref Ref, err error) error {
	return &rhizome.Error{Code: rhizome.EConflict, Err: err,
		Message: fmt.Sprintf("table %s: another publish committed first", ref),
		Hint:    "run the pipeline again; it will publish on top of the new snapshot"}
}

// commit commits the files as one snapshot on top of tbl's current one.
// staged lists the metadata files (manifests, manifest list) it wrote for
// the snapshot, for the caller to delete if the commit did not happen.
func (c *Catalog) commit(ctx context.Context, tbl *icetable.Table, req PublishRequest, added []iceberg.NestedField, files []string) (next *icetable.Table, staged []string, err error) {
	ref := req.Ref
	props := iceberg.Properties{}
	for k, v := range req.Properties {
		props[PropertyPrefix+k] = v
	}
	txn := tbl.NewTransaction()
	// Pin the snapshot the publish started from, so that a concurrent
	// publish makes this commit fail instead of replaying on top of it.
	if err := txn.AssertRefSnapshotID(icetable.MainBranch); err != nil {
		return nil, nil, rhizome.Wrap(err, "table %s", ref)
	}
	if len(added) > 0 {
		var opts []icetable.UpdateSchemaOption
		if nm := tbl.Metadata().NameMapping(); nm != nil {
			// The files have no field ids: readers find columns by name,
			// so the mapping must learn the new columns too.
			opts = append(opts, icetable.WithNameMapping(nm))
		}
		us := txn.UpdateSchema(true, false, opts...)
		for _, f := range added {
			us = us.AddColumn([]string{f.Name}, f.Type, f.Doc, false, nil)
		}
		if err := us.Commit(); err != nil {
			return nil, nil, rhizome.Wrap(err, "table %s: add columns", ref)
		}
	}
	var old []string
	if req.Mode == Replace {
		if old, err = currentFiles(ctx, tbl); err != nil {
			return nil, nil, rhizome.Wrap(err, "table %s", ref)
		}
	}
	if len(old) > 0 {
		err = txn.ReplaceDataFiles(ctx, old, files, props)
	} else {
		err = txn.AddFiles(ctx, files, props, false)
	}
	// The snapshot's manifests are written already, and iceberg-go leaves
	// them behind if the commit fails.
	staged = stagedFiles(ctx, tbl, txn)
	if err != nil {
		return nil, staged, rhizome.Wrap(err, "table %s: add the data files", ref)
	}
	next, err = txn.Commit(ctx)
	if err != nil {
		if errors.Is(err, icetable.ErrCommitFailed) {
			return nil, staged, conflict(ref, err)
		}
		return nil, staged, rhizome.Wrap(err, "table %s: commit", ref)
	}
	return next, staged, nil
}

// stagedFiles lists the manifest lists and manifests of txn's new
// snapshots that base does not have.
func stagedFiles(ctx context.Context, base *icetable.Table, txn *icetable.Transaction) []string {
	st, err := txn.StagedTable()
	if err != nil {
		return nil
	}
	fsys, err := base.FS(ctx)
	if err != nil {
		return nil
	}
	known := map[string]bool{}
	if cur := base.CurrentSnapshot(); cur != nil {
		mans, _ := cur.Manifests(fsys)
		for _, m := range mans {
			known[m.FilePath()] = true
		}
	}
	var out []string
	for _, s := range st.Metadata().Snapshots() {
		if base.SnapshotByID(s.SnapshotID) != nil {
			continue
		}
		out = append(out, s.ManifestList)
		mans, _ := s.Manifests(fsys)
		for _, m := range mans {
			if !known[m.FilePath()] {
				out = append(out, m.FilePath())
			}
		}
	}
	return out
}

// loadOrCreate loads the table, creating its namespace and the table
// with schema sc if they do not exist.
func (c *Catalog) loadOrCreate(ctx context.Context, ref Ref, location string, sc *iceberg.Schema) (*icetable.Table, error) {
	tbl, err := c.cat.LoadTable(ctx, ref.ident())
	if err == nil {
		return tbl, nil
	}
	if !isNotFound(err) {
		return nil, rhizome.Wrap(err, "table %s: load", ref)
	}
	ns := icetable.Identifier{ref.Namespace}
	if err := c.cat.CreateNamespace(ctx, ns, nil); err != nil && !errors.Is(err, catalog.ErrNamespaceAlreadyExists) {
		return nil, rhizome.Wrap(err, "table %s: create namespace %s", ref, ref.Namespace)
	}
	var opts []catalog.CreateTableOpt
	if location != "" {
		opts = append(opts, catalog.WithLocation(location))
	}
	opts = append(opts, catalog.WithProperties(iceberg.Properties{
		"rhizome.managed": "true",
	}))
	tbl, err = c.cat.CreateTable(ctx, ref.ident(), sc, opts...)
	if errors.Is(err, catalog.ErrTableAlreadyExists) {
		tbl, err = c.cat.LoadTable(ctx, ref.ident())
	}
	if err != nil {
		return nil, rhizome.Wrap(err, "table %s: create", ref)
	}
	return tbl, nil
}

// evolution compares the table's schema with the files': it returns the
// files' new columns, or EConflict naming the removed and retyped ones.
func evolution(ref Ref, table, files *iceberg.Schema) ([]iceberg.NestedField, error) {
	var problems []rhizome.Problem
	for _, tf := range table.Fields() {
		ff, ok := files.FindFieldByName(tf.Name)
		switch {
		case !ok:
			problems = append(problems, rhizome.Problem{Path: tf.Name,
				Message: fmt.Sprintf("column %s (%s) is missing from the new data", tf.Name, typeName(tf.Type))})
		case typeName(ff.Type) != typeName(tf.Type):
			problems = append(problems, rhizome.Problem{Path: tf.Name,
				Message: fmt.Sprintf("column %s changes type from %s to %s", tf.Name, typeName(tf.Type), typeName(ff.Type))})
		}
	}
	if len(problems) > 0 {
		names := make([]string, len(problems))
		for i, p := range problems {
			names[i] = p.Path
		}
		return nil, &rhizome.Error{Code: rhizome.EConflict, Problems: problems,
			Message: fmt.Sprintf("table %s: breaking schema change (%s) needs a new major product version", ref, strings.Join(names, ", ")),
			Hint:    "keep the columns and their types, or publish as a new major version (a new table)"}
	}
	var added []iceberg.NestedField
	for _, ff := range files.Fields() {
		if _, ok := table.FindFieldByName(ff.Name); !ok {
			added = append(added, ff)
		}
	}
	return added, nil
}

// schemaOfFiles reads the Parquet footers of the files and returns their
// common schema (fresh field ids), or EInvalid.
func schemaOfFiles(paths []string) (*iceberg.Schema, error) {
	var first *arrow.Schema
	var out *iceberg.Schema
	for _, p := range paths {
		sc, err := arrowSchemaOf(p)
		if err != nil {
			return nil, err
		}
		if first == nil {
			first = sc
			out, err = icetable.ArrowSchemaToIcebergWithFreshIDs(sc, true)
			if err != nil {
				return nil, rhizome.Errorf(rhizome.EInvalid, "%s: a column type has no Iceberg equivalent: %v", p, err)
			}
			// Table columns are optional: whether one file's column has
			// nulls says nothing about the next publish's.
			fields := out.Fields()
			for i := range fields {
				fields[i].Required = false
			}
			out = iceberg.NewSchema(out.ID, fields...)
			continue
		}
		if !sameColumns(first, sc) {
			return nil, rhizome.Errorf(rhizome.EInvalid, "%s: its columns differ from %s's", p, paths[0]).
				WithHint("every file of one publish must have the same columns and types")
		}
	}
	return out, nil
}

func arrowSchemaOf(p string) (*arrow.Schema, error) {
	rdr, err := file.OpenParquetFile(p, false)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, rhizome.Errorf(rhizome.ENotFound, "%s: no such file", p)
		}
		return nil, &rhizome.Error{Code: rhizome.EInvalid, Err: err, Message: fmt.Sprintf("%s is not a readable Parquet file: %v", p, err)}
	}
	defer rdr.Close()
	sc, err := pqarrow.FromParquet(rdr.MetaData().Schema, &pqarrow.ArrowReadProperties{}, rdr.MetaData().KeyValueMetadata())
	if err != nil {
		return nil, &rhizome.Error{Code: rhizome.EInvalid, Err: err, Message: fmt.Sprintf("%s: read its schema: %v", p, err)}
	}
	return sc, nil
}

func sameColumns(a, b *arrow.Schema) bool {
	return slices.EqualFunc(a.Fields(), b.Fields(), func(x, y arrow.Field) bool {
		return x.Name == y.Name && arrow.TypeEqual(x.Type, y.Type)
	})
}

// upload copies (or, for a local unencrypted table, hard-links) the local
// files into the table's data directory under new names and returns the
// copies' locations; on error, the copies made so far.
func (c *Catalog) upload(ctx context.Context, fsys iceio.IO, tableLocation string, files []string) ([]string, error) {
	wfs, ok := fsys.(iceio.WriteFileIO)
	if !ok {
		return nil, rhizome.Errorf(rhizome.EInternal, "the storage of %s cannot be written", tableLocation)
	}
	prefix := strings.TrimSuffix(tableLocation, "/") + "/data/" + c.clock.Now().UTC().Format("20060102T150405Z") + "-" + randomHex(6)
	var done []string
	for i, src := range files {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		dst := fmt.Sprintf("%s-%05d.parquet", prefix, i)
		done = append(done, dst)
		if linked, err := linkLocal(fsys, dst, src); err != nil {
			return done, fmt.Errorf("link %s to %s: %w", src, dst, err)
		} else if linked {
			continue
		}
		if err := copyTo(wfs, dst, src); err != nil {
			return done, fmt.Errorf("copy %s to %s: %w", src, dst, err)
		}
	}
	return done, nil
}

// linkLocal hard-links src to dst when dst is a plain local file (a
// file:// location whose IO does not encrypt) on src's filesystem, so a
// local lake gets the file without copying its bytes. The caller's file
// stays where it is; both names share the (immutable) data. It reports
// false, with no error, when it cannot link (another scheme, an encrypting
// IO, another filesystem, a filesystem without hard links): then the
// caller copies.
func linkLocal(fsys iceio.IO, dst, src string) (bool, error) {
	if _, enc := fsys.(*cryptIO); enc || !strings.HasPrefix(dst, "file://") {
		return false, nil
	}
	u, err := url.Parse(dst)
	if err != nil || (u.Host != "" && u.Host != "localhost") || u.Path == "" {
		return false, nil
	}
	local := filepath.FromSlash(u.Path)
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		return false, nil // let the copy through the IO report it
	}
	if err := os.Link(src, local); err != nil {
		if errors.Is(err, os.ErrExist) {
			return false, err // never replace a file in the lake
		}
		return false, nil // EXDEV, EPERM, no hard links: copy instead
	}
	// The table's IO must find the link at dst (it maps URIs to paths on
	// its own); if it does not, undo the link and copy through the IO.
	if f, err := fsys.Open(dst); err == nil {
		fi, serr := f.Stat()
		f.Close()
		if si, err := os.Stat(src); serr == nil && err == nil && os.SameFile(fi, si) {
			return true, nil
		}
	}
	os.Remove(local)
	return false, nil
}

func copyTo(wfs iceio.WriteFileIO, dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if strings.HasPrefix(dst, "file://") {
		// iceberg-go's LocalFS does not create directories.
		if m, ok := wfs.(iceio.MkdirAllIO); ok {
			if err := m.MkdirAll(path.Dir(dst)); err != nil {
				return err
			}
		}
	}
	w, err := wfs.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, in); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

func removeAll(fsys iceio.IO, locations []string) {
	for _, l := range locations {
		_ = fsys.Remove(l)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// currentFiles lists the data files of the table's current snapshot.
func currentFiles(ctx context.Context, tbl *icetable.Table) ([]string, error) {
	s := tbl.CurrentSnapshot()
	if s == nil {
		return nil, nil
	}
	return snapshotFiles(ctx, tbl, s)
}

func snapshotFiles(ctx context.Context, tbl *icetable.Table, s *icetable.Snapshot) ([]string, error) {
	fsys, err := tbl.FS(ctx)
	if err != nil {
		return nil, err
	}
	mans, err := s.Manifests(fsys)
	if err != nil {
		return nil, fmt.Errorf("read the manifests of snapshot %d: %w", s.SnapshotID, err)
	}
	var files []string
	for _, m := range mans {
		if m.ManifestContent() != iceberg.ManifestContentData {
			continue
		}
		for e, err := range m.Entries(fsys, true) {
			if err != nil {
				return nil, fmt.Errorf("read manifest %s: %w", m.FilePath(), err)
			}
			files = append(files, e.DataFile().FilePath())
		}
	}
	return files, nil
}
