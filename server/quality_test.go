package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rhizome-mesh/rhizome"
)

// TestQualityRoutes: the demo's runs pass through the quality gate (every
// demo product publishes); the report shows each check's latest result and
// the quality metrics; owners run checks on demand, outsiders may not.
func TestQualityRoutes(t *testing.T) {
	dir := t.TempDir()
	var out syncBuffer
	url, stop := startServe(t, dir, true, &out)
	defer stop()
	token, _ := os.ReadFile(filepath.Join(dir, "admin.token"))
	admin := strings.TrimSpace(string(token))
	call := func(tok, method, path string, body any, v any) int {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, url+path, rd)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if v != nil {
			_ = json.NewDecoder(resp.Body).Decode(v)
		}
		return resp.StatusCode
	}

	// Before any run: an empty report, and no snapshot to check.
	var rep struct {
		ProductID     string `json:"product_id"`
		Version       string
		LastGate      string `json:"last_gate"`
		LastGateRunID string `json:"last_gate_run_id"`
		LastRun       *struct {
			RunID    string `json:"run_id"`
			Gate     string
			Checks   int
			OnDemand bool `json:"on_demand"`
		} `json:"last_run"`
		Checks []struct {
			Name, Source, State, Threshold string
			Passed                         bool
			History                        []struct{ Metric float64 }
		}
		QualityMetrics []struct {
			Name   string
			Value  *float64
			Target *float64
		} `json:"quality_metrics"`
		SLA []struct {
			Name, Target string
			Met          *bool
		}
	}

	// Wait until every demo product has run: none may be quarantined.
	deadline := time.Now().Add(120 * time.Second)
	for {
		var all struct{ Items []rhizome.Run }
		call(admin, "GET", "/api/v1/runs?limit=100", nil, &all)
		done, failed := 0, []string{}
		for _, r := range all.Items {
			if r.State == rhizome.RunSucceeded {
				done++
			}
			if r.State == rhizome.RunFailed {
				failed = append(failed, r.ProductID+": "+r.Error)
			}
		}
		if len(failed) > 0 {
			t.Fatalf("demo runs failed:\n%s", strings.Join(failed, "\n"))
		}
		var cust struct{ Items []rhizome.Run }
		call(admin, "GET", "/api/v1/products/dp.customer.360/runs?state=succeeded", nil, &cust)
		if len(cust.Items) > 0 && done >= 9 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo did not finish: %+v", all.Items)
		}
		time.Sleep(200 * time.Millisecond)
	}

	if code := call(admin, "GET", "/api/v1/products/dp.sales.orders/quality", nil, &rep); code != 200 {
		t.Fatalf("report: %d", code)
	}
	if rep.ProductID != "dp.sales.orders" || rep.Version != "3.2.0" || rep.LastRun == nil || rep.LastRun.Gate == "quarantine" || len(rep.Checks) < 5 {
		t.Fatalf("report %+v", rep)
	}
	sources := map[string]bool{}
	for _, c := range rep.Checks {
		sources[c.Source] = true
		if len(c.History) == 0 && c.State != "error" {
			t.Fatalf("check without history: %+v", c)
		}
	}
	if !sources["contract"] || !sources["infrastructure"] {
		t.Fatalf("sources %v", sources)
	}
	if len(rep.QualityMetrics) != 3 || rep.QualityMetrics[0].Name != "completeness" || rep.QualityMetrics[0].Value == nil ||
		rep.QualityMetrics[0].Target == nil || *rep.QualityMetrics[0].Target != 0.99 || rep.QualityMetrics[2].Value == nil {
		t.Fatalf("quality metrics %+v", rep.QualityMetrics)
	}
	if len(rep.SLA) == 0 {
		t.Fatalf("sla %+v", rep.SLA)
	}
	if code := call(admin, "GET", "/api/v1/products/dp.sales.orders/quality?history=0", nil, nil); code != 422 {
		t.Fatalf("bad history: %d", code)
	}
	if code := call(admin, "GET", "/api/v1/products/dp.nope.x/quality", nil, nil); code != 404 {
		t.Fatalf("unknown product: %d", code)
	}
	if code := call(admin, "GET", "/api/v1/products/dp.sales.orders/quality?version=9.9.9", nil, nil); code != 404 {
		t.Fatalf("unknown version: %d", code)
	}

	// On demand: owners only.
	var created struct{ Secret string }
	call(admin, "POST", "/api/v1/tokens", map[string]string{"principal": "mallory@example.com"}, &created)
	if code := call(created.Secret, "POST", "/api/v1/products/dp.sales.orders/checks", nil, nil); code != 403 {
		t.Fatalf("outsider running checks: %d", code)
	}
	if code := call(created.Secret, "GET", "/api/v1/products/dp.sales.orders/quality", nil, nil); code != 200 {
		t.Fatalf("outsider reading the report: %d", code)
	}
	var cr struct {
		RunID  string `json:"run_id"`
		Gate   string
		Report struct {
			Results []json.RawMessage
		}
	}
	if code := call(admin, "POST", "/api/v1/products/dp.sales.orders/checks", map[string]string{}, &cr); code != 200 ||
		!strings.HasPrefix(cr.RunID, "check-") || cr.Gate == "quarantine" || len(cr.Report.Results) != len(rep.Checks) {
		t.Fatalf("checks: %d %+v", code, cr)
	}
	call(admin, "GET", "/api/v1/products/dp.sales.orders/quality", nil, &rep)
	if rep.LastRun == nil || rep.LastRun.RunID != cr.RunID || !rep.LastRun.OnDemand || !strings.HasPrefix(rep.LastGateRunID, "run_") || rep.LastGate == "" {
		t.Fatalf("after the check: %+v", rep.LastRun)
	}

	// A failing warn check samples rows: they follow the caller's access
	// decision (access.ViaSample): the owner sees them, mallory (in no
	// team) may not read the confidential product and sees none.
	var obj struct{ Manifest map[string]any }
	call(admin, "GET", "/api/v1/products/dp.sales.orders", nil, &obj)
	obj.Manifest["quality"] = map[string]any{"accepted_values": map[string]any{"column": "status", "values": []string{"none"}, "severity": "warn"}}
	if code := call(admin, "PUT", "/api/v1/products/dp.sales.orders", obj.Manifest, nil); code != 200 {
		t.Fatalf("put: %d", code)
	}
	if code := call(admin, "POST", "/api/v1/products/dp.sales.orders/checks", nil, &cr); code != 200 || cr.Gate != "publish-with-warnings" {
		t.Fatalf("checks with a warning: %d %+v", code, cr)
	}
	samples := func(tok string) []map[string]any {
		var r struct {
			Checks []struct {
				Name    string
				Samples []map[string]any
			}
		}
		call(tok, "GET", "/api/v1/products/dp.sales.orders/quality", nil, &r)
		for _, c := range r.Checks {
			if c.Name == "accepted_values.status" {
				return c.Samples
			}
		}
		return nil
	}
	own, other := samples(admin), samples(created.Secret)
	if len(own) == 0 || len(other) != 0 || own[0]["status"] == "***" {
		t.Fatalf("samples: owner %v, other %v", own, other)
	}
}
