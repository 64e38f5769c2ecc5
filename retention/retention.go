// Package retention enforces what a product declares about keeping data:
// retention_period_days (rows older than that, by the product's declared
// timestamp column, are deleted on a schedule) and the right to be
// forgotten (every row of one data subject deleted from every product
// that holds subject data). Both rewrite a table's current data as a new
// replace snapshot and then expire the older snapshots that still hold
// the deleted rows, so that time travel cannot bring them back, and
// remove the files left behind.
//
// A product declares, in custom_properties:
//
//	retention_period_days: 730          # the guide's field
//	custom_properties:
//	  retention_column: order_date      # the timestamp rows age by
//	  subject_key: customer_id          # the column naming the data subject
//
// It owns the rewrite; reading and publishing snapshots is table's,
// filtering rows is engine/duckdb's (a sandboxed session that reaches only
// a private temporary directory), and when to run is the server's
// (lifecycle ticker, REST routes). We wrote it ourselves because
// row-level deletes on Iceberg tables in Go (iceberg-go) are not there
// yet, and a copy-on-write rewrite through the engine we already embed is
// a few dozen lines.
package retention

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/audit"
	"github.com/rhizome-mesh/rhizome/engine/duckdb"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/table"
)

// The custom_properties keys a product declares.
const (
	ColumnProperty     = "retention_column"
	SubjectKeyProperty = "subject_key"
)

// OrphanGrace is how old a file must be before RemoveOrphans deletes it:
// a publish in another process may be uploading younger files.
const OrphanGrace = 10 * time.Minute

// Options configure an Enforcer.
type Options struct {
	Store  metastore.Store
	Tables *table.Catalog
	// WorkDir holds the private temporary directories of rewrites.
	WorkDir string
	Clock   rhizome.Clock
	Logger  *slog.Logger
	// Audit records one entry per enforcement and erasure (nil: none).
	Audit audit.Recorder
	// OnPublished is told of every snapshot a rewrite publishes (the
	// change feed).
	OnPublished func(productID string)
}

// Enforcer runs retention and erasure.
type Enforcer struct{ opt Options }

