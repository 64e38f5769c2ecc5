package slo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/alert"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/metastore/sqlite"
	"github.com/rhizome-mesh/rhizome/slo"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// history is a constructed publish history.
type history map[string][]time.Time

func (h history) PublishTimes(_ context.Context, productID, _ string) ([]time.Time, error) {
	return h[productID], nil
}

func TestFreshTime(t *testing.T) {
	h := func(d float64) time.Time { return t0.Add(time.Duration(d * float64(time.Hour))) }
	for _, tc := range []struct {
		name         string
		pubs         []time.Time
		fresh, total time.Duration
	}{
		{"none", nil, 0, 0},
		{"one before the window, long stale", []time.Time{h(-30)}, 0, 24 * time.Hour},
		{"covers the end", []time.Time{h(-30), h(-20), h(-2), h(-0.5)}, 150 * time.Minute, 24 * time.Hour},
		{"first publish inside: measured from it", []time.Time{h(-4), h(-3.5)}, 90 * time.Minute, 4 * time.Hour},
		{"overlapping publishes count once", []time.Time{h(-1), h(-0.9), h(-0.8)}, time.Hour, time.Hour},
		{"a publish after the window", []time.Time{h(-1), h(1)}, time.Hour, time.Hour},
	} {
		fresh, total := slo.FreshTime(tc.pubs, time.Hour, t0.Add(-24*time.Hour), t0)
		if fresh != tc.fresh || total != tc.total {
			t.Errorf("%s: fresh %v of %v, want %v of %v", tc.name, fresh, total, tc.fresh, tc.total)
		}
	}
}

func TestErrorBudget(t *testing.T) {
	for _, tc := range []struct {
		att, target float64
		want        slo.Budget
	}{
		{100, 99.9, slo.Budget{Total: 0.1, Consumed: 0, Remaining: 100}},
		{99.95, 99.9, slo.Budget{Total: 0.1, Consumed: 50, Remaining: 50}},
		{99.8, 99.9, slo.Budget{Total: 0.1, Consumed: 200, Remaining: -100}},
		{100, 100, slo.Budget{Total: 0, Consumed: 0, Remaining: 100}},
		{99, 100, slo.Budget{Total: 0, Consumed: 100, Remaining: 0}},
	} {
		if got := slo.ErrorBudget(tc.att, tc.target); got != tc.want {
			t.Errorf("ErrorBudget(%v, %v) = %+v, want %+v", tc.att, tc.target, got, tc.want)
		}
	}
}

