package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/internal/testenv"
	"github.com/rhizome-mesh/rhizome/server"
)

// TestDemoPipelines starts `up --demo` and follows the demo's pipelines
// through the REST API: every product gets data, downstream products run
// when their inputs publish, and runs, logs, snapshots and lineage are all
// served.
func TestDemoPipelines(t *testing.T) {
	dir := t.TempDir()
	var out syncBuffer
	url, stop := startServe(t, dir, true, &out)
	defer stop()
	token, _ := os.ReadFile(filepath.Join(dir, "admin.token"))
	call := func(tok, method, path string, body any, v any) int {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, url+path, rd)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(tok))
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
	admin := string(token)

	// Wait for the product at the end of the chain.
	var runs struct{ Items []rhizome.Run }
	deadline := time.Now().Add(90 * time.Second)
	for {
		call(admin, "GET", "/api/v1/products/dp.customer.360/runs?state=succeeded", nil, &runs)
		if len(runs.Items) > 0 {
			break
		}
		if time.Now().After(deadline) {
			var all struct{ Items []rhizome.Run }
			call(admin, "GET", "/api/v1/runs", nil, &all)
			t.Fatalf("dp.customer.360 never succeeded; runs: %+v", all.Items)
		}
		time.Sleep(200 * time.Millisecond)
	}
	run := runs.Items[0]
	if run.RowsOut != 5000 || run.SnapshotID == 0 || run.Trigger != rhizome.TriggerUpstream {
		t.Fatalf("dp.customer.360 run: %+v", run)
	}
	var snaps struct {
		Version string
		Items   []json.RawMessage
	}
	if code := call(admin, "GET", "/api/v1/products/dp.customer.360/snapshots", nil, &snaps); code != 200 || snaps.Version != "2.1.0" || len(snaps.Items) == 0 {
		t.Fatalf("snapshots: %d %+v", code, snaps)
	}
	var logs struct{ Items []rhizome.RunLog }
	call(admin, "GET", "/api/v1/runs/"+run.ID+"/logs", nil, &logs)
	if len(logs.Items) == 0 || !strings.Contains(logs.Items[len(logs.Items)-1].Msg, "succeeded") {
		t.Fatalf("logs: %+v", logs.Items)
	}
	var lin struct{ Items []map[string]any }
	call(admin, "GET", "/api/v1/runs/"+run.ID+"/lineage", nil, &lin)
	if n := len(lin.Items); n < 2 || lin.Items[0]["eventType"] != "START" || lin.Items[n-1]["eventType"] != "COMPLETE" {
		t.Fatalf("lineage: %+v", lin.Items)
	}

	// A manual run by an owner; an outsider may not start one.
	var created struct{ Secret string }
	call(admin, "POST", "/api/v1/tokens", map[string]string{"principal": "mallory@example.com"}, &created)
	if code := call(created.Secret, "POST", "/api/v1/products/dp.sales.product-catalog/runs", nil, nil); code != 403 {
		t.Fatalf("outsider starting a run: %d", code)
	}
	var manual rhizome.Run
	if code := call(admin, "POST", "/api/v1/products/dp.sales.product-catalog/runs", nil, &manual); code != 202 || manual.State != rhizome.RunQueued {
		t.Fatalf("manual run: %d %+v", code, manual)
	}
	for i := 0; i < 300 && !manual.State.Done(); i++ {
		time.Sleep(100 * time.Millisecond)
		call(admin, "GET", "/api/v1/runs/"+manual.ID, nil, &manual)
	}
	if manual.State != rhizome.RunSucceeded || manual.RowsOut != 120 {
		t.Fatalf("manual run ended %+v", manual)
	}
	var conns struct{ Items []struct{ Name string } }
	call(admin, "GET", "/api/v1/connectors", nil, &conns)
	names := ""
	for _, c := range conns.Items {
		names += c.Name + " "
	}
	for _, want := range []string{"csv", "http", "parquet", "postgres", "product"} {
		if !strings.Contains(names, want) {
			t.Fatalf("connectors %q lack %s", names, want)
		}
	}
}

