package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/audit"
	"github.com/rhizome-mesh/rhizome/catalog"
	"github.com/rhizome-mesh/rhizome/engine/duckdb"
	"github.com/rhizome-mesh/rhizome/identity"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/metastore/sqlite"
	"github.com/rhizome-mesh/rhizome/server"
	"github.com/rhizome-mesh/rhizome/table"
)

const auditMesh = `apiVersion: rhizome/v1
kind: Domain
name: sales
owner_teams: [sales-team]
---
apiVersion: rhizome/v1
kind: Team
name: sales-team
members:
  - {principal: bob@example.com, roles: [steward]}
  - {principal: carol@example.com, roles: [developer]}
---
apiVersion: rhizome/v1
kind: DataProduct
id: dp.sales.orders
name: Orders
owner_team: sales-team
domain: sales
current_version: 1.0.0
sensitivity_level: confidential
retention_period_days: 30
custom_properties: {retention_column: order_date, subject_key: customer_id}
input_ports:
  - {name: raw, connector: csv, config: {path: orders.csv}}
pipeline:
  mode: append
  models:
    - name: orders
      sql: SELECT order_id, customer_id, CAST(order_date AS DATE) AS order_date FROM raw
`

// sseEvent is one event read off a change feed.
type sseEvent struct {
	id   string
	data server.ChangeEvent
}

// follow opens a product's change feed with a real HTTP client and sends
// its snapshot events to the returned channel until the stream ends.
func follow(t *testing.T, url, token, path, lastID string) (<-chan sseEvent, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("changes: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	ch := make(chan sseEvent, 16)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		var kind string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if kind == "snapshot" {
					ch <- ev
				}
				ev, kind = sseEvent{}, ""
			case strings.HasPrefix(line, "id: "):
				ev.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				kind = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				_ = json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.data)
			}
		}
	}()
	return ch, cancel
}

func next(t *testing.T, ch <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("the change feed ended")
		}
		return ev
	case <-time.After(60 * time.Second):
		t.Fatal("no change event within a minute")
	}
	return sseEvent{}
}