type fixture struct {
	ctx    context.Context
	store  metastore.Store
	clk    *clock
	tr     *slo.Tracker
	alerts *alert.Manager
	reg    *prometheus.Registry
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	clk := &clock{t: t0.Add(-48 * time.Hour)}
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "m.db"), metastore.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	put := func(dp rhizome.DataProduct) {
		dp.APIVersion, dp.Kind, dp.OwnerTeam, dp.Domain = rhizome.APIVersion, "DataProduct", "sales-team", "sales"
		b, _ := json.Marshal(dp)
		if err := st.Update(ctx, func(tx metastore.Tx) error {
			_, err := tx.Put(ctx, &rhizome.Object{Kind: rhizome.KindDataProduct, ID: dp.ID, Body: b, Labels: rhizome.Labels{Domain: "sales", OwnerTeam: "sales-team"}}, 0, "test", "a")
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	put(rhizome.DataProduct{ID: "dp.sales.orders", CurrentVersion: "1.0.0",
		SLA:            rhizome.SLA{Freshness: "1h", Availability: "99%", Accuracy: "90%"},
		QualityMetrics: map[string]float64{"freshness": 0.9}})
	clk.Set(t0.Add(-2 * time.Hour))
	put(rhizome.DataProduct{ID: "dp.sales.new", CurrentVersion: "1.0.0", SLA: rhizome.SLA{Freshness: "1h"},
		Pipeline: &rhizome.Pipeline{Models: []rhizome.PipelineModel{{Name: "m", SQL: "SELECT 1"}}}})
	put(rhizome.DataProduct{ID: "dp.sales.catalogonly", CurrentVersion: "1.0.0", SLA: rhizome.SLA{Freshness: "1h"}})
	put(rhizome.DataProduct{ID: "dp.sales.nosla", CurrentVersion: "1.0.0"})
	clk.Set(t0)

	// Hourly publishes over the last day, but the one of t0-12h is missing.
	var pubs []time.Time
	for h := 24; h >= 1; h-- {
		if h != 12 {
			pubs = append(pubs, t0.Add(-time.Duration(h)*time.Hour))
		}
	}
	reg := prometheus.NewRegistry()
	am := alert.New(alert.Options{Store: st, Clock: clk})
	t.Cleanup(func() { _ = am.Close(ctx) })
	tr := slo.New(slo.Options{Store: st, Publishes: history{"dp.sales.orders": pubs}, Clock: clk, Window: 24 * time.Hour, Alerts: am, Registry: reg})

	// Runs: 3 succeeded and 1 failed in the window; one failed before it,
	// one cancelled (not counted).
	err = st.Update(ctx, func(tx metastore.Tx) error {
		for i, r := range []struct {
			state rhizome.RunState
			ago   time.Duration
		}{{rhizome.RunSucceeded, 3 * time.Hour}, {rhizome.RunSucceeded, 2 * time.Hour}, {rhizome.RunSucceeded, time.Hour},
			{rhizome.RunFailed, 90 * time.Minute}, {rhizome.RunFailed, 30 * time.Hour}, {rhizome.RunCancelled, time.Hour}} {
			fin := t0.Add(-r.ago)
			if err := tx.PutRun(ctx, &rhizome.Run{ID: fmt.Sprintf("run_%d", i), ProductID: "dp.sales.orders", Trigger: rhizome.TriggerManual,
				State: r.state, QueuedAt: fin.Add(-time.Minute), FinishedAt: &fin}); err != nil {
				return err
			}
		}
		// Quality runs: 9 of 10 results passed in the window; a failure
		// before it does not count.
		for i, q := range []struct {
			ago     time.Duration
			results string
		}{{2 * time.Hour, `[{"passed":true},{"passed":true},{"passed":false}]`}, {time.Hour, `[{"passed":true},{"passed":true}]`},
			{30 * time.Minute, `[{"passed":true},{"passed":true}]`},
			{30 * time.Hour, `[{"passed":false}]`}} {
			if err := tx.InsertRecord(ctx, &metastore.Record{Collection: slo.CollectionQualityRun, ID: fmt.Sprintf("run_q%d", i), ProductID: "dp.sales.orders",
				State: "publish", At: t0.Add(-q.ago), Body: json.RawMessage(`{"results":` + q.results + `}`)}); err != nil {
				return err
			}
		}
		// The gate's summary form: 3 validity checks, 100% valid.
		if err := tx.InsertRecord(ctx, &metastore.Record{Collection: slo.CollectionQualityRun, ID: "run_qm", ProductID: "dp.sales.orders",
			State: "publish", At: t0.Add(-10 * time.Minute), Body: json.RawMessage(`{"checks":4,"passed":4,"metrics":{"accuracy":100,"accuracy_checks":3}}`)}); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Serving: 95 good and 1 failed request, part flushed, part in memory.
	for i := 0; i < 50; i++ {
		tr.Served("dp.sales.orders", true)
	}
	tr.Served("dp.sales.orders", false)
	if err := tr.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 45; i++ {
		tr.Served("dp.sales.orders", true)
	}
	return &fixture{ctx: ctx, store: st, clk: clk, tr: tr, alerts: am, reg: reg}
}

func objective(t *testing.T, r *slo.Report, name string) slo.Objective {
	t.Helper()
	for _, o := range r.Objectives {
		if o.SLO == name {
			return o
		}
	}
	t.Fatalf("no %s objective in %+v", name, r)
	return slo.Objective{}
}

func TestReportOnConstructedHistory(t *testing.T) {
	f := newFixture(t)
	r, err := f.tr.Product(f.ctx, "dp.sales.orders")
	if err != nil {
		t.Fatal(err)
	}
	if r.Window != "1d" || r.DataAge == nil || *r.DataAge != 3600 || r.Stale {
		t.Errorf("report = %+v", r)
	}
	fr := objective(t, r, slo.Freshness)
	// 23 fresh hours of 24: 95.8333%; budget 10%, 41.6667% of it used.
	if fr.Target != 90 || fr.Good != 23*3600 || fr.Total != 24*3600 || *fr.Attainment != 95.8333 ||
		fr.Budget != (slo.Budget{Total: 10, Consumed: 41.6667, Remaining: 58.3333}) || fr.Status != slo.StatusOK {
		t.Errorf("freshness = %+v (attainment %v)", fr, *fr.Attainment)
	}
	av := objective(t, r, slo.Availability)
	// Runs 3 of 4, serving 95 of 96: 98 of 100 against 99%.
	if av.Good != 98 || av.Total != 100 || *av.Attainment != 98 || av.Budget != (slo.Budget{Total: 1, Consumed: 200, Remaining: -100}) ||
		av.Status != slo.StatusBreached || av.Detail["runs"] != (slo.Counts{OK: 3, Failed: 1}) || av.Detail["serving"] != (slo.Counts{OK: 95, Failed: 1}) {
		t.Errorf("availability = %+v", av)
	}
	ac := objective(t, r, slo.Accuracy)
	// 9 of 10 checks against 90%: met, with no budget left.
	if ac.Good != 9 || ac.Total != 10 || *ac.Attainment != 90 || ac.Budget.Remaining != 0 || ac.Status != slo.StatusAtRisk {
		t.Errorf("accuracy = %+v", ac)
	}

	all, err := f.tr.All(f.ctx, slo.ListOptions{Team: "sales-team"})
	if err != nil || len(all) != 3 {
		t.Fatalf("All = %d reports, %v", len(all), err)
	}
	if none, _ := f.tr.All(f.ctx, slo.ListOptions{Domain: "marketing"}); len(none) != 0 {
		t.Errorf("domain filter: %d reports", len(none))
	}
}

func TestTickRaisesBreachStaleAndRecovers(t *testing.T) {
	f := newFixture(t)
	if err := f.tr.Tick(f.ctx); err != nil {
		t.Fatal(err)
	}
	firing, err := f.alerts.List(f.ctx, alert.Filter{State: alert.StateFiring})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, a := range firing {
		keys = append(keys, a.Key)
		if a.Team != "sales-team" {
			t.Errorf("alert %s team %q", a.Key, a.Team)
		}
	}
	got := strings.Join(sorted(keys), ",")
	if want := "slo_breach/dp.sales.orders/availability,stale/dp.sales.new"; got != want {
		t.Errorf("firing = %s, want %s", got, want)
	}
	evs, _ := f.tr.Events(f.ctx, "dp.sales.orders")
	if len(evs) != 1 || evs[0].SLO != slo.Availability || evs[0].State != slo.StatusBreached || evs[0].Attainment != 98 {
		t.Errorf("events = %+v", evs)
	}
	if v := gauge(t, f.reg, "rhizome_slo_attainment", "dp.sales.orders", "availability"); v != 0.98 {
		t.Errorf("attainment gauge = %v", v)
	}
	if v := gauge(t, f.reg, "rhizome_product_data_age_seconds", "dp.sales.orders", ""); v != 3600 {
		t.Errorf("age gauge = %v", v)
	}
	// A second tick changes nothing.
	if err := f.tr.Tick(f.ctx); err != nil {
		t.Fatal(err)
	}
	if evs, _ := f.tr.Events(f.ctx, "dp.sales.orders"); len(evs) != 1 {
		t.Errorf("events after a second tick = %+v", evs)
	}

	// 200 more good requests: 298 of 300 = 99.33%, recovered.
	for i := 0; i < 200; i++ {
		f.tr.Served("dp.sales.orders", true)
	}
	if err := f.tr.Tick(f.ctx); err != nil {
		t.Fatal(err)
	}
	evs, _ = f.tr.Events(f.ctx, "dp.sales.orders")
	if len(evs) != 2 || evs[1].State != "recovered" {
		t.Errorf("events = %+v", evs)
	}
	a, err := f.alerts.Get(f.ctx, "slo_breach/dp.sales.orders/availability")
	if err != nil || a.State != alert.StateResolved {
		t.Errorf("breach alert = %+v, %v", a, err)
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// gauge reads one gauge from the registry by its product and slo labels.
func gauge(t *testing.T, reg *prometheus.Registry, name, product, sloName string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["product"] == product && labels["slo"] == sloName {
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no %s{product=%q,slo=%q}", name, product, sloName)
	return 0
}
