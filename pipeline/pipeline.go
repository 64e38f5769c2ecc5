// Package pipeline builds a data product's data: the guide's lifecycle
// "ingest -> transform -> serve" for one run. It stages every input port
// through its connector, loads the staged files into a sandboxed DuckDB
// session, runs the product's SQL models, writes the output model as
// Parquet, runs the product's quality checks on it (the gate, gate.go: an
// error-severity failure quarantines the data instead of publishing it),
// publishes it as one new Iceberg snapshot, and records OpenLineage events
// for the run. Check runs the same suite on demand on the current snapshot;
// CheckFile runs a contract's checks on a local file, offline. Scheduling, retries and run records
// belong to jobs (which calls Run); storage to table; SQL to engine/duckdb.
package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/alert"
	"github.com/rhizome-mesh/rhizome/connector"
	"github.com/rhizome-mesh/rhizome/engine/duckdb"
	"github.com/rhizome-mesh/rhizome/jobs"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/qreport"
	"github.com/rhizome-mesh/rhizome/quality"
	"github.com/rhizome-mesh/rhizome/spec"
	"github.com/rhizome-mesh/rhizome/table"
)

// Options configures a Pipeline.
type Options struct {
	Store  metastore.Store
	Tables *table.Catalog
	// WorkDir holds each run's staging directory (removed after the run).
	WorkDir string
	// BaseDir is where relative connector paths resolve.
	BaseDir string
	Secrets connector.SecretResolver
	Clock   rhizome.Clock
	Logger  *slog.Logger
	// Producer is the OpenLineage producer URI.
	Producer string
	// Warehouse is the default table location (file:///... or s3://...);
	// relative storage locations resolve under it.
	Warehouse string
	// ObjectStorage says whether s3:// locations can be written (an S3
	// endpoint and credentials are configured).
	ObjectStorage bool
	// Objects reads s3:// input paths (nil: none configured).
	Objects connector.ObjectFetcher
	// Spool holds the batches pushed to stream input ports (nil: this
	// process receives no pushes, and stream inputs fail).
	Spool connector.StreamSpool
	// QuarantineDir keeps the output of runs the quality gate stopped, as
	// <dir>/<product>/<run id>.parquet (default: "quarantine" next to
	// WorkDir).
	QuarantineDir string
	// Alerts is told of failed checks and quarantines (nil: nobody).
	Alerts alert.Observer
}

// Pipeline runs products.
type Pipeline struct {
	opt Options
}