// TestWorkerOnPostgres: an API process and a worker-only process share one
// Postgres metastore and job queue; runs queued through the API complete.
func TestWorkerOnPostgres(t *testing.T) {
	dsn := testenv.NewDatabase(t)
	wh := "file://" + t.TempDir()
	files := t.TempDir()
	if err := os.WriteFile(filepath.Join(files, "orders.csv"), []byte("order_id,amount\n1,10\n2,20\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The worker first: it also runs the migrations.
	wctx, wcancel := context.WithCancel(context.Background())
	var wout syncBuffer
	wdone := make(chan error, 1)
	go func() {
		wdone <- server.Serve(wctx, server.Config{DataDir: t.TempDir(), MetastoreURL: dsn, WorkerOnly: true, Warehouse: wh, FilesDir: files, Stdout: &wout})
	}()
	for i := 0; i < 400 && !strings.Contains(wout.String(), "worker ready"); i++ {
		time.Sleep(25 * time.Millisecond)
	}
	if !strings.Contains(wout.String(), "worker ready") {
		t.Fatalf("worker did not start: %q", wout.String())
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- server.Serve(ctx, server.Config{DataDir: dir, Listen: "127.0.0.1:0", MetastoreURL: dsn, Warehouse: wh, FilesDir: files, Workers: 1})
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
		t.Fatal("API process not ready")
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
	mesh := "apiVersion: rhizome/v1\nkind: Domain\nname: sales\nowner_teams: [t]\n---\napiVersion: rhizome/v1\nkind: Team\nname: t\nmembers: [{principal: a@example.com}]\n"
	for _, p := range []string{"a", "b", "c", "d"} {
		mesh += "---\napiVersion: rhizome/v1\nkind: DataProduct\nid: dp.sales." + p + "\nname: P\nowner_team: t\ndomain: sales\ncurrent_version: 1.0.0\nsensitivity_level: internal\ninput_ports: [{name: raw, connector: csv, config: {path: orders.csv}}]\npipeline: {models: [{name: out, sql: SELECT * FROM raw}]}\n"
	}
	if code := call("POST", "/api/v1/apply", strings.NewReader(mesh), nil); code != 200 {
		t.Fatalf("apply: %d", code)
	}
	var ids []string
	for _, p := range []string{"a", "b", "c", "d"} {
		var run rhizome.Run
		if code := call("POST", "/api/v1/products/dp.sales."+p+"/runs", nil, &run); code != 202 {
			t.Fatalf("run %s: %d", p, code)
		}
		ids = append(ids, run.ID)
	}
	for _, id := range ids {
		var run rhizome.Run
		for i := 0; i < 600 && !run.State.Done(); i++ {
			call("GET", "/api/v1/runs/"+id, nil, &run)
			time.Sleep(50 * time.Millisecond)
		}
		if run.State != rhizome.RunSucceeded || run.RowsOut != 2 {
			t.Fatalf("run %s: %+v", id, run)
		}
	}
	// The data a worker published is served by the API process, from the
	// same Postgres catalog; quality results, the read's audit entries and
	// the chain live there too.
	var data struct {
		Rows  []map[string]any `json:"rows"`
		Count int              `json:"count"`
	}
	if code := call("GET", "/api/v1/products/dp.sales.a/data?sort=order_id", nil, &data); code != 200 || data.Count != 2 || len(data.Rows) != 2 || fmt.Sprint(data.Rows[1]["amount"]) != "20" {
		t.Errorf("data of dp.sales.a on Postgres: %d %+v", code, data)
	}
	var report struct {
		LastRun *struct{ Gate string } `json:"last_run"`
	}
	if code := call("GET", "/api/v1/products/dp.sales.a/quality", nil, &report); code != 200 || report.LastRun == nil || report.LastRun.Gate != "publish" {
		t.Errorf("quality report on Postgres: %d %+v", code, report)
	}
	var verified struct {
		OK      bool  `json:"ok"`
		Entries int64 `json:"entries"`
	}
	if code := call("POST", "/api/v1/audit/verify", nil, &verified); code != 200 || !verified.OK || verified.Entries < 2 {
		t.Errorf("audit chain on Postgres: %d %+v", code, verified)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("API process: %v", err)
	}
	wcancel()
	if err := <-wdone; err != nil {
		t.Fatalf("worker: %v", err)
	}
}
