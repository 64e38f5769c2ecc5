package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/server"
)

// TestRunFailedAlertEndToEnd runs `rhizome up` (Serve) with the team's
// channel pointing at a real webhook receiver: a failed run is notified,
// the next successful run sends the resolved notice, and the SLO tick
// exports the data age.
func TestRunFailedAlertEndToEnd(t *testing.T) {
	var (
		mu     sync.Mutex
		bodies []map[string]any
	)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		_ = json.NewDecoder(r.Body).Decode(&m)
		mu.Lock()
		bodies = append(bodies, m)
		mu.Unlock()
	}))
	defer rcv.Close()
	received := func(status string) map[string]any {
		mu.Lock()
		defer mu.Unlock()
		for _, b := range bodies {
			if b["status"] == status {
				return b
			}
		}
		return nil
	}

	files := t.TempDir()
	if err := os.WriteFile(filepath.Join(files, "orders.csv"), []byte("order_id,amount\n1,10\n2,20\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"RHIZOME_ALERT_GROUP_WAIT": "100ms", "RHIZOME_ALERT_TICK": "50ms", "RHIZOME_SLO_TICK": "100ms"}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- server.Serve(ctx, server.Config{DataDir: dir, Listen: "127.0.0.1:0", FilesDir: files, Workers: 1,
			Getenv: func(k string) string { return env[k] }})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	var url string
	for i := 0; i < 400 && url == ""; i++ {
		if raw, err := os.ReadFile(filepath.Join(dir, server.InfoFile)); err == nil {
			var info server.Info
			_ = json.Unmarshal(raw, &info)
			url = info.URL
		}
		time.Sleep(25 * time.Millisecond)
	}
	if url == "" {
		t.Fatal("server not ready")
	}
	token, _ := os.ReadFile(filepath.Join(dir, "admin.token"))
	call := func(method, path string, body io.Reader, v any) int {
		req, _ := http.NewRequest(method, url+path, body)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		if body != nil {
			req.Header.Set("Content-Type", "application/yaml")
		}
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
	mesh := func(sql string) string {
		return "apiVersion: rhizome/v1\nkind: Domain\nname: sales\nowner_teams: [t]\n---\napiVersion: rhizome/v1\nkind: Team\nname: t\nmembers: [{principal: a@example.com}]\n" +
			"communication_channel: " + rcv.URL + "\n---\napiVersion: rhizome/v1\nkind: DataProduct\nid: dp.sales.a\nname: P\nowner_team: t\ndomain: sales\ncurrent_version: 1.0.0\n" +
			"sensitivity_level: internal\nsla: {freshness: 1 hour, availability: 99%}\ninput_ports: [{name: raw, connector: csv, config: {path: orders.csv}}]\n" +
			"pipeline: {models: [{name: out, sql: \"" + sql + "\"}]}\n"
	}
	runOnce := func(want rhizome.RunState) {
		t.Helper()
		var run rhizome.Run
		if code := call("POST", "/api/v1/products/dp.sales.a/runs", nil, &run); code != 202 {
			t.Fatalf("run: %d", code)
		}
		id := run.ID
		for i := 0; i < 600 && !run.State.Done(); i++ {
			time.Sleep(50 * time.Millisecond)
			call("GET", "/api/v1/runs/"+id, nil, &run)
		}
		if run.State != want {
			t.Fatalf("run %s: %+v", id, run)
		}
	}
	waitFor := func(status string) map[string]any {
		t.Helper()
		for i := 0; i < 200; i++ {
			if b := received(status); b != nil {
				return b
			}
			time.Sleep(25 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("no %s notice; got %v", status, bodies)
		return nil
	}

	if code := call("POST", "/api/v1/apply", strings.NewReader(mesh("SELECT * FROM nowhere")), nil); code != 200 {
		t.Fatalf("apply: %d", code)
	}
	runOnce(rhizome.RunFailed)
	// The team hears of the failed run and of the availability breach it
	// caused (one notice when both fall in the group wait).
	firingKeys := func() map[string]string {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]string{}
		for _, b := range bodies {
			if b["status"] != "firing" || b["team"] != "t" {
				continue
			}
			for _, a := range b["alerts"].([]any) {
				a := a.(map[string]any)
				out[a["key"].(string)] = a["summary"].(string)
			}
		}
		return out
	}
	for i := 0; i < 200 && len(firingKeys()) < 2; i++ {
		time.Sleep(25 * time.Millisecond)
	}
	keys := firingKeys()
	if _, ok := keys["slo_breach/dp.sales.a/availability"]; !ok || !strings.Contains(keys["run_failed/dp.sales.a"], "table nowhere is not an input") {
		t.Fatalf("firing notices: %v", keys)
	}

	if code := call("POST", "/api/v1/apply", strings.NewReader(mesh("SELECT * FROM raw")), nil); code != 200 {
		t.Fatalf("apply: %d", code)
	}
	runOnce(rhizome.RunSucceeded)
	b := waitFor("resolved")
	if alerts, _ := b["alerts"].([]any); len(alerts) != 1 || alerts[0].(map[string]any)["key"] != "run_failed/dp.sales.a" {
		t.Fatalf("resolved notice: %v", b)
	}

	// The SLO tick exports the data age and the availability (1 of 2 runs).
	var metrics string
	for i := 0; i < 100; i++ {
		resp, err := http.Get(url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		metrics = string(raw)
		if strings.Contains(metrics, `rhizome_slo_attainment{product="dp.sales.a",slo="availability"} 0.5`) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, want := range []string{`rhizome_slo_attainment{product="dp.sales.a",slo="availability"} 0.5`, `rhizome_product_data_age_seconds{product="dp.sales.a"}`,
		`rhizome_alert_notifications_total{channel_type="webhook",outcome="delivered"} `} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	var hist struct{ Items []map[string]any }
	if code := call("GET", "/api/v1/alerts/run_failed%2Fdp.sales.a/history", nil, &hist); code != 200 || len(hist.Items) != 4 {
		t.Errorf("history: %d %v", code, hist.Items)
	}
}