// New returns a Pipeline.
func New(opt Options) *Pipeline {
	if opt.Clock == nil {
		opt.Clock = rhizome.SystemClock{}
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Producer == "" {
		opt.Producer = "https://github.com/rhizome-mesh/rhizome"
	}
	return &Pipeline{opt: opt}
}

// product loads a product's manifest and its infrastructure.
func (p *Pipeline) product(ctx context.Context, id string) (*rhizome.DataProduct, *rhizome.Infrastructure, error) {
	obj, err := p.opt.Store.Get(ctx, rhizome.KindDataProduct, id)
	if err != nil {
		return nil, nil, err
	}
	var dp rhizome.DataProduct
	if err := json.Unmarshal(obj.Body, &dp); err != nil {
		return nil, nil, rhizome.Wrap(err, "decoding %s", id)
	}
	var inf *rhizome.Infrastructure
	if dp.Infrastructure != "" {
		o, err := p.opt.Store.Get(ctx, rhizome.KindInfrastructure, dp.Infrastructure)
		if err != nil {
			return nil, nil, rhizome.Wrap(err, "infrastructure of %s", id)
		}
		inf = new(rhizome.Infrastructure)
		if err := json.Unmarshal(o.Body, inf); err != nil {
			return nil, nil, rhizome.Wrap(err, "decoding infrastructure %s", dp.Infrastructure)
		}
	}
	return &dp, inf, nil
}

// Location is the storage.location of a product's infrastructure ("" when
// it names none).
func Location(inf *rhizome.Infrastructure) string {
	if inf == nil || inf.Spec.Storage == nil {
		return ""
	}
	return inf.Spec.Storage.Location
}

// tableLocation is where one table of a product lives: under its
// infrastructure's storage.location (a relative location resolves under
// the warehouse), or "" to let the catalog place it in the warehouse. An
// s3:// location without configured object storage falls back to the
// warehouse, and says so.
func (p *Pipeline) tableLocation(inf *rhizome.Infrastructure, ref table.Ref, logf func(level, msg string)) string {
	loc := Location(inf)
	switch {
	case loc == "":
		return ""
	case strings.HasPrefix(loc, "s3://") && !p.opt.ObjectStorage:
		logf("warn", fmt.Sprintf("storage.location %s: no S3 endpoint is configured for this deployment; publishing to the local warehouse instead", loc))
		return ""
	case strings.HasPrefix(loc, "s3://"), strings.HasPrefix(loc, "file:///"), strings.HasPrefix(loc, "/"):
	default:
		rel := strings.TrimPrefix(strings.TrimPrefix(loc, "file://"), "./")
		loc = strings.TrimSuffix(p.opt.Warehouse, "/") + "/" + strings.Trim(rel, "/")
	}
	return strings.TrimSuffix(loc, "/") + "/" + ref.Name
}

// Encrypted says whether the infrastructure asks for encryption at rest:
// storage.encryption (the guide's "AES-256") or security.encryption_at_rest.
func Encrypted(inf *rhizome.Infrastructure) bool {
	if inf == nil {
		return false
	}
	if st := inf.Spec.Storage; st != nil && st.Encryption != "" && !strings.EqualFold(st.Encryption, "none") {
		return true
	}
	return inf.Spec.Security != nil && inf.Spec.Security.EncryptionAtRest
}

// Timeout is how long a product's run may take: pipeline.timeout, else the
// infrastructure's orchestration.timeout, else 0 (the scheduler's default).
func Timeout(dp *rhizome.DataProduct, inf *rhizome.Infrastructure) time.Duration {
	s := ""
	if dp.Pipeline != nil && dp.Pipeline.Timeout != "" {
		s = dp.Pipeline.Timeout
	} else if inf != nil && inf.Spec.Orchestration != nil {
		s = inf.Spec.Orchestration.Timeout
	}
	d, _ := spec.ParseDuration(s)
	return d
}

// Schedule is a product's cron schedule: pipeline.schedule, else the
// infrastructure's orchestration.schedule.
func Schedule(dp *rhizome.DataProduct, inf *rhizome.Infrastructure) string {
	if dp.Pipeline != nil && dp.Pipeline.Schedule != "" {
		return dp.Pipeline.Schedule
	}
	if inf != nil && inf.Spec.Orchestration != nil {
		return inf.Spec.Orchestration.Schedule
	}
	return ""
}

// Run executes one run of a product: it is the jobs.Runner.
func (p *Pipeline) Run(ctx context.Context, run *rhizome.Run, logf func(level, msg string)) (res jobs.RunResult, err error) {
	started := p.opt.Clock.Now()
	dp, inf, err := p.product(ctx, run.ProductID)
	if err != nil {
		return res, err
	}
	if dp.Pipeline == nil || len(dp.Pipeline.Models) == 0 {
		return res, rhizome.Errorf(rhizome.EInvalid, "%s has no pipeline: nothing to build", dp.ID).
			WithHint("add `pipeline.models` to the product manifest")
	}
	res.Version = dp.CurrentVersion
	lin := p.lineage(ctx, run, dp)
	p.emit(ctx, run.ID, lin.start(started))
	defer func() {
		if err != nil {
			p.emit(ctx, run.ID, lin.fail(p.opt.Clock.Now(), err))
		}
	}()
	if inf != nil {
		for _, n := range engineNotes(inf) {
			logf("info", n)
		}
	}

	work := filepath.Join(p.opt.WorkDir, run.ID)
	if err := os.MkdirAll(work, 0o700); err != nil {
		return res, rhizome.Wrap(err, "creating the run's work dir")
	}
	defer os.RemoveAll(work)

	// Ingest: every input port lands in its own staging directory.
	type input struct {
		name   string
		staged *connector.Staged
		dir    string
	}
	var inputs []input
	for i, port := range dp.InputPorts {
		dir := filepath.Join(work, "in", port.Name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return res, rhizome.Wrap(err, "staging %s", port.Name)
		}
		name, cfg := port.Connector, port.Config
		if port.Product != "" {
			name, cfg = "product", map[string]any{"product": port.Product, "version": port.Version}
		}
		c, err := connector.Open(name, cfg)
		if err != nil {
			return res, rhizome.Wrap(err, "input_ports[%d] %s", i, port.Name)
		}
		logf("info", fmt.Sprintf("ingest %s (%s)", port.Name, name))
		staged, err := c.Stage(ctx, connector.Env{StageDir: dir, BaseDir: p.opt.BaseDir, Secrets: p.opt.Secrets,
			Products: productReader{p, filepath.Join(work, "fetch", port.Name)}, Logger: p.opt.Logger, Clock: p.opt.Clock, Objects: p.opt.Objects,
			ProductID: dp.ID, Port: port.Name, RunID: run.ID, Spool: p.opt.Spool})
		if err != nil {
			return res, rhizome.Wrap(err, "ingesting input port %s", port.Name)
		}
		res.Bytes += staged.Bytes
		inputs = append(inputs, input{port.Name, staged, dir})
	}

	// Transform, in a sandbox that reaches only this run's work dir.
	eng, err := duckdb.Open(ctx, duckdb.Options{AllowedDirs: []string{work}, TempDir: filepath.Join(work, "tmp")})
	if err != nil {
		return res, err
	}
	defer eng.Close()
	sess, err := eng.Session(ctx)
	if err != nil {
		return res, err
	}
	defer sess.Close()
	var names []string
	for _, in := range inputs {
		src := duckdb.Source{Format: in.staged.Format}
		for _, f := range in.staged.Files {
			src.Paths = append(src.Paths, filepath.Join(in.dir, f))
		}
		for _, c := range in.staged.Columns {
			src.Columns = append(src.Columns, duckdb.Column{Name: c.Name, Type: c.Type, Required: c.Required})
		}
		if err := sess.Register(ctx, in.name, src); err != nil {
			return res, rhizome.Wrap(err, "loading input port %s", in.name)
		}
		// An input without declared columns is a view over its files: a
		// count may read them again, so take the connector's count when it
		// has one (RowCount keeps the rest cheap where it can).
		n := in.staged.Rows
		if n < 0 || len(src.Columns) > 0 {
			if n, err = sess.RowCount(ctx, in.name); err != nil {
				return res, err
			}
		}
		res.RowsIn += n
		names = append(names, in.name)
	}
	if err := registerRunContext(ctx, sess, run, dp); err != nil {
		return res, err
	}
	names = append(names, "run_context")
	file, line := manifestPos(dp)
	models := make([]duckdb.Model, len(dp.Pipeline.Models))
	for i, m := range dp.Pipeline.Models {
		// The output model is exported once: as a view, the export is its
		// only pass over the data (a merge reads it twice: a table).
		view := m.Name == dp.Pipeline.OutputModel() && dp.Pipeline.Mode != "merge"
		models[i] = duckdb.Model{Name: m.Name, SQL: m.SQL, File: file, Line: line, View: view}
	}
	logf("info", fmt.Sprintf("transform: %d models", len(models)))
	if err := sess.RunModels(ctx, models, names); err != nil {
		return res, err
	}
	out := dp.Pipeline.OutputModel()
	if dp.Pipeline.Mode == "merge" {
		if out, err = p.merge(ctx, sess, dp, out, work); err != nil {
			return res, err
		}
	}
	outDir := filepath.Join(work, "out")
	if err := os.MkdirAll(outDir, 0o700); err != nil {
		return res, rhizome.Wrap(err, "creating output dir")
	}
	outFile := filepath.Join(outDir, "part-00000.parquet")
	rows, _, err := sess.ExportParquet(ctx, out, outFile)
	if err != nil {
		return res, err
	}
	res.RowsOut = rows
	// Quality gate: the product's checks on the exported output (a view
	// over the one Parquet file, plus the current snapshot's files for an
	// append: the models do not run again), before
	// anything is published. The candidate would be published now, so a
	// freshness check without a column measures from now.
	ref := table.RefFor(dp.ID, dp.CurrentVersion)
	checkedSrc := duckdb.Source{Format: "parquet", Paths: []string{outFile}}
	if dp.Pipeline.Mode == "append" {
		// An append publishes the table as it is plus the new rows: check
		// that whole (a key duplicated across batches is a duplicate).
		files, _, err := p.opt.Tables.DataFiles(ctx, ref, table.AsOf{})
		if err != nil && rhizome.Code(err) != rhizome.ENotFound {
			return res, err
		}
		prior, err := p.localFiles(ctx, files, filepath.Join(work, "prior"))
		if err != nil {
			return res, err
		}
		checkedSrc.Paths = append(prior, outFile)
		checkedSrc.Options = map[string]string{"union_by_name": "true"}
	}
	if err := sess.Register(ctx, checkedTable, checkedSrc); err != nil {
		return res, err
	}
	env := checkEnv{lastPublished: p.opt.Clock.Now(), baseline: ref, hasBaseline: true}
	var current time.Time // the current snapshot's publish
	if cur, err := p.opt.Tables.Current(ctx, ref); err == nil {
		current = cur.Time
	} else {
		env.hasBaseline = false
	}
	checked, err := p.runChecks(ctx, sess, dp, inf, checkedTable, filepath.Join(work, "quality"), env, logf)
	if err != nil {
		return res, err
	}
	logReport(checked, logf)
	schema, err := sess.Schema(ctx, out)
	if err != nil {
		return res, err
	}
	lineage, _ := sess.ColumnLineage(ctx, modelSQL(dp, dp.Pipeline.OutputModel()))
	record := qreport.Record{RunID: run.ID, ProductID: dp.ID, Version: dp.CurrentVersion, Report: checked, Rows: rows, LastPublished: current}
	if checked.Gate() == quality.GateQuarantine {
		record.Quarantine = p.quarantinePath(dp.ID, run.ID)
		if err := p.quarantine(outFile, record.Quarantine); err != nil {
			return res, err
		}
		logf("error", fmt.Sprintf("quality gate: quarantined %d rows in %s; the current snapshot stays", rows, record.Quarantine))
		record.At = p.opt.Clock.Now()
		if err := qreport.Save(ctx, p.opt.Store, record); err != nil {
			logf("warn", "storing quality results: "+err.Error())
		}
		yes := true
		p.gateAlerts(ctx, dp, run.ID, checked, &yes)
		return res, gateError(dp, checked, record.Quarantine)
	}

	// Publish: one atomic snapshot.
	mode := table.Append
	if dp.Pipeline.Mode != "append" {
		mode = table.Replace
	}
	snap, err := p.opt.Tables.Publish(ctx, table.PublishRequest{
		Ref: ref, Location: p.tableLocation(inf, ref, logf), Files: []string{outFile}, Mode: mode,
		Encrypt: Encrypted(inf), ProductID: dp.ID,
		Properties: map[string]string{"run-id": run.ID, "product-version": dp.CurrentVersion},
	})
	if err != nil {
		return res, err
	}
	res.SnapshotID = snap.ID
	logf("info", fmt.Sprintf("published snapshot %d: %d rows", snap.ID, rows))
	record.SnapshotID, record.At, record.LastPublished = snap.ID, p.opt.Clock.Now(), snap.Time
	if err := qreport.Save(ctx, p.opt.Store, record); err != nil {
		logf("warn", "storing quality results: "+err.Error())
	}
	no := false
	p.gateAlerts(ctx, dp, run.ID, checked, &no)
	p.emit(ctx, run.ID, lin.complete(p.opt.Clock.Now(), schema, lineage, rows, snap))
	return res, nil
}

// merge replaces out with the upsert of out into the current snapshot, on
// the merge key: rows of the current data whose key is not in out, plus out.
func (p *Pipeline) merge(ctx context.Context, sess *duckdb.Session, dp *rhizome.DataProduct, out, work string) (string, error) {
	files, _, err := p.opt.Tables.DataFiles(ctx, table.RefFor(dp.ID, dp.CurrentVersion), table.AsOf{})
	if rhizome.Code(err) == rhizome.ENotFound || (err == nil && len(files) == 0) {
		return out, nil // first run: nothing to merge into
	}
	if err != nil {
		return "", err
	}
	local, err := p.localFiles(ctx, files, filepath.Join(work, "current"))
	if err != nil {
		return "", err
	}
	if err := sess.Register(ctx, "__current", duckdb.Source{Format: "parquet", Paths: local}); err != nil {
		return "", err
	}
	var on []string
	for _, k := range dp.Pipeline.MergeKey {
		on = append(on, fmt.Sprintf("c.%s IS NOT DISTINCT FROM n.%s", quoteIdent(k), quoteIdent(k)))
	}
	q := fmt.Sprintf(`CREATE TABLE __merged AS SELECT * FROM %s UNION ALL BY NAME
SELECT c.* FROM __current c WHERE NOT EXISTS (SELECT 1 FROM %s n WHERE %s)`, quoteIdent(out), quoteIdent(out), strings.Join(on, " AND "))
	if _, err := sess.Exec(ctx, q); err != nil {
		return "", rhizome.Wrap(err, "merging on %v", dp.Pipeline.MergeKey)
	}
	return "__merged", nil
}

// registerRunContext gives models a one-row table run_context (run_id,
// trigger, product_version, window_start, window_end): a backfill run reads
// its time window from it, e.g. WHERE order_date >= (SELECT window_start
// FROM run_context). The window is NULL outside backfills.
func registerRunContext(ctx context.Context, sess *duckdb.Session, run *rhizome.Run, dp *rhizome.DataProduct) error {
	var from, to any
	if run.From != nil {
		from = run.From.UTC()
	}
	if run.To != nil {
		to = run.To.UTC()
	}
	_, err := sess.Exec(ctx, `CREATE TABLE run_context AS SELECT CAST(? AS VARCHAR) AS run_id, CAST(? AS VARCHAR) AS "trigger",
		CAST(? AS VARCHAR) AS product_version, CAST(? AS TIMESTAMPTZ) AS window_start, CAST(? AS TIMESTAMPTZ) AS window_end`,
		run.ID, string(run.Trigger), dp.CurrentVersion, from, to)
	return rhizome.Wrap(err, "creating run_context")
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func modelSQL(dp *rhizome.DataProduct, name string) string {
	for _, m := range dp.Pipeline.Models {
		if m.Name == name {
			return m.SQL
		}
	}
	return ""
}

// manifestPos is where the product's pipeline is written, for errors; the
// store keeps no positions, so errors name the product's manifest.
func manifestPos(dp *rhizome.DataProduct) (string, int) {
	return "products/" + dp.ID, 0
}

// localFiles makes table files readable inside a run's sandbox: local
// files are linked (or copied) into dir, object-storage URIs fetched there.
func (p *Pipeline) localFiles(ctx context.Context, files []string, dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, rhizome.Wrap(err, "creating %s", dir)
	}
	var out []string
	for i, f := range files {
		if !strings.Contains(f, "://") || strings.HasPrefix(f, "file://") {
			dst := filepath.Join(dir, fmt.Sprintf("%05d-%s", i, filepath.Base(f)))
			if err := linkOrCopy(strings.TrimPrefix(f, "file://"), dst); err != nil {
				return nil, err
			}
			out = append(out, dst)
			continue
		}
		local, err := p.opt.Tables.Fetch(ctx, f, dir)
		if err != nil {
			return nil, err
		}
		out = append(out, local)
	}
	return out, nil
}

func linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return rhizome.Wrap(err, "reading %s", src)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return rhizome.Wrap(err, "writing %s", dst)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return rhizome.Wrap(err, "copying %s", src)
	}
	return rhizome.Wrap(out.Close(), "writing %s", dst)
}

