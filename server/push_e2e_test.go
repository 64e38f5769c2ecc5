package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rhizome-mesh/rhizome"
)

const streamMesh = `apiVersion: rhizome/v1
kind: Domain
name: web
description: Site analytics
owner_teams: [web-team]
---
apiVersion: rhizome/v1
kind: Team
name: web-team
domain: web
members:
  - principal: bob@example.com
    roles: [technical_owner, developer]
---
apiVersion: rhizome/v1
kind: DataProduct
id: dp.web.clicks
name: Clicks
owner_team: web-team
domain: web
description: Every click, pushed by the site
current_version: 1.0.0
sensitivity_level: internal
input_ports:
  - name: events
    connector: stream
    config:
      flush_rows: 3
      flush_interval: 2s
      columns:
        - {name: id, type: bigint, required: true}
        - {name: page, type: varchar}
output_ports:
  - {name: clicks, type: table}
pipeline:
  mode: append
  models:
    - name: clicks
      sql: SELECT id, page FROM events
`

func TestPushE2E(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := t.TempDir()
	var out syncBuffer
	url, stop := startServe(t, dir, false, &out)
	defer stop()
	tok, _ := os.ReadFile(filepath.Join(dir, "admin.token"))
	admin := strings.TrimSpace(string(tok))
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	call := func(method, path, ct, body string, hdr map[string]string, v any) int {
		t.Helper()
		req, _ := http.NewRequest(method, url+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+admin)
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		for k, x := range hdr {
			req.Header.Set(k, x)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if v != nil {
			if err := json.Unmarshal(raw, v); err != nil {
				t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
			}
		}
		return resp.StatusCode
	}
	applyBody, _ := json.Marshal(rhizome.ApplyRequest{Files: []rhizome.SourceFile{{Name: "mesh.yaml", Content: streamMesh}}})
	var res rhizome.ApplyResult
	if code := call("POST", "/api/v1/apply", "application/json", string(applyBody), nil, &res); code != 200 || !res.Applied {
		t.Fatalf("apply: %d %+v", code, res)
	}
	const ep = "/api/v1/products/dp.web.clicks/ports/events/batches"
	var a map[string]any
	if code := call("POST", ep, "application/x-ndjson", "{\"id\":1,\"page\":\"/\"}\n{\"id\":2,\"page\":\"/a\"}\n", map[string]string{"Idempotency-Key": "b1"}, &a); code != 202 {
		t.Fatalf("push b1: %d %v", code, a)
	}
	if code := call("POST", ep, "application/x-ndjson", "{\"id\":1,\"page\":\"/\"}\n{\"id\":2,\"page\":\"/a\"}\n", map[string]string{"Idempotency-Key": "b1"}, &a); code != 200 || a["duplicate"] != true {
		t.Fatalf("re-push b1: %d %v", code, a)
	}
	if code := call("POST", ep+"?batch_id=b2", "application/x-ndjson", `{"id":3,"page":"/b"}`, nil, &a); code != 202 {
		t.Fatalf("push b2: %d %v", code, a)
	}
	wait := func(n int) []rhizome.Run {
		var runs struct{ Items []rhizome.Run }
		deadline := time.Now().Add(60 * time.Second)
		for {
			call("GET", "/api/v1/products/dp.web.clicks/runs?state=succeeded", "", "", nil, &runs)
			if len(runs.Items) >= n {
				return runs.Items
			}
			if time.Now().After(deadline) {
				var all struct{ Items []rhizome.Run }
				call("GET", "/api/v1/products/dp.web.clicks/runs", "", "", nil, &all)
				for _, r := range all.Items {
					var logs struct{ Items []rhizome.RunLog }
					call("GET", "/api/v1/runs/"+r.ID+"/logs", "", "", nil, &logs)
					t.Logf("run %+v logs %+v", r, logs.Items)
				}
				t.Fatalf("no %d succeeded runs; out: %s", n, out.String())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	runs := wait(1)
	if runs[0].Trigger != rhizome.TriggerPush || runs[0].RowsOut != 3 {
		t.Fatalf("run: %+v", runs[0])
	}
	// The interval: one row, flushed after 2s.
	if code := call("POST", ep+"?batch_id=b3", "application/x-ndjson", `{"id":4,"page":"/c"}`, nil, &a); code != 202 {
		t.Fatalf("push b3: %d %v", code, a)
	}
	// A committed batch re-pushed is a duplicate.
	if code := call("POST", ep+"?batch_id=b1", "application/x-ndjson", `{"id":9}`, nil, &a); code != 200 || a["duplicate"] != true {
		t.Fatalf("re-push committed b1: %d %v", code, a)
	}
	runs = wait(2)
	t.Logf("runs: %+v", runs)
	var snaps struct{ Items []map[string]any }
	call("GET", "/api/v1/products/dp.web.clicks/snapshots", "", "", nil, &snaps)
	t.Logf("snapshots: %v", snaps.Items)
	if len(snaps.Items) != 2 {
		t.Errorf("snapshots: %d, want 2 appends", len(snaps.Items))
	}
	// A manual run with nothing pushed publishes nothing and succeeds.
	var manual rhizome.Run
	if code := call("POST", "/api/v1/products/dp.web.clicks/runs", "", "", nil, &manual); code != 202 {
		t.Fatalf("manual run: %d", code)
	}
	for i := 0; i < 200 && !manual.State.Done(); i++ {
		time.Sleep(50 * time.Millisecond)
		call("GET", "/api/v1/runs/"+manual.ID, "", "", nil, &manual)
	}
	if manual.State != rhizome.RunSucceeded || manual.SnapshotID != 0 {
		t.Fatalf("manual run with nothing pushed: %+v", manual)
	}
	client.CloseIdleConnections()
}
