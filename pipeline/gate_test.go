package pipeline_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/alert"
	"github.com/rhizome-mesh/rhizome/connector"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/pipeline"
	"github.com/rhizome-mesh/rhizome/qreport"
	"github.com/rhizome-mesh/rhizome/table"
)

// recorder is an alert.Observer that keeps what it is told.
type recorder struct {
	mu    sync.Mutex
	conds []alert.Condition
}

func (r *recorder) Observe(_ context.Context, c alert.Condition) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.conds = append(r.conds, c)
}

// last is the latest condition with key ("" Kind when none).
func (r *recorder) last(key string) alert.Condition {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.conds) - 1; i >= 0; i-- {
		if r.conds[i].Key == key {
			return r.conds[i]
		}
	}
	return alert.Condition{}
}

// gateEnv is an env whose pipeline reports to an alert recorder and keeps
// quarantined data in its own directory.
func gateEnv(t *testing.T) (*env, *recorder, string) {
	e := newEnv(t)
	rec := &recorder{}
	qdir := filepath.Join(t.TempDir(), "quarantine")
	e.pipe = pipeline.New(pipeline.Options{Store: e.store, Tables: e.tables, WorkDir: filepath.Join(t.TempDir(), "work"), BaseDir: e.base,
		Secrets: connector.EnvSecrets{Getenv: func(string) string { return "" }}, Warehouse: "file://" + filepath.Join(t.TempDir(), "lake"),
		Alerts: rec, QuarantineDir: qdir})
	return e, rec, qdir
}

// gated is the test mesh's orders product with checks from all three
// sources: its manifest, its infrastructure and its contract.
var gated = strings.Replace(mesh, "current_version: 1.0.0\n", `current_version: 1.0.0
contract: orders-contract
infrastructure: sales-lake
quality:
  row_count: "> 0"
  accepted_values: {column: status, values: [shipped, cancelled, pending]}
  null_percentage: {column: amount, threshold: "< 1%", severity: warn}
  schema_change: "== 0"
`, 1) + `---
apiVersion: platform/v1
kind: DataProductInfrastructure
metadata: {name: sales-lake, namespace: sales}
spec:
  quality:
    checks:
      - name: freshness
        threshold: "< 24 hours"
---
apiVersion: v3.1.0
kind: DataContract
id: orders-contract
version: 1.0.0
status: active
dataProduct: dp.sales.orders
schema:
  - name: orders
    properties:
      - {name: order_id, physicalType: BIGINT, required: true, unique: true}
      - {name: customer_id, physicalType: VARCHAR, classification: restricted}
      - {name: amount, physicalType: "DECIMAL(10,2)"}
      - {name: status, physicalType: VARCHAR}
`