// TestAuditRetentionChanges runs `rhizome up` and goes through the audit
// log, the change feed, retention and erasure over the REST API.
func TestAuditRetentionChanges(t *testing.T) {
	dir := t.TempDir()
	files := filepath.Join(dir, "files")
	if err := os.MkdirAll(files, 0o700); err != nil {
		t.Fatal(err)
	}
	writeCSV := func(rows string) {
		if err := os.WriteFile(filepath.Join(files, "orders.csv"), []byte("order_id,customer_id,order_date\n"+rows), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out syncBuffer
	go func() {
		done <- server.Serve(ctx, server.Config{DataDir: filepath.Join(dir, "data"), Listen: "127.0.0.1:0", FilesDir: files, Stdout: &out,
			Getenv: func(string) string { return "" }})
	}()
	var url string
	for i := 0; i < 2000 && url == ""; i++ {
		if raw, err := os.ReadFile(filepath.Join(dir, "data", server.InfoFile)); err == nil {
			var info server.Info
			if json.Unmarshal(raw, &info) == nil {
				url = info.URL
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if url == "" {
		cancel()
		t.Fatalf("server never became ready: %s", out.String())
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("shutdown: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Error("the server did not stop (an open change feed kept it?)")
			}
		}
	}
	defer stop()
	tok, _ := os.ReadFile(filepath.Join(dir, "data", "admin.token"))
	admin := strings.TrimSpace(string(tok))
	call := func(token, method, path string, body any, v any) int {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, url+path, rd)
		req.Header.Set("Authorization", "Bearer "+token)
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
	tokenFor := func(principal string) string {
		var created struct{ Secret string }
		if code := call(admin, "POST", "/api/v1/tokens", map[string]string{"principal": principal}, &created); code != 201 && code != 200 {
			t.Fatalf("token for %s: %d", principal, code)
		}
		return created.Secret
	}
	runAndWait := func(token string) rhizome.Run {
		var run rhizome.Run
		if code := call(token, "POST", "/api/v1/products/dp.sales.orders/runs", nil, &run); code != 202 {
			t.Fatalf("run: %d", code)
		}
		for i := 0; i < 600 && !run.State.Done(); i++ {
			time.Sleep(100 * time.Millisecond)
			call(admin, "GET", "/api/v1/runs/"+run.ID, nil, &run)
		}
		if run.State != rhizome.RunSucceeded {
			t.Fatalf("run ended %+v", run)
		}
		return run
	}

	if code := call(admin, "POST", "/api/v1/apply", rhizome.ApplyRequest{Files: []rhizome.SourceFile{{Name: "mesh.yaml", Content: auditMesh}}}, nil); code != 200 {
		t.Fatalf("apply: %d", code)
	}
	bob, carol := tokenFor("bob@example.com"), tokenFor("carol@example.com")

	// The change feed, read while runs publish.
	feed, closeFeed := follow(t, url, admin, "/api/v1/products/dp.sales.orders/changes", "")
	defer closeFeed()
	writeCSV("o1,c1,2020-01-01\no2,c2,2099-01-01\no3,c3,2099-01-02\n")
	runAndWait(admin)
	first := next(t, feed)
	if first.data.Product != "dp.sales.orders" || first.data.Version != "1.0.0" || first.data.Rows != 3 || first.data.RowsAdded != 3 ||
		first.data.Operation != "append" || first.id == "" || first.data.SnapshotID == 0 {
		t.Fatalf("first event: %+v", first)
	}
	writeCSV("o4,c1,2099-02-01\no5,c4,2020-02-01\n")
	runAndWait(carol)
	second := next(t, feed)
	if second.data.Rows != 5 || second.data.RowsAdded != 2 {
		t.Fatalf("second event: %+v", second)
	}
	// Resuming after the first event replays the second.
	resumed, closeResumed := follow(t, url, admin, "/api/v1/products/dp.sales.orders/changes", first.id)
	if ev := next(t, resumed); ev.id != second.id {
		t.Fatalf("resumed at %s, want %s", ev.id, second.id)
	}
	closeResumed()

	// Retention: the two rows of 2020 go, and every snapshot holding them.
	var res struct {
		RowsDeleted      int64 `json:"rows_deleted"`
		SnapshotsExpired int   `json:"snapshots_expired"`
	}
	if code := call(carol, "POST", "/api/v1/products/dp.sales.orders/retention/enforce", nil, &res); code != 200 || res.RowsDeleted != 2 || res.SnapshotsExpired != 2 {
		t.Fatalf("enforce: %d %+v", code, res)
	}
	if ev := next(t, feed); ev.data.Rows != 3 {
		t.Fatalf("retention's snapshot event: %+v", ev)
	}
	var snaps struct{ Items []json.RawMessage }
	if call(admin, "GET", "/api/v1/products/dp.sales.orders/snapshots", nil, &snaps); len(snaps.Items) != 1 {
		t.Fatalf("snapshots after retention: %d", len(snaps.Items))
	}

	// Erasure: a developer may not; the owner team's steward may.
	if code := call(carol, "POST", "/api/v1/erasure", map[string]any{"key": "customer_id", "value": "c1"}, nil); code != 403 {
		t.Fatalf("erasure by a developer: %d", code)
	}
	var rep struct {
		RowsDeleted int64 `json:"rows_deleted"`
		Products    []struct {
			ProductID string `json:"product_id"`
		}
	}
	if code := call(bob, "POST", "/api/v1/erasure", map[string]any{"key": "customer_id", "value": "c1", "reason": "ticket 42"}, &rep); code != 200 || rep.RowsDeleted != 1 || len(rep.Products) != 1 {
		t.Fatalf("erasure by the steward: %d %+v", code, rep)
	}
	next(t, feed)

	// The audit log: administrative actions by route, with their product.
	var page audit.Page
	if code := call(admin, "GET", "/api/v1/audit?product=dp.sales.orders&limit=1000", nil, &page); code != 200 {
		t.Fatalf("audit: %d", code)
	}
	actions := map[string]int{}
	for _, e := range page.Items {
		actions[e.Action+" "+e.Decision]++
	}
	for want, n := range map[string]int{
		"POST /api/v1/products/{id}/runs allow":              2,
		"POST /api/v1/products/{id}/retention/enforce allow": 1,
		"retention.enforce allow":                            1,
		"erasure allow":                                      1,
		"erasure deny":                                       1,
	} {
		if actions[want] != n {
			t.Errorf("%d entries %q, want %d; all: %v", actions[want], want, n, actions)
		}
	}
	var applies audit.Page
	call(admin, "GET", "/api/v1/audit?action=POST+/api/v1/apply", nil, &applies)
	if len(applies.Items) != 1 || applies.Items[0].Actor != "admin" && !strings.Contains(applies.Items[0].Actor, "admin") {
		t.Fatalf("apply entries: %+v", applies.Items)
	}
	// Others: their own entries, or a product they operate; not others'.
	var own audit.Page
	if code := call(carol, "GET", "/api/v1/audit", nil, &own); code != 200 || len(own.Items) == 0 {
		t.Fatalf("carol's own: %d %+v", code, own)
	}
	for _, e := range own.Items {
		if e.Actor != "carol@example.com" {
			t.Fatalf("carol sees %+v", e)
		}
	}
	if code := call(carol, "GET", "/api/v1/audit?principal=bob@example.com", nil, nil); code != 403 {
		t.Fatalf("carol reading bob's entries: %d", code)
	}
	if code := call(carol, "GET", "/api/v1/audit?product=dp.sales.orders", nil, nil); code != 200 {
		t.Fatalf("carol reading her product's entries: %d", code)
	}
	mallory := tokenFor("mallory@example.com")
	if code := call(mallory, "GET", "/api/v1/audit?product=dp.sales.orders", nil, nil); code != 403 {
		t.Fatalf("an outsider reading a product's entries: %d", code)
	}

	// Verify and export (admins only).
	var v audit.Verification
	if code := call(admin, "POST", "/api/v1/audit/verify", nil, &v); code != 200 || !v.OK || v.Entries < 8 {
		t.Fatalf("verify: %d %+v", code, v)
	}
	if code := call(carol, "POST", "/api/v1/audit/verify", nil, nil); code != 403 {
		t.Fatalf("verify by carol: %d", code)
	}
	req, _ := http.NewRequest("GET", url+"/api/v1/audit/export", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" || int64(len(lines)) < v.Entries {
		t.Fatalf("export: %d %s, %d lines", resp.StatusCode, resp.Header.Get("Content-Type"), len(lines))
	}
	var e1 audit.Entry
	if err := json.Unmarshal([]byte(lines[0]), &e1); err != nil || e1.Seq != 1 || e1.PrevHash != "" {
		t.Fatalf("first exported line: %v %+v", err, e1)
	}
	if strings.Contains(string(body), `"c1"`) {
		t.Fatal("the erased subject's key value is in the audit log")
	}

	// Shutting down ends the open feed.
	stop()
	select {
	case _, ok := <-feed:
		for ok {
			_, ok = <-feed
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the change feed outlived the server")
	}
}

// TestChangesFromAnotherProcess: a snapshot published by another process
// (another table catalog on the same database; nobody tells this
// server's broker) reaches the feed by polling; heartbeats keep it open.
func TestChangesFromAnotherProcess(t *testing.T) {
	defer func(p, h time.Duration) { server.ChangesPollInterval, server.ChangesHeartbeat = p, h }(server.ChangesPollInterval, server.ChangesHeartbeat)
	server.ChangesPollInterval, server.ChangesHeartbeat = 50*time.Millisecond, 50*time.Millisecond
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "m.db"), metastore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := catalog.New(store, catalog.Options{}).Apply(ctx, &rhizome.Principal{ID: "admin", Admin: true},
		rhizome.ApplyRequest{Files: []rhizome.SourceFile{{Name: "m.yaml", Content: auditMesh}}}); err != nil {
		t.Fatal(err)
	}
	open := func() *table.Catalog {
		c, err := table.Open(ctx, table.Options{DB: store.DB(), Dialect: "sqlite", Warehouse: "file://" + filepath.Join(dir, "lake")})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	srv := server.New(server.Deps{Store: store, Tables: open()})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	defer srv.CloseStreams()
	_, admin, err := identity.Minter{Store: store, Clock: rhizome.SystemClock{}}.Create(ctx, identity.TokenSpec{Principal: "admin", Admin: true})
	if err != nil {
		t.Fatal(err)
	}

	req, _ := http.NewRequest("GET", ts.URL+"/api/v1/products/dp.sales.orders/changes", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()

	// The other process publishes.
	eng, err := duckdb.Open(ctx, duckdb.Options{AllowedDirs: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	sess, err := eng.Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if _, err := sess.Exec(ctx, `CREATE TABLE t AS SELECT 'o' || i AS order_id, 'c1' AS customer_id, DATE '2026-01-01' AS order_date FROM range(7) r(i)`); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "part.parquet")
	if _, _, err := sess.ExportParquet(ctx, "t", f); err != nil {
		t.Fatal(err)
	}
	snap, err := open().Publish(ctx, table.PublishRequest{Ref: table.RefFor("dp.sales.orders", "1.0.0"), Files: []string{f}, Mode: table.Append})
	if err != nil {
		t.Fatal(err)
	}
	var sawEvent, sawBeat bool
	deadline := time.After(10 * time.Second)
	for !sawEvent || !sawBeat {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the feed ended")
			}
			if l == ": heartbeat" {
				sawBeat = true
			}
			if strings.HasPrefix(l, "data: ") {
				var ev server.ChangeEvent
				if err := json.Unmarshal([]byte(strings.TrimPrefix(l, "data: ")), &ev); err != nil || ev.SnapshotID != snap.ID || ev.Rows != 7 || ev.RowsAdded != 7 {
					t.Fatalf("event %s: %v", l, err)
				}
				sawEvent = true
			}
		case <-deadline:
			t.Fatalf("event %v, heartbeat %v within 10s", sawEvent, sawBeat)
		}
	}
}