// New returns an Enforcer.
func New(opt Options) *Enforcer {
	if opt.Clock == nil {
		opt.Clock = rhizome.SystemClock{}
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.WorkDir == "" {
		opt.WorkDir = os.TempDir()
	}
	return &Enforcer{opt: opt}
}

// TableResult is what one rewrite did to one table (a product version).
type TableResult struct {
	Version          string  `json:"version"`
	Table            string  `json:"table"`
	RowsBefore       int64   `json:"rows_before"`
	RowsDeleted      int64   `json:"rows_deleted"`
	SnapshotID       int64   `json:"snapshot_id,omitempty"` // the rewrite's snapshot; 0 when nothing was deleted
	SnapshotsExpired []int64 `json:"snapshots_expired,omitempty"`
	FilesRemoved     int     `json:"files_removed,omitempty"`
}

// Result is what one enforcement or erasure did to one product.
type Result struct {
	ProductID string `json:"product_id"`
	Column    string `json:"column"`
	// Cutoff: rows with Column before it were deleted (retention only).
	Cutoff      *time.Time    `json:"cutoff,omitempty"`
	RowsDeleted int64         `json:"rows_deleted"`
	Tables      []TableResult `json:"tables"`
	// SnapshotsExpired counts the snapshots expired over every table.
	SnapshotsExpired int    `json:"snapshots_expired"`
	Skipped          string `json:"skipped,omitempty"` // why nothing was done
}

func (e *Enforcer) product(ctx context.Context, id string) (*rhizome.DataProduct, error) {
	obj, err := e.opt.Store.Get(ctx, rhizome.KindDataProduct, id)
	if err != nil {
		return nil, err
	}
	var dp rhizome.DataProduct
	if err := json.Unmarshal(obj.Body, &dp); err != nil {
		return nil, rhizome.Wrap(err, "decoding %s", id)
	}
	return &dp, nil
}

// Property returns a product's string custom property ("" when unset).
func Property(dp *rhizome.DataProduct, key string) string {
	s, _ := dp.CustomProperties[key].(string)
	return strings.TrimSpace(s)
}

// refs lists the tables of a product's versions, current first.
func refs(dp *rhizome.DataProduct) []struct {
	version string
	ref     table.Ref
} {
	var out []struct {
		version string
		ref     table.Ref
	}
	seen := map[table.Ref]bool{}
	for _, v := range append([]string{dp.CurrentVersion}, dp.PreviousVersions...) {
		if v == "" {
			continue
		}
		r := table.RefFor(dp.ID, v)
		if !seen[r] {
			seen[r] = true
			out = append(out, struct {
				version string
				ref     table.Ref
			}{v, r})
		}
	}
	return out
}

// Enforce deletes a product's rows older than its retention period (by
// its retention_column), in every version's table, and expires the
// snapshots that still hold such rows. actor is who asked ("rhizome" for
// the schedule). A product without retention_period_days is skipped; one
// with it but no retention_column is EInvalid.
func (e *Enforcer) Enforce(ctx context.Context, productID, actor string) (*Result, error) {
	dp, err := e.product(ctx, productID)
	if err != nil {
		return nil, err
	}
	res := &Result{ProductID: dp.ID, Tables: []TableResult{}}
	if dp.RetentionPeriodDays <= 0 {
		res.Skipped = "the product declares no retention_period_days"
		return res, nil
	}
	col := Property(dp, ColumnProperty)
	if col == "" {
		return nil, rhizome.Errorf(rhizome.EInvalid, "%s declares retention_period_days: %d but no timestamp column to age rows by", dp.ID, dp.RetentionPeriodDays).
			WithHint("add custom_properties: {%s: <timestamp column>} to the product", ColumnProperty)
	}
	res.Column = col
	cutoff := e.opt.Clock.Now().UTC().Add(-time.Duration(dp.RetentionPeriodDays) * 24 * time.Hour)
	res.Cutoff = &cutoff
	// Rows with no timestamp are kept: their age is unknown.
	pred := func(c string) string {
		return fmt.Sprintf("CAST(%s AS TIMESTAMPTZ) < TIMESTAMPTZ %s", c, quoteLit(cutoff.Format("2006-01-02 15:04:05.999999+00")))
	}
	err = e.rewriteAll(ctx, dp, col, pred, map[string]string{"rewrite": "retention"}, res)
	via := "rest"
	if actor == "" || actor == "rhizome" {
		via = "scheduler"
	}
	e.record(ctx, audit.Entry{Actor: actor, Action: "retention.enforce", Via: via, ProductID: dp.ID, Columns: []string{col},
		Rows: res.RowsDeleted, Details: map[string]any{"result": res}}, err)
	return res, err
}

// EnforceAll runs Enforce on every product that declares a retention
// period, and returns the results (errors of single products are logged
// and listed, not fatal).
func (e *Enforcer) EnforceAll(ctx context.Context, actor string) ([]Result, error) {
	var out []Result
	err := e.eachProduct(ctx, func(dp *rhizome.DataProduct) {
		if dp.RetentionPeriodDays <= 0 {
			return
		}
		r, err := e.Enforce(ctx, dp.ID, actor)
		if err != nil {
			e.opt.Logger.Warn("retention", "product", dp.ID, "err", err)
			out = append(out, Result{ProductID: dp.ID, Skipped: "failed: " + err.Error()})
			return
		}
		out = append(out, *r)
	})
	return out, err
}

func (e *Enforcer) eachProduct(ctx context.Context, fn func(*rhizome.DataProduct)) error {
	after := ""
	for {
		page, err := e.opt.Store.List(ctx, metastore.ListOptions{Kind: rhizome.KindDataProduct, After: after, Limit: 1000})
		if err != nil {
			return err
		}
		for _, o := range page.Items {
			var dp rhizome.DataProduct
			if json.Unmarshal(o.Body, &dp) == nil {
				fn(&dp)
			}
		}
		if page.Next == "" {
			return nil
		}
		after = page.Next
	}
}

// ErasureRequest asks to forget one data subject.
type ErasureRequest struct {
	// Key names the subject key: products whose subject_key is Key are
	// erased from (by that column). Empty: every product's own key.
	Key string `json:"key,omitempty"`
	// Value is the subject's key value, compared as text.
	Value string `json:"value"`
	// Products limits the erasure; empty means every product declaring a
	// subject key (matching Key when set).
	Products []string `json:"products,omitempty"`
	Actor    string   `json:"-"`
	Reason   string   `json:"reason,omitempty"`
}

// ErasureReport is what an erasure did.
type ErasureReport struct {
	Key         string   `json:"key,omitempty"`
	Value       string   `json:"value"`
	Products    []Result `json:"products"`
	RowsDeleted int64    `json:"rows_deleted"`
	// Failed lists the products whose erasure failed (see their Skipped).
	Failed []string `json:"failed,omitempty"`
}

// Targets lists the products an erasure request reaches: the named ones
// (each must declare a subject key, equal to Key when set), else every
// product declaring one.
func (e *Enforcer) Targets(ctx context.Context, req ErasureRequest) ([]*rhizome.DataProduct, error) {
	if strings.TrimSpace(req.Value) == "" {
		return nil, rhizome.Invalid("an erasure needs the subject's key value",
			rhizome.Problem{Path: "value", Message: "empty", Hint: "e.g. --key customer_id --value C123"})
	}
	var out []*rhizome.DataProduct
	if len(req.Products) > 0 {
		for _, id := range req.Products {
			dp, err := e.product(ctx, id)
			if err != nil {
				return nil, err
			}
			key := Property(dp, SubjectKeyProperty)
			if key == "" {
				return nil, rhizome.Errorf(rhizome.EInvalid, "%s declares no subject key", id).
					WithHint("add custom_properties: {%s: <column>} to the product", SubjectKeyProperty)
			}
			if req.Key != "" && key != req.Key {
				return nil, rhizome.Errorf(rhizome.EInvalid, "%s's subject key is %s, not %s", id, key, req.Key)
			}
			out = append(out, dp)
		}
		return out, nil
	}
	err := e.eachProduct(ctx, func(dp *rhizome.DataProduct) {
		key := Property(dp, SubjectKeyProperty)
		if key != "" && (req.Key == "" || key == req.Key) {
			out = append(out, dp)
		}
	})
	if err == nil && len(out) == 0 {
		hint := "declare custom_properties: {subject_key: <column>} on the products holding subject data"
		if req.Key != "" {
			return nil, rhizome.Errorf(rhizome.ENotFound, "no product declares subject key %s", req.Key).WithHint("%s", hint)
		}
		return nil, rhizome.Errorf(rhizome.ENotFound, "no product declares a subject key").WithHint("%s", hint)
	}
	return out, err
}

// Erase deletes every row whose subject key equals req.Value from the
// products req reaches (every version's table), expires the snapshots
// that still hold them, removes the files left behind, and records one
// audit entry (action "erasure") with the report. A product that fails
// is reported and the others go on; the error names the failures.
func (e *Enforcer) Erase(ctx context.Context, req ErasureRequest) (*ErasureReport, error) {
	targets, err := e.Targets(ctx, req)
	if err != nil {
		return nil, err
	}
	rep := &ErasureReport{Key: req.Key, Value: req.Value, Products: []Result{}}
	var failed []string
	var ids []string
	for _, dp := range targets {
		col := Property(dp, SubjectKeyProperty)
		res := &Result{ProductID: dp.ID, Column: col, Tables: []TableResult{}}
		pred := func(c string) string {
			return fmt.Sprintf("CAST(%s AS VARCHAR) = %s", c, quoteLit(req.Value))
		}
		if err := e.rewriteAll(ctx, dp, col, pred, map[string]string{"rewrite": "erasure"}, res); err != nil {
			res.Skipped = "failed: " + err.Error()
			failed = append(failed, dp.ID)
		}
		rep.Products = append(rep.Products, *res)
		rep.RowsDeleted += res.RowsDeleted
		ids = append(ids, dp.ID)
	}
	var ferr error
	rep.Failed = failed
	if len(failed) > 0 {
		ferr = rhizome.Errorf(rhizome.EInternal, "erasure failed for %s", strings.Join(failed, ", ")).WithHint("see the report; run the erasure again")
	}
	// The value itself is personal data: the entry names the key, not it.
	e.record(ctx, audit.Entry{Actor: req.Actor, Action: "erasure", Via: "rest", ProductID: first(ids), Products: ids,
		Reason: req.Reason, Rows: rep.RowsDeleted, Details: map[string]any{"key": req.Key, "report": redacted(rep)}}, ferr)
	return rep, ferr
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// redacted is the report without the subject's value.
func redacted(r *ErasureReport) ErasureReport {
	c := *r
	c.Value = "(redacted)"
	return c
}

func (e *Enforcer) record(ctx context.Context, en audit.Entry, err error) {
	if e.opt.Audit == nil {
		return
	}
	if en.Actor == "" {
		en.Actor = "rhizome"
	}
	en.Decision = audit.Allow
	if err != nil {
		if en.Details == nil {
			en.Details = map[string]any{}
		}
		en.Details["error"] = err.Error()
	}
	if rerr := e.opt.Audit.Record(context.WithoutCancel(ctx), en); rerr != nil {
		e.opt.Logger.Error("audit: recording "+en.Action, "err", rerr)
	}
}

// predicate builds the condition (over a quoted column) of the rows to
// delete, values inlined as quoted literals (a view takes no parameters).
type predicate func(column string) string

func (e *Enforcer) rewriteAll(ctx context.Context, dp *rhizome.DataProduct, col string, pred predicate, props map[string]string, res *Result) error {
	for _, t := range refs(dp) {
		tr, err := e.rewrite(ctx, dp, t.ref, col, pred, props)
		if rhizome.Code(err) == rhizome.ENotFound && tr == nil {
			continue // never published
		}
		if tr != nil {
			tr.Version = t.version
			res.Tables = append(res.Tables, *tr)
			res.RowsDeleted += tr.RowsDeleted
			res.SnapshotsExpired += len(tr.SnapshotsExpired)
		}
		if err != nil {
			return rhizome.Wrap(err, "%s %s", dp.ID, t.version)
		}
	}
	return nil
}

// rewrite deletes the rows pred selects from one table: a replace
// snapshot of the rest when the current snapshot holds any, then the
// expiry of every older snapshot up to the newest one that holds any,
// then orphan removal.
func (e *Enforcer) rewrite(ctx context.Context, dp *rhizome.DataProduct, ref table.Ref, col string, pred predicate, props map[string]string) (*TableResult, error) {
	cur, err := e.opt.Tables.Current(ctx, ref)
	if err != nil {
		return nil, err
	}
	if !hasColumn(cur.Schema, col) {
		return nil, rhizome.Errorf(rhizome.EInvalid, "%s has no column %s", ref, col).
			WithHint("name one of its columns in custom_properties: %s", columnNames(cur.Schema))
	}
	tr := &TableResult{Table: ref.String(), RowsBefore: cur.Rows}
	if err := os.MkdirAll(e.opt.WorkDir, 0o700); err != nil {
		return tr, rhizome.Wrap(err, "creating %s", e.opt.WorkDir)
	}
	dir, err := os.MkdirTemp(e.opt.WorkDir, "rewrite-")
	if err != nil {
		return tr, rhizome.Wrap(err, "creating a work dir")
	}
	defer os.RemoveAll(dir)
	eng, err := duckdb.Open(ctx, duckdb.Options{AllowedDirs: []string{dir}, TempDir: filepath.Join(dir, "tmp")})
	if err != nil {
		return tr, err
	}
	defer eng.Close()
	sess, err := eng.Session(ctx)
	if err != nil {
		return tr, err
	}
	defer sess.Close()
	cond := pred(quoteIdent(col))

	n, err := e.matching(ctx, sess, ref, table.AsOf{SnapshotID: cur.ID}, dir, "s0", cond)
	if err != nil {
		return tr, err
	}
	expireThrough := time.Time{} // expire the snapshots up to and including this time
	if n > 0 {
		out := filepath.Join(dir, "out", "part-00000.parquet")
		if err := os.MkdirAll(filepath.Dir(out), 0o700); err != nil {
			return tr, rhizome.Wrap(err, "creating output dir")
		}
		if _, err := sess.Exec(ctx, fmt.Sprintf("CREATE VIEW __kept AS SELECT * FROM s0 WHERE NOT coalesce(%s, false)", cond)); err != nil {
			return tr, rhizome.Wrap(err, "filtering %s", ref)
		}
		kept, _, err := sess.ExportParquet(ctx, "__kept", out)
		if err != nil {
			return tr, err
		}
		// A run that published since we read would lose its data to our
		// replace: give up and let the next enforcement redo it.
		if now, err := e.opt.Tables.Current(ctx, ref); err != nil || now.ID != cur.ID {
			return tr, rhizome.Errorf(rhizome.EConflict, "%s was published to while rows were being deleted", ref).WithHint("run it again")
		}
		p := map[string]string{}
		for k, v := range props {
			p[k] = v
		}
		p["product-version"] = cur.Properties["product-version"]
		snap, err := e.opt.Tables.Publish(ctx, table.PublishRequest{Ref: ref, Files: []string{out}, Mode: table.Replace, ProductID: dp.ID, Properties: p})
		if err != nil {
			return tr, err
		}
		tr.SnapshotID, tr.RowsDeleted = snap.ID, cur.Rows-kept
		if e.opt.OnPublished != nil {
			e.opt.OnPublished(dp.ID)
		}
		expireThrough = cur.Time
	} else {
		// The current data is clean; an older snapshot kept for time
		// travel may not be. Find the newest that holds such rows.
		snaps, err := e.opt.Tables.Snapshots(ctx, ref)
		if err != nil {
			return tr, err
		}
		for i := len(snaps) - 1; i >= 0; i-- {
			s := snaps[i]
			if s.ID == cur.ID {
				continue
			}
			m, err := e.matching(ctx, sess, ref, table.AsOf{SnapshotID: s.ID}, dir, fmt.Sprintf("s%d", len(snaps)-i), cond)
			if err != nil {
				return tr, err
			}
			if m > 0 {
				expireThrough = s.Time
				break
			}
		}
	}
	if !expireThrough.IsZero() {
		if tr.SnapshotsExpired, err = e.expireThrough(ctx, ref, expireThrough); err != nil {
			return tr, err
		}
	}
	removed, err := e.opt.Tables.RemoveOrphans(ctx, ref, time.Now().Add(-OrphanGrace))
	if err != nil {
		return tr, err
	}
	tr.FilesRemoved = len(removed)
	return tr, nil
}

// expireThrough expires every snapshot taken at or before t (never the
// current one).
func (e *Enforcer) expireThrough(ctx context.Context, ref table.Ref, t time.Time) ([]int64, error) {
	// Snapshot times are iceberg-go's, from the wall clock, at
	// milliseconds; Expire measures age against the wall clock too.
	expired, err := e.opt.Tables.Expire(ctx, ref, t.Add(time.Millisecond), 1)
	if err != nil {
		return expired, err
	}
	// Make sure: a snapshot at or before t that is still there (the clocks'
	// rounding) is expired with everything older than now.
	snaps, err := e.opt.Tables.Snapshots(ctx, ref)
	if err != nil {
		return expired, err
	}
	if slices.ContainsFunc(snaps[:len(snaps)-1], func(s table.Snapshot) bool { return !s.Time.After(t) }) {
		more, err := e.opt.Tables.Expire(ctx, ref, time.Now().Add(time.Millisecond), 1)
		expired = append(expired, more...)
		if err != nil {
			return expired, err
		}
	}
	return expired, nil
}

// matching registers a snapshot's data as view name and counts the rows
// cond selects.
func (e *Enforcer) matching(ctx context.Context, sess *duckdb.Session, ref table.Ref, at table.AsOf, dir, name, cond string) (int64, error) {
	files, err := local(ctx, e.opt.Tables, ref, at, filepath.Join(dir, name))
	if err != nil {
		return 0, err
	}
	if len(files) == 0 {
		_, err := sess.Exec(ctx, "CREATE VIEW "+quoteIdent(name)+" AS SELECT 1 WHERE false")
		return 0, err
	}
	if err := sess.Register(ctx, name, duckdb.Source{Format: "parquet", Paths: files}); err != nil {
		return 0, err
	}
	rows, err := sess.Query(ctx, fmt.Sprintf("SELECT count(*) FROM %s WHERE %s", quoteIdent(name), cond))
	if err != nil {
		return 0, rhizome.Wrap(err, "counting rows in %s", ref)
	}
	defer rows.Close()
	var n int64
	if rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return 0, rhizome.Wrap(err, "counting rows in %s", ref)
		}
	}
	return n, rows.Err()
}

