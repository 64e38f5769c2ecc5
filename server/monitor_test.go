package server_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/alert"
	"github.com/rhizome-mesh/rhizome/identity"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/metastore/sqlite"
	"github.com/rhizome-mesh/rhizome/server"
	"github.com/rhizome-mesh/rhizome/slo"
)

// TestMonitorRoutes drives the alert and SLO routes over a real store, a
// real alert manager and SLO tracker.
func TestMonitorRoutes(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, t.TempDir()+"/m.db", metastore.Options{Clock: testClock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	reg := prometheus.NewRegistry()
	am := alert.New(alert.Options{Store: store, Clock: testClock, Registry: reg})
	t.Cleanup(func() { _ = am.Close(ctx) })
	tr := slo.New(slo.Options{Store: store, Clock: testClock, Alerts: am, Registry: reg})
	srv := server.New(server.Deps{Store: store, Clock: testClock, Version: "test", Alerts: am, SLO: tr, Registry: reg})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	m := identity.Minter{Store: store, Clock: testClock}
	mk := func(p string, admin bool) string {
		_, secret, err := m.Create(ctx, identity.TokenSpec{Principal: p, Admin: admin})
		if err != nil {
			t.Fatal(err)
		}
		return secret
	}
	e := &env{t: t, srv: srv, ts: ts, admin: mk("admin", true), bob: mk("bob@example.com", false), alice: mk("alice@example.com", false)}
	var res rhizome.ApplyResult
	if got := e.do(e.admin, "POST", "/api/v1/apply", applyReq(false, file("mesh.yaml", meshYAML), file("feed.yaml", feedYAML)), nil, &res); got != 200 {
		t.Fatalf("apply: %d %+v", got, res)
	}

	am.Observe(ctx, alert.Condition{Key: "run_failed/dp.sales.orders", Kind: alert.KindRunFailed, ProductID: "dp.sales.orders",
		Severity: "critical", Summary: "run run_1 failed", Firing: true})
	if err := am.Tick(ctx); err != nil {
		t.Fatal(err)
	}

	var list struct{ Items []alert.Alert }
	if got := e.do(e.bob, "GET", "/api/v1/alerts?state=firing&team=sales-team", nil, nil, &list); got != 200 || len(list.Items) != 1 ||
		list.Items[0].Team != "sales-team" || list.Items[0].Key != "run_failed/dp.sales.orders" {
		t.Fatalf("list: %d %+v", got, list)
	}
	if got := e.do(e.bob, "GET", "/api/v1/alerts?state=resolved", nil, nil, &list); got != 200 || len(list.Items) != 0 {
		t.Fatalf("list resolved: %d %+v", got, list)
	}
	if got := e.do(e.bob, "GET", "/api/v1/alerts?state=bogus", nil, nil, nil); got != 422 {
		t.Errorf("bad state: %d", got)
	}
	const path = "/api/v1/alerts/run_failed%2Fdp.sales.orders"
	var a alert.Alert
	if got := e.do(e.bob, "GET", path, nil, nil, &a); got != 200 || a.State != alert.StateFiring {
		t.Fatalf("get: %d %+v", got, a)
	}
	if got := e.do(e.bob, "GET", "/api/v1/alerts/nope", nil, nil, nil); got != 404 {
		t.Errorf("get unknown: %d", got)
	}
	var er struct{ Error rhizome.Error }
	if got := e.do(e.alice, "POST", path+"/ack", nil, nil, &er); got != 403 || !strings.Contains(er.Error.Message, "sales-team") {
		t.Errorf("ack by a stranger: %d %+v", got, er)
	}
	if got := e.do(e.bob, "POST", path+"/ack", map[string]string{"note": "on it"}, nil, &a); got != 200 || a.State != alert.StateAcknowledged || a.AckBy != "bob@example.com" || a.AckNote != "on it" {
		t.Fatalf("ack: %d %+v", got, a)
	}
	var hist struct{ Items []alert.Event }
	if got := e.do(e.bob, "GET", path+"/history", nil, nil, &hist); got != 200 || len(hist.Items) != 2 ||
		hist.Items[0].Type != alert.EventFire || hist.Items[1].Type != alert.EventAck || hist.Items[1].By != "bob@example.com" {
		t.Fatalf("history: %d %+v", got, hist)
	}

	var reports struct{ Items []slo.Report }
	if got := e.do(e.bob, "GET", "/api/v1/slo?team=sales-team", nil, nil, &reports); got != 200 || len(reports.Items) != 2 || len(reports.Items[1].Objectives) != 3 {
		t.Fatalf("slo list: %d %+v", got, reports)
	}
	if got := e.do(e.bob, "GET", "/api/v1/slo?domain=marketing", nil, nil, &reports); got != 200 || len(reports.Items) != 0 {
		t.Fatalf("slo list of another domain: %d %+v", got, reports)
	}
	var rep struct {
		slo.Report
		Events []slo.Event `json:"events"`
	}
	if got := e.do(e.bob, "GET", "/api/v1/products/dp.sales.orders/slo", nil, nil, &rep); got != 200 || rep.Window != "30d" || rep.Events == nil {
		t.Fatalf("product slo: %d %+v", got, rep)
	}
	for _, o := range rep.Objectives {
		if o.Status != slo.StatusNoData || o.Attainment != nil {
			t.Errorf("%s without history: %+v", o.SLO, o)
		}
	}
	if got := e.do(e.bob, "GET", "/api/v1/products/dp.sales.nope/slo", nil, nil, nil); got != 404 {
		t.Errorf("slo of no product: %d", got)
	}

	// A product with a pipeline that never published, created more than
	// an hour ago, is stale; one without a pipeline is not.
	later := fixedClock{testClock.t.Add(2 * time.Hour)}
	tr2 := slo.New(slo.Options{Store: store, Clock: later, Alerts: am})
	if err := tr2.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.do(e.bob, "GET", "/api/v1/alerts?product=dp.sales.orders", nil, nil, &list); got != 200 || len(list.Items) != 1 {
		t.Fatalf("after the stale check: %+v", list)
	}
	if got := e.do(e.bob, "GET", "/api/v1/alerts?product=dp.sales.feed&state=firing", nil, nil, &list); got != 200 || len(list.Items) != 1 || list.Items[0].Key != "stale/dp.sales.feed" {
		t.Fatalf("after the stale check: %+v", list)
	}
	if err := am.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`rhizome_alerts_firing{kind="run_failed",team="sales-team"} 1`, `rhizome_alerts_firing{kind="stale",team="sales-team"} 1`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

const feedYAML = `apiVersion: rhizome/v1
kind: DataProduct
id: dp.sales.feed
name: Feed
owner_team: sales-team
domain: sales
current_version: 1.0.0
sensitivity_level: internal
sla: {freshness: 1 hour}
input_ports:
  - {name: raw, connector: csv, config: {path: feed.csv}}
pipeline:
  models:
    - name: feed
      sql: SELECT * FROM raw
`