// productReader gives connectors the current files of upstream products:
// local table files as they are (the product connector links them into its
// stage), object-storage files fetched into dir, inside the run's work dir.
type productReader struct {
	p   *Pipeline
	dir string
}

func (r productReader) Files(ctx context.Context, productID, version string) ([]string, string, error) {
	dp, _, err := r.p.product(ctx, productID)
	if err != nil {
		return nil, "", err
	}
	if version == "" {
		version = dp.CurrentVersion
	}
	files, _, err := r.p.opt.Tables.DataFiles(ctx, table.RefFor(productID, version), table.AsOf{})
	if rhizome.Code(err) == rhizome.ENotFound || (err == nil && len(files) == 0) {
		return nil, "", rhizome.Errorf(rhizome.ENotFound, "upstream product %s@%s has published no data yet", productID, version).
			WithHint("run it first: rhizome run %s", productID)
	}
	if err != nil {
		return nil, "", err
	}
	var local, remote []string
	for _, f := range files {
		if strings.Contains(f, "://") && !strings.HasPrefix(f, "file://") {
			remote = append(remote, f)
		} else {
			local = append(local, strings.TrimPrefix(f, "file://"))
		}
	}
	if len(remote) > 0 {
		fetched, err := r.p.localFiles(ctx, remote, r.dir)
		if err != nil {
			return nil, "", err
		}
		local = append(local, fetched...)
	}
	return local, "parquet", nil
}

func (p *Pipeline) emit(ctx context.Context, runID string, ev event) {
	body, err := json.Marshal(ev)
	if err == nil {
		err = p.opt.Store.Update(ctx, func(tx metastore.Tx) error {
			return tx.PutLineageEvent(ctx, runID, ev.EventType, ev.EventTime, body)
		})
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		p.opt.Logger.Warn("storing lineage event", "run", runID, "err", err)
	}
}

// engineNotes says how the infrastructure's choices are carried out, in
// the run log (apply shows the same in its plan).
func engineNotes(inf *rhizome.Infrastructure) []string {
	var notes []string
	if pr := inf.Spec.Processing; pr != nil && pr.Engine != "" && !strings.EqualFold(pr.Engine, "duckdb") {
		notes = append(notes, fmt.Sprintf("processing.engine %s: this deployment executes on the embedded DuckDB engine (no Spark Connect endpoint configured)", pr.Engine))
	}
	if st := inf.Spec.Storage; st != nil && st.Format != "" && !strings.EqualFold(st.Format, "iceberg") {
		notes = append(notes, fmt.Sprintf("storage.format %s: publishing Apache Iceberg tables", st.Format))
	}
	return notes
}