func (e *env) writeOrders(csv string) {
	e.t.Helper()
	if err := os.WriteFile(filepath.Join(e.base, "orders.csv"), []byte(csv), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

func runRecord(t *testing.T, store metastore.Store, id string) (*metastore.Record, qreport.RunBody) {
	t.Helper()
	r, err := store.GetRecord(ctx, qreport.CollectionRun, id)
	if err != nil {
		t.Fatalf("quality.run %s: %v", id, err)
	}
	var b qreport.RunBody
	if err := json.Unmarshal(r.Body, &b); err != nil {
		t.Fatal(err)
	}
	return r, b
}

func TestGateQuarantinesAndKeepsTheCurrentSnapshot(t *testing.T) {
	e, rec, qdir := gateEnv(t)
	e.apply(gated)
	res, logs, err := e.run("run_1", "dp.sales.orders")
	if err != nil {
		t.Fatalf("run_1: %v\n%s", err, strings.Join(logs, "\n"))
	}
	r, body := runRecord(t, e.store, "run_1")
	if r.State != "publish" || body.SnapshotID != res.snap || body.Checks != 8 || body.Passed != body.Checks || body.Metrics.Completeness != 100 {
		t.Fatalf("run_1 record %+v %+v", r, body)
	}

	// Bad data: a status outside the accepted values and a duplicate key.
	e.writeOrders("order_id,customer_id,amount,status\n1,c1,10.50,shipped\n1,c9,20.00,lost\n3,c2,5.25,cancelled\n")
	_, logs, err = e.run("run_2", "dp.sales.orders")
	if rhizome.Code(err) != rhizome.EInvalid || !strings.Contains(err.Error(), "quality gate: 2 error checks failed") ||
		!strings.Contains(err.Error(), "accepted_values.status") || !strings.Contains(err.Error(), "orders.order_id.unique") {
		t.Fatalf("run_2: %v\n%s", err, strings.Join(logs, "\n"))
	}
	// The table still serves run_1's snapshot, all of it.
	cur, err := e.tables.Current(ctx, table.RefFor("dp.sales.orders", "1.0.0"))
	if err != nil || cur.ID != res.snap || cur.Properties["run-id"] != "run_1" {
		t.Fatalf("current snapshot %+v %v", cur, err)
	}
	if n := e.count("dp.sales.orders", "1.0.0", ""); n != 4 {
		t.Fatalf("serving %d rows", n)
	}
	qfile := filepath.Join(qdir, "dp.sales.orders", "run_2.parquet")
	if fi, err := os.Stat(qfile); err != nil || fi.Size() == 0 {
		t.Fatalf("quarantine file: %v", err)
	}
	r, body = runRecord(t, e.store, "run_2")
	if r.State != "quarantine" || body.SnapshotID != 0 || body.Quarantine != qfile || body.Failures != 2 || body.Rows != 3 {
		t.Fatalf("run_2 record %+v %+v", r, body)
	}
	// The failing check's result keeps masked samples of the bad rows.
	res2, err := e.store.GetRecord(ctx, qreport.CollectionResult, "run_2/accepted_values.status")
	if err != nil || res2.State != "failed" {
		t.Fatalf("result record %+v %v", res2, err)
	}
	var rb qreport.ResultBody
	if err := json.Unmarshal(res2.Body, &rb); err != nil {
		t.Fatal(err)
	}
	if rb.Gate != "quarantine" || rb.Result.Metric != 1 || len(rb.Result.Samples) != 1 ||
		rb.Result.Samples[0]["status"] != "lost" || rb.Result.Samples[0]["customer_id"] != "***" {
		t.Fatalf("result body %+v", rb)
	}
	// Alerts: the failed checks and the quarantine fire.
	if c := rec.last("check_failed/dp.sales.orders/accepted_values.status"); !c.Firing || c.Kind != alert.KindCheckFailed || c.Severity != "critical" {
		t.Fatalf("check alert %+v", c)
	}
	if c := rec.last("quarantined/dp.sales.orders"); !c.Firing || c.Kind != alert.KindQuarantined {
		t.Fatalf("quarantine alert %+v", c)
	}

	// Fixed data publishes again and resolves the alerts.
	e.writeOrders("order_id,customer_id,amount,status\n1,c1,10.50,shipped\n2,c9,20.00,pending\n")
	res3, logs, err := e.run("run_3", "dp.sales.orders")
	if err != nil || res3.snap == res.snap {
		t.Fatalf("run_3: %v %+v\n%s", err, res3, strings.Join(logs, "\n"))
	}
	// schema_change compared with run_1's snapshot (the first run had none).
	for id, note := range map[string]bool{"run_1": true, "run_3": false} {
		r, err := e.store.GetRecord(ctx, qreport.CollectionResult, id+"/schema_change")
		var b qreport.ResultBody
		if err == nil {
			err = json.Unmarshal(r.Body, &b)
		}
		if err != nil || !b.Result.Passed || (b.Result.Note != "") != note {
			t.Fatalf("%s schema_change: %+v %v", id, b.Result, err)
		}
	}
	if c := rec.last("check_failed/dp.sales.orders/accepted_values.status"); c.Firing || c.Kind == "" {
		t.Fatalf("check alert after the fix %+v", c)
	}
	if c := rec.last("quarantined/dp.sales.orders"); c.Firing || c.Kind == "" {
		t.Fatalf("quarantine alert after the fix %+v", c)
	}

	// The report: latest results, history across the three runs, metrics.
	obj, _ := e.store.Get(ctx, rhizome.KindDataProduct, "dp.sales.orders")
	var dp rhizome.DataProduct
	_ = json.Unmarshal(obj.Body, &dp)
	rep, err := qreport.Build(ctx, e.store, qreport.BuildOptions{Product: &dp, Now: cur.Time, Sample: func(r map[string]any) map[string]any { return r }})
	if err != nil {
		t.Fatal(err)
	}
	if rep.LastRun == nil || rep.LastRun.RunID != "run_3" {
		t.Fatalf("last run %+v", rep.LastRun)
	}
	var acc *qreport.CheckInfo
	for i, c := range rep.Checks {
		if c.Name == "accepted_values.status" {
			acc = &rep.Checks[i]
		}
	}
	if acc == nil || !acc.Passed || len(acc.History) != 3 || acc.History[1].Metric != 1 || acc.Trend != "down" || acc.Source != "manifest" {
		t.Fatalf("accepted_values in the report: %+v", acc)
	}
}

func TestGateWarningPublishes(t *testing.T) {
	e, rec, _ := gateEnv(t)
	e.apply(gated)
	e.writeOrders("order_id,customer_id,amount,status\n1,c1,,shipped\n2,c1,20.00,shipped\n")
	res, logs, err := e.run("run_1", "dp.sales.orders")
	if err != nil || res.snap == 0 {
		t.Fatalf("run: %v\n%s", err, strings.Join(logs, "\n"))
	}
	if !strings.Contains(strings.Join(logs, "\n"), "warn: quality: check null_percentage.amount failed: metric 50, want < 1%") {
		t.Fatalf("logs:\n%s", strings.Join(logs, "\n"))
	}
	r, body := runRecord(t, e.store, "run_1")
	if r.State != "publish-with-warnings" || body.Warnings != 1 || body.Failures != 0 || body.SnapshotID != res.snap || body.Metrics.Completeness != 75 {
		t.Fatalf("record %+v %+v", r, body)
	}
	if c := rec.last("check_failed/dp.sales.orders/null_percentage.amount"); !c.Firing || c.Severity != "warning" {
		t.Fatalf("alert %+v", c)
	}
	if c := rec.last("quarantined/dp.sales.orders"); c.Firing {
		t.Fatalf("quarantine alert %+v", c)
	}

	// On demand: the same checks on the current snapshot, stored as a
	// "check-" run that publishes nothing.
	rep, id, err := e.pipe.Check(ctx, "dp.sales.orders", "")
	if err != nil || !strings.HasPrefix(id, "check-") || rep.Gate() != "publish-with-warnings" {
		t.Fatalf("check: %v %s %+v", err, id, rep)
	}
	r, body = runRecord(t, e.store, id)
	if !body.OnDemand || body.SnapshotID != res.snap || r.State != "publish-with-warnings" {
		t.Fatalf("check record %+v %+v", r, body)
	}
	snaps, _ := e.tables.Snapshots(ctx, table.RefFor("dp.sales.orders", "1.0.0"))
	if len(snaps) != 1 {
		t.Fatalf("a check published: %d snapshots", len(snaps))
	}
}

func TestGateRefusesSQLOutsideTheOutput(t *testing.T) {
	e, _, _ := gateEnv(t)
	// Applied without the catalog's checks (as an older manifest in the
	// store would be): the run still refuses the query and fails the gate.
	e.apply(mesh)
	obj, err := e.store.Get(ctx, rhizome.KindDataProduct, "dp.sales.orders")
	if err != nil {
		t.Fatal(err)
	}
	var dp map[string]any
	_ = json.Unmarshal(obj.Body, &dp)
	dp["quality"] = map[string]any{"custom_sql": map[string]any{"query": "SELECT count(*) FROM {object} WHERE status IN (SELECT * FROM raw)"}}
	body, _ := json.Marshal(dp)
	if err := e.store.Update(ctx, func(tx metastore.Tx) error {
		o := *obj
		o.Body = body
		_, err := tx.Put(ctx, &o, obj.Revision, "test", "ap_test")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	_, logs, err := e.run("run_1", "dp.sales.orders")
	if rhizome.Code(err) != rhizome.EInvalid || !strings.Contains(err.Error(), "quality gate: 1 error checks failed: custom_sql (error: query refused") {
		t.Fatalf("run: %v\n%s", err, strings.Join(logs, "\n"))
	}
}

// TestGateAnomalyReadsStoredHistory: an anomaly check compares this run's
// row count with the counts the earlier runs stored.
func TestGateAnomalyReadsStoredHistory(t *testing.T) {
	e, _, _ := gateEnv(t)
	e.apply(strings.Replace(mesh, "current_version: 1.0.0\n", `current_version: 1.0.0
quality:
  row_count: "> 0"
  anomaly: {check: row_count, min_history: 3, severity: warn}
`, 1))
	rows := []string{"order_id,customer_id,amount,status"}
	for i := 1; i <= 4; i++ {
		rows = append(rows, "1,c1,10.50,shipped")
	}
	e.writeOrders(strings.Join(rows, "\n") + "\n")
	for i, want := range []string{"publish", "publish", "publish", "publish"} {
		id := "run_" + string(rune('1'+i))
		if _, logs, err := e.run(id, "dp.sales.orders"); err != nil {
			t.Fatalf("%s: %v\n%s", id, err, strings.Join(logs, "\n"))
		}
		if r, _ := runRecord(t, e.store, id); r.State != want {
			t.Fatalf("%s: gate %s", id, r.State)
		}
	}
	// Ten times the rows: an outlier against a flat history of 4.
	for i := 0; i < 36; i++ {
		rows = append(rows, "1,c1,10.50,shipped")
	}
	e.writeOrders(strings.Join(rows, "\n") + "\n")
	if _, logs, err := e.run("run_9", "dp.sales.orders"); err != nil {
		t.Fatalf("run_9: %v\n%s", err, strings.Join(logs, "\n"))
	}
	r, body := runRecord(t, e.store, "run_9")
	if r.State != "publish-with-warnings" || len(body.Failed) != 1 || body.Failed[0] != "anomaly" {
		t.Fatalf("run_9 %+v %+v", r, body)
	}
}

// TestGateResolvesAlertsOfRemovedChecks: with the real alert manager, a
// check that failed and is then removed from the manifest no longer holds
// its alert open; the next publish resolves it with the quarantine.
func TestGateResolvesAlertsOfRemovedChecks(t *testing.T) {
	e := newEnv(t)
	mgr := alert.New(alert.Options{Store: e.store})
	t.Cleanup(func() { _ = mgr.Close(context.Background()) })
	e.pipe = pipeline.New(pipeline.Options{Store: e.store, Tables: e.tables, WorkDir: filepath.Join(t.TempDir(), "work"), BaseDir: e.base,
		Secrets: connector.EnvSecrets{Getenv: func(string) string { return "" }}, Warehouse: "file://" + filepath.Join(t.TempDir(), "lake"),
		Alerts: mgr, QuarantineDir: filepath.Join(t.TempDir(), "quarantine")})
	strict := strings.Replace(gated, "  row_count: \"> 0\"\n", "  row_count: \"> 0\"\n  too_many: {type: row_count, threshold: \"> 100\"}\n", 1)
	e.apply(strict)
	if _, logs, err := e.run("run_1", "dp.sales.orders"); !strings.Contains(fmt2(err), "too_many") {
		t.Fatalf("run_1: %v\n%s", err, strings.Join(logs, "\n"))
	}
	state := func(key string) string {
		a, err := mgr.Get(ctx, key)
		if err != nil {
			t.Fatalf("alert %s: %v", key, err)
		}
		return a.State
	}
	if s := state("check_failed/dp.sales.orders/too_many"); s != alert.StateFiring {
		t.Fatalf("too_many alert %s", s)
	}
	e.apply(gated)
	if _, logs, err := e.run("run_2", "dp.sales.orders"); err != nil {
		t.Fatalf("run_2: %v\n%s", err, strings.Join(logs, "\n"))
	}
	for _, key := range []string{"check_failed/dp.sales.orders/too_many", "quarantined/dp.sales.orders"} {
		if s := state(key); s != alert.StateResolved {
			t.Fatalf("%s after the check was removed: %s", key, s)
		}
	}
}

func fmt2(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestGateChecksAppendsWhole: in append mode the gate checks the table as
// the append would leave it, so a key repeated across batches fails the
// uniqueness check and the batch is quarantined.
func TestGateChecksAppendsWhole(t *testing.T) {
	e, _, qdir := gateEnv(t)
	e.apply(strings.Replace(gated, "pipeline:\n  models:", "pipeline:\n  mode: append\n  models:", 1))
	e.writeOrders("order_id,customer_id,amount,status\n1,c1,10.50,shipped\n2,c2,5.25,cancelled\n")
	if _, logs, err := e.run("run_1", "dp.sales.orders"); err != nil {
		t.Fatalf("run_1: %v\n%s", err, strings.Join(logs, "\n"))
	}
	// A new batch with new keys appends.
	e.writeOrders("order_id,customer_id,amount,status\n3,c3,1.00,pending\n")
	if _, logs, err := e.run("run_2", "dp.sales.orders"); err != nil {
		t.Fatalf("run_2: %v\n%s", err, strings.Join(logs, "\n"))
	}
	_, body := runRecord(t, e.store, "run_2")
	if body.Passed != body.Checks {
		t.Errorf("run_2: %d of %d checks passed", body.Passed, body.Checks)
	}
	// A batch whose key is already in the table: unique within itself, a
	// duplicate in the table the append would publish.
	e.writeOrders("order_id,customer_id,amount,status\n2,c9,7.00,pending\n")
	_, logs, err := e.run("run_3", "dp.sales.orders")
	if rhizome.Code(err) != rhizome.EInvalid || !strings.Contains(err.Error(), "orders.order_id.unique") {
		t.Fatalf("run_3: %v\n%s", err, strings.Join(logs, "\n"))
	}
	if _, err := os.Stat(filepath.Join(qdir, "dp.sales.orders", "run_3.parquet")); err != nil {
		t.Errorf("run_3's batch is not quarantined: %v", err)
	}
}
