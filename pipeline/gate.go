package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/alert"
	"github.com/rhizome-mesh/rhizome/engine/duckdb"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/qreport"
	"github.com/rhizome-mesh/rhizome/quality"
	"github.com/rhizome-mesh/rhizome/table"
)

// The quality gate: after the models and before the publish, the
// product's checks run on the output in the run's own DuckDB session. An
// error-severity failure quarantines the output (kept as Parquet under
// QuarantineDir, not published: the table's current snapshot stays); a
// warning publishes and is logged. Results are stored by qreport.

// HistoryLength is how many past metrics anomaly checks see.
const HistoryLength = 30

// SampleRows is how many failing rows a row check samples.
const SampleRows = 5

// checkEnv is what a suite runs against besides the table.
type checkEnv struct {
	// lastPublished is the publish a freshness check without a column
	// measures from.
	lastPublished time.Time
	// baseline is the snapshot drift and schema_change checks compare
	// with, when hasBaseline.
	baseline    table.Ref
	baselineAt  table.AsOf
	hasBaseline bool
}

// runChecks gathers the product's suite and runs it on table, in sess.
// work is a directory inside the session's sandbox for the files of
// referenced products and the baseline. It fails only when the table
// cannot be read.
func (p *Pipeline) runChecks(ctx context.Context, sess *duckdb.Session, dp *rhizome.DataProduct, inf *rhizome.Infrastructure, tbl, work string,
	env checkEnv, logf func(level, msg string)) (*quality.Report, error) {
	src := qreport.Sources{Product: dp, Infrastructure: inf}
	if dp.Contract != "" {
		obj, err := p.opt.Store.Get(ctx, rhizome.KindDataContract, dp.Contract)
		switch {
		case rhizome.Code(err) == rhizome.ENotFound:
			logf("warn", fmt.Sprintf("contract %s not found: its quality rules are not checked", dp.Contract))
		case err != nil:
			return nil, err
		default:
			src.Contract = obj.Body
		}
	}
	suite, probs := qreport.Gather(src)
	for _, pr := range probs {
		logf("warn", fmt.Sprintf("quality: %s check skipped: %s", pr.Source, pr.Problem.String()))
	}
	checks := make([]quality.Check, 0, len(suite.Checks))
	var refused []quality.Result
	allowed := []string{tbl}
	n := 0
	for _, c := range suite.Checks {
		// A referential_integrity check reads another product's current
		// data: register it in the session under a private name.
		if pid, ok := suite.Products[c.Name]; ok {
			n++
			name := fmt.Sprintf("__ref_%d", n)
			if err := p.registerProduct(ctx, sess, pid, name, filepath.Join(work, name)); err != nil {
				refused = append(refused, errResult(c, err))
				continue
			}
			c.Args = maps.Clone(c.Args)
			c.Args["table"] = name
			allowed = append(allowed, name)
		}
		checks = append(checks, c)
	}
	// Team SQL goes through the engine's allowlist as well as quality's
	// guard: one SELECT over the checked table (and referenced products).
	kept := checks[:0]
	for _, c := range checks {
		if err := vetSQL(ctx, sess, c, tbl, allowed); err != nil {
			refused = append(refused, errResult(c, err))
			continue
		}
		kept = append(kept, c)
	}
	history, err := qreport.History(ctx, p.opt.Store, dp.ID, kept, HistoryLength)
	if err != nil {
		return nil, err
	}
	opt := quality.RunOptions{Now: p.opt.Clock.Now(), SampleRows: SampleRows, Masked: suite.Masked, History: history, LastPublished: env.lastPublished}
	// Drift and schema_change compare with the previous snapshot: make it
	// readable as __baseline, only when a check needs it.
	if env.hasBaseline && needsBaseline(kept) {
		if err := p.registerBaseline(ctx, sess, env, filepath.Join(work, "baseline")); err != nil {
			logf("warn", "quality: the previous snapshot cannot be read for drift checks: "+err.Error())
		} else {
			opt.Baseline = baselineTable
			cols, err := sess.Schema(ctx, baselineTable)
			if err != nil {
				return nil, err
			}
			opt.PreviousSchema = []quality.Column{}
			for _, c := range cols {
				opt.PreviousSchema = append(opt.PreviousSchema, quality.Column{Name: c.Name, Type: c.Type, Nullable: !c.Required})
			}
		}
	}
	rep, err := quality.Run(ctx, sess, tbl, kept, opt)
	if err != nil {
		return nil, err
	}
	addRefused(rep, refused)
	return rep, nil
}

// baselineTable is the name the previous snapshot gets in a check session.
const baselineTable = "__baseline"

func needsBaseline(cs []quality.Check) bool {
	for _, c := range cs {
		if c.Type == "drift" || c.Type == "schema_change" {
			return true
		}
	}
	return false
}

func (p *Pipeline) registerBaseline(ctx context.Context, sess *duckdb.Session, env checkEnv, dir string) error {
	files, _, err := p.opt.Tables.DataFiles(ctx, env.baseline, env.baselineAt)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return rhizome.Errorf(rhizome.ENotFound, "the previous snapshot has no files")
	}
	local, err := p.localFiles(ctx, files, dir)
	if err != nil {
		return err
	}
	return sess.Register(ctx, baselineTable, duckdb.Source{Format: "parquet", Paths: local})
}

func errResult(c quality.Check, err error) quality.Result {
	sev := c.Severity
	if sev == "" {
		sev = quality.SeverityError
	}
	msg := err.Error()
	if ps := rhizome.ProblemsOf(err); len(ps) > 0 {
		var parts []string
		for _, p := range ps {
			parts = append(parts, p.String())
		}
		msg += ": " + strings.Join(parts, "; ")
	}
	return quality.Result{Check: c, Severity: sev, Threshold: c.ThresholdText, Error: msg}
}

var placeholderRE = regexp.MustCompile(`\{(object|model|table)\}`)

// vetSQL applies the engine's SELECT allowlist to a check's SQL: a
// custom_sql query (placeholders filled in as quality fills them) and a
// where filter.
func vetSQL(ctx context.Context, sess *duckdb.Session, c quality.Check, tbl string, allowed []string) error {
	if q, _ := c.Args["query"].(string); q != "" && (c.Type == "custom_sql" || c.Type == "sql") {
		q = placeholderRE.ReplaceAllString(q, quoteIdent(tbl))
		if c.Column != "" {
			q = strings.ReplaceAll(q, "{column}", quoteIdent(c.Column))
			q = strings.ReplaceAll(q, "{property}", quoteIdent(c.Column))
		}
		q = strings.TrimSuffix(strings.TrimSpace(q), ";")
		if err := sess.CheckQuery(ctx, q, allowed); err != nil {
			return err
		}
	}
	if c.Where != "" {
		if err := sess.CheckQuery(ctx, "SELECT * FROM "+quoteIdent(tbl)+" WHERE "+c.Where, allowed); err != nil {
			return err
		}
	}
	return nil
}

// registerProduct makes a product's current data readable in sess as name.
func (p *Pipeline) registerProduct(ctx context.Context, sess *duckdb.Session, productID, name, dir string) error {
	files, _, err := productReader{p, dir}.Files(ctx, productID, "")
	if err != nil {
		return err
	}
	local, err := p.localFiles(ctx, files, dir)
	if err != nil {
		return err
	}
	return sess.Register(ctx, name, duckdb.Source{Format: "parquet", Paths: local})
}

// gateAlerts tells the alert observer about the checks (firing for each
// failed one, resolved for each that passes) and the quarantine.
func (p *Pipeline) gateAlerts(ctx context.Context, dp *rhizome.DataProduct, runID string, rep *quality.Report, quarantine *bool) {
	obs := p.opt.Alerts
	if obs == nil {
		return
	}
	now := p.opt.Clock.Now()
	for _, r := range rep.Results {
		sev := "critical"
		if r.Severity == quality.SeverityWarn {
			sev = "warning"
		}
		obs.Observe(ctx, alert.Condition{Key: "check_failed/" + dp.ID + "/" + r.Check.Name, Kind: alert.KindCheckFailed, ProductID: dp.ID,
			Severity: sev, Summary: fmt.Sprintf("%s: check %s failed: %s", dp.ID, r.Check.Name, qreport.Describe(r)),
			Details: map[string]any{"run_id": runID, "check": r.Check.Name, "metric": qreport.FormatMetric(r.Metric), "threshold": r.Threshold, "severity": r.Severity},
			Firing:  !r.Passed, At: now})
	}
	// A check that is gone from the suite (removed or renamed) no longer
	// fails: its open alert resolves.
	current := map[string]bool{}
	for _, r := range rep.Results {
		current["check_failed/"+dp.ID+"/"+r.Check.Name] = true
	}
	for _, state := range []string{alert.StateFiring, alert.StateAcknowledged} {
		recs, err := p.opt.Store.ListRecords(ctx, metastore.RecordQuery{Collection: alert.CollectionAlert, ProductID: dp.ID, State: state, Limit: 10000})
		if err != nil {
			p.opt.Logger.Warn("quality: reading open check alerts", "product", dp.ID, "error", err)
			break
		}
		for _, rec := range recs {
			if strings.HasPrefix(rec.ID, "check_failed/"+dp.ID+"/") && !current[rec.ID] {
				obs.Observe(ctx, alert.Condition{Key: rec.ID, Kind: alert.KindCheckFailed, ProductID: dp.ID,
					Summary: fmt.Sprintf("%s: check %s is no longer declared", dp.ID, strings.TrimPrefix(rec.ID, "check_failed/"+dp.ID+"/")),
					Details: map[string]any{"run_id": runID}, Firing: false, At: now})
			}
		}
	}
	if quarantine != nil {
		obs.Observe(ctx, alert.Condition{Key: "quarantined/" + dp.ID, Kind: alert.KindQuarantined, ProductID: dp.ID, Severity: "critical",
			Summary: fmt.Sprintf("%s: run %s quarantined by the quality gate (%d error checks failed)", dp.ID, runID, rep.Failures),
			Details: map[string]any{"run_id": runID}, Firing: *quarantine, At: now})
	}
}

// quarantinePath is where a quarantined run's output is kept.
func (p *Pipeline) quarantinePath(productID, runID string) string {
	dir := p.opt.QuarantineDir
	if dir == "" {
		dir = filepath.Join(filepath.Dir(filepath.Clean(p.opt.WorkDir)), "quarantine")
	}
	return filepath.Join(dir, productID, runID+".parquet")
}

// PruneQuarantine deletes the quarantined outputs (<dir>/<product>/<run>.parquet)
// last modified before olderThan, and the product directories it empties;
// it returns the files it deleted. `rhizome up` calls it with the
// retention sweep (RHIZOME_QUARANTINE_KEEP, 14 days by default).
func PruneQuarantine(dir string, olderThan time.Time) ([]string, error) {
	products, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, rhizome.Wrap(err, "reading the quarantine dir")
	}
	var removed []string
	for _, pd := range products {
		if !pd.IsDir() {
			continue
		}
		pdir := filepath.Join(dir, pd.Name())
		files, err := os.ReadDir(pdir)
		if err != nil {
			return removed, rhizome.Wrap(err, "reading %s", pdir)
		}
		left := len(files)
		for _, f := range files {
			info, err := f.Info()
			if err != nil || f.IsDir() || !info.ModTime().Before(olderThan) {
				continue
			}
			path := filepath.Join(pdir, f.Name())
			if err := os.Remove(path); err != nil {
				return removed, rhizome.Wrap(err, "removing %s", path)
			}
			removed = append(removed, path)
			left--
		}
		if left == 0 {
			_ = os.Remove(pdir)
		}
	}
	return removed, nil
}

// quarantine moves the exported output to the quarantine directory.
func (p *Pipeline) quarantine(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return rhizome.Wrap(err, "creating the quarantine dir")
	}
	if err := os.Rename(src, dst); err == nil {
		return nil
	}
	return linkOrCopy(src, dst)
}

// gateError is the run's error when the gate quarantines.
func gateError(dp *rhizome.DataProduct, rep *quality.Report, path string) error {
	var failed []string
	for _, r := range rep.Results {
		if !r.Passed && r.Severity != quality.SeverityWarn {
			failed = append(failed, r.Check.Name+" ("+qreport.Describe(r)+")")
		}
	}
	return rhizome.Errorf(rhizome.EInvalid, "quality gate: %d error checks failed: %s", rep.Failures, strings.Join(failed, "; ")).
		WithHint("the previous snapshot stays current; the new data is quarantined in %s; see `rhizome quality %s`", path, dp.ID)
}

// logReport writes each failed check to the run log.
func logReport(rep *quality.Report, logf func(level, msg string)) {
	for _, r := range rep.Results {
		if r.Passed {
			continue
		}
		level := "error"
		if r.Severity == quality.SeverityWarn {
			level = "warn"
		}
		logf(level, fmt.Sprintf("quality: check %s failed: %s", r.Check.Name, qreport.Describe(r)))
	}
	logf("info", fmt.Sprintf("quality: %d checks, %d error failures, %d warnings: %s", len(rep.Results), rep.Failures, rep.Warnings, rep.Gate()))
}

// Check runs a product version's checks now against its current snapshot,
// in a sandboxed session of its own, and stores the results as an
// on-demand run ("check-..."). It publishes and quarantines nothing.
func (p *Pipeline) Check(ctx context.Context, productID, version string) (*quality.Report, string, error) {
	dp, inf, err := p.product(ctx, productID)
	if err != nil {
		return nil, "", err
	}
	if version == "" {
		version = dp.CurrentVersion
	}
	ref := table.RefFor(dp.ID, version)
	snap, err := p.opt.Tables.Current(ctx, ref)
	if rhizome.Code(err) == rhizome.ENotFound {
		return nil, "", rhizome.Errorf(rhizome.ENotFound, "%s@%s has published no data yet", dp.ID, version).WithHint("run it first: rhizome run %s", dp.ID)
	}
	if err != nil {
		return nil, "", err
	}
	id := newCheckID(p.opt.Clock.Now())
	work := filepath.Join(p.opt.WorkDir, id)
	if err := os.MkdirAll(work, 0o700); err != nil {
		return nil, "", rhizome.Wrap(err, "creating the check's work dir")
	}
	defer os.RemoveAll(work)
	files, _, err := p.opt.Tables.DataFiles(ctx, ref, table.AsOf{SnapshotID: snap.ID})
	if err != nil {
		return nil, "", err
	}
	local, err := p.localFiles(ctx, files, filepath.Join(work, "data"))
	if err != nil {
		return nil, "", err
	}
	eng, err := duckdb.Open(ctx, duckdb.Options{AllowedDirs: []string{work}, TempDir: filepath.Join(work, "tmp")})
	if err != nil {
		return nil, "", err
	}
	defer eng.Close()
	sess, err := eng.Session(ctx)
	if err != nil {
		return nil, "", err
	}
	defer sess.Close()
	name := "data"
	if dp.Pipeline != nil && identOK(dp.Pipeline.OutputModel()) {
		name = dp.Pipeline.OutputModel()
	}
	if err := sess.Register(ctx, name, duckdb.Source{Format: "parquet", Paths: local}); err != nil {
		return nil, "", err
	}
	logf := func(level, msg string) { p.opt.Logger.Log(ctx, logLevel(level), msg, "product", dp.ID, "check", id) }
	env := checkEnv{lastPublished: snap.Time}
	if snap.ParentID != 0 {
		env.baseline, env.baselineAt, env.hasBaseline = ref, table.AsOf{SnapshotID: snap.ParentID}, true
	}
	rep, err := p.runChecks(ctx, sess, dp, inf, name, work, env, logf)
	if err != nil {
		return nil, "", err
	}
	if err := qreport.Save(ctx, p.opt.Store, qreport.Record{RunID: id, ProductID: dp.ID, Version: version, SnapshotID: snap.ID, OnDemand: true,
		At: p.opt.Clock.Now(), Report: rep, Rows: snap.Rows, LastPublished: snap.Time}); err != nil {
		return nil, "", err
	}
	p.gateAlerts(ctx, dp, id, rep, nil)
	return rep, id, nil
}

var plainIdentRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

func identOK(s string) bool { return plainIdentRE.MatchString(s) }

func newCheckID(now time.Time) string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return qreport.OnDemandPrefix + now.UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b[:])
}

func logLevel(level string) slog.Level {
	switch level {
	case "error":
		return slog.LevelError
	case "warn":
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

// checkedTable is the name the gate gives the run's exported output.
const checkedTable = "__output"

// CheckFile runs a contract's checks for one of its schema objects on a
// local file (Parquet, CSV or JSON), offline: what `rhizome check
// --contract --data` runs in a team's CI. object "" takes the contract's
// only object. The file's directory is the engine's only readable place.
func CheckFile(ctx context.Context, contract []byte, object, path string, now time.Time) (*quality.Report, error) {
	checks, probs := quality.FromContract(contract)
	if len(probs) > 0 {
		return nil, rhizome.Invalid("the contract's quality rules are invalid", probs...)
	}
	objs := qreport.ContractObjects(contract)
	if object == "" {
		if len(objs) != 1 {
			return nil, rhizome.Errorf(rhizome.EInvalid, "the contract has %d schema objects: name one with --object", len(objs)).
				WithHint("objects: %s", strings.Join(objs, ", "))
		}
		object = objs[0]
	}
	found := false
	for _, o := range objs {
		if strings.EqualFold(o, object) {
			object, found = o, true
		}
	}
	if !found {
		return nil, rhizome.Errorf(rhizome.EInvalid, "the contract has no schema object %q", object).WithHint("objects: %s", strings.Join(objs, ", "))
	}
	checks = quality.ForObject(checks, object)
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, rhizome.Wrap(err, "locating %s", path)
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, rhizome.Errorf(rhizome.ENotFound, "data file %s: %v", path, errors.Unwrap(err))
	}
	format := ""
	switch strings.ToLower(filepath.Ext(abs)) {
	case ".parquet":
		format = "parquet"
	case ".csv":
		format = "csv"
	case ".json", ".ndjson", ".jsonl":
		format = "json"
	default:
		return nil, rhizome.Errorf(rhizome.EInvalid, "%s: unknown data format", path).WithHint("give a .parquet, .csv or .json file")
	}
	tmp, err := os.MkdirTemp("", "rhizome-check-")
	if err != nil {
		return nil, rhizome.Wrap(err, "creating a temp dir")
	}
	defer os.RemoveAll(tmp)
	eng, err := duckdb.Open(ctx, duckdb.Options{AllowedDirs: []string{filepath.Dir(abs), tmp}, TempDir: tmp})
	if err != nil {
		return nil, err
	}
	defer eng.Close()
	sess, err := eng.Session(ctx)
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	name := "data"
	if identOK(object) {
		name = object
	}
	if err := sess.Register(ctx, name, duckdb.Source{Format: format, Paths: []string{abs}}); err != nil {
		return nil, err
	}
	var kept []quality.Check
	var refused []quality.Result
	for _, c := range checks {
		if err := vetSQL(ctx, sess, c, name, []string{name}); err != nil {
			refused = append(refused, errResult(c, err))
			continue
		}
		kept = append(kept, c)
	}
	// Samples end up in CI logs and artifacts: sensitive columns are
	// masked as on the server.
	masked := qreport.MaskedColumns(contract, object)
	rep, err := quality.Run(ctx, sess, name, kept, quality.RunOptions{Now: now, SampleRows: SampleRows, LastPublished: now, Masked: masked})
	if err != nil {
		return nil, err
	}
	addRefused(rep, refused)
	return rep, nil
}

// addRefused counts checks refused before the run into the report.
func addRefused(rep *quality.Report, refused []quality.Result) {
	for _, r := range refused {
		rep.Results = append(rep.Results, r)
		if r.Severity == quality.SeverityWarn {
			rep.Warnings++
		} else {
			rep.Failures++
			rep.Passed = false
		}
	}
}