// local makes a snapshot's files readable inside dir: Readable copies
// remote and encrypted files there; a plain local table's own files are
// linked (or copied) in, since the session reaches nothing else.
func local(ctx context.Context, tables *table.Catalog, ref table.Ref, at table.AsOf, dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, rhizome.Wrap(err, "creating %s", dir)
	}
	files, err := tables.Readable(ctx, ref, at, dir)
	if err != nil {
		return nil, err
	}
	for i, f := range files {
		if strings.HasPrefix(f, dir+string(filepath.Separator)) {
			continue
		}
		dst := filepath.Join(dir, fmt.Sprintf("%05d-%s", i, filepath.Base(f)))
		if err := linkOrCopy(f, dst); err != nil {
			return nil, err
		}
		files[i] = dst
	}
	return files, nil
}

func linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return rhizome.Wrap(err, "reading %s", src)
	}
	return rhizome.Wrap(os.WriteFile(dst, b, 0o600), "copying %s", src)
}

func hasColumn(cols []table.Column, name string) bool {
	return slices.ContainsFunc(cols, func(c table.Column) bool { return c.Name == name })
}

func columnNames(cols []table.Column) string {
	var s []string
	for _, c := range cols {
		s = append(s, c.Name)
	}
	return strings.Join(s, ", ")
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
func quoteLit(s string) string   { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }
