package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"go.uber.org/goleak"

	"github.com/rhizome-mesh/rhizome"
	_ "github.com/rhizome-mesh/rhizome/connector/stream" // until connector/all imports it
	"github.com/rhizome-mesh/rhizome/identity"
	"github.com/rhizome-mesh/rhizome/jobs"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/metastore/sqlite"
	"github.com/rhizome-mesh/rhizome/stream"
)

const pushMesh = `apiVersion: rhizome/v1
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
    config: {flush_rows: 3, flush_interval: 1h}
  - name: pages
    connector: csv
    config: {path: pages.csv}
output_ports:
  - {name: clicks, type: table}
`

type pushClock struct{ t time.Time }

func (c pushClock) Now() time.Time { return c.t }

// enqueued records the flusher's asks.
type enqueued struct {
	mu   sync.Mutex
	keys []string
}

func (e *enqueued) enqueue(_ context.Context, productID, key string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.keys = append(e.keys, productID+" "+key)
	return nil
}

func (e *enqueued) get() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.keys...)
}

func TestPush(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	clock := pushClock{time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	store, err := sqlite.Open(ctx, t.TempDir()+"/m.db", metastore.Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	s := New(Deps{Store: store, Clock: clock})
	admin := &rhizome.Principal{ID: "admin", Admin: true}
	if res, err := s.catalog.Apply(ctx, admin, rhizome.ApplyRequest{Files: []rhizome.SourceFile{{Name: "mesh.yaml", Content: pushMesh}}}); err != nil || !res.Applied {
		t.Fatalf("apply: %+v, %v", res, err)
	}
	m := identity.Minter{Store: store, Clock: clock}
	token := func(p string) string {
		_, secret, err := m.Create(ctx, identity.TokenSpec{Principal: p})
		if err != nil {
			t.Fatal(err)
		}
		return secret
	}
	bob, mallory := token("bob@example.com"), token("mallory@example.com")

	spool, err := stream.Open(t.TempDir(), clock)
	if err != nil {
		t.Fatal(err)
	}
	var runs enqueued
	flusher := stream.NewFlusher(spool, runs.enqueue, clock)
	flusher.SetPorts(map[string]stream.PortConfig{"dp.web.clicks": {Port: "events", Rows: 3, Interval: time.Hour}})
	flusher.Start(ctx)
	defer flusher.Stop()

	r := chi.NewRouter()
	r.With(s.authenticate).Post("/api/v1/products/{id}/ports/{port}/batches", s.pushTo(spool, flusher))
	r.With(s.authenticate).Post("/off/products/{id}/ports/{port}/batches", s.pushTo(nil, nil))
	ts := httptest.NewServer(r)
	defer ts.Close()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()

	type answer struct {
		pushResponse
		Error *rhizome.Error `json:"error"`
	}
	push := func(tok, path, ct, key, body string) (int, answer) {
		t.Helper()
		req, _ := http.NewRequest("POST", ts.URL+path, strings.NewReader(body))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var a answer
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, raw)
		}
		return resp.StatusCode, a
	}
	const events = "/api/v1/products/dp.web.clicks/ports/events/batches"
	const nd = "application/x-ndjson"
	two := "{\"id\":1}\n{\"id\":2}\n"

	for _, tc := range []struct {
		name, tok, path, ct, key, body string
		status                         int
		want                           string
	}{
		{"no token", "", events, nd, "b0", two, 401, ""},
		{"no batch id", bob, events, nd, "", two, 422, "needs a batch id"},
		{"ids differ", bob, events + "?batch_id=x", nd, "y", two, 422, "differ"},
		{"not ndjson", bob, events, "text/csv", "b0", "id\n1\n", 422, "is not NDJSON"},
		{"not an owner", mallory, events, nd, "b0", two, 403, ""},
		{"no product", bob, "/api/v1/products/dp.nope/ports/events/batches", nd, "b0", two, 404, ""},
		{"no port", bob, "/api/v1/products/dp.web.clicks/ports/event/batches", nd, "b0", two, 422, "no input port event"},
		{"csv port", bob, "/api/v1/products/dp.web.clicks/ports/pages/batches", nd, "b0", two, 422, "reads connector csv"},
		{"bad line", bob, events, nd, "b0", "{\"id\":1}\n{\"id\":\n", 422, "line 2 is not a JSON object"},
		{"bad batch id", bob, events, nd, "../b0", two, 422, "not a valid name"},
		{"off", bob, "/off/products/dp.web.clicks/ports/events/batches", nd, "b0", two, 503, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, a := push(tc.tok, tc.path, tc.ct, tc.key, tc.body)
			if got != tc.status || a.Error == nil || !strings.Contains(a.Error.Message, tc.want) {
				t.Errorf("%d %+v, want %d with %q", got, a.Error, tc.status, tc.want)
			}
			if tc.status == 422 && tc.name != "bad line" && a.Error.Hint == "" {
				t.Errorf("no hint: %+v", a.Error)
			}
		})
	}

	// Accepted once; the retry (by header or query) is a duplicate.
	got, a := push(bob, events, nd, "b1", two)
	if got != 202 || a.BatchID != "b1" || a.Rows != 2 || a.Bytes != int64(len(two)) || a.Duplicate {
		t.Fatalf("push: %d %+v", got, a)
	}
	got, a = push(bob, events, "", "b1", two)
	if got != 200 || !a.Duplicate || a.Rows != 2 {
		t.Fatalf("retry: %d %+v", got, a)
	}
	got, a = push(bob, events+"?batch_id=b1", nd, "", two)
	if got != 200 || !a.Duplicate {
		t.Fatalf("retry by query: %d %+v", got, a)
	}
	if keys := runs.get(); len(keys) != 0 {
		t.Fatalf("2 of 3 rows queued a run: %v", keys)
	}
	// The third row reaches flush_rows: the flusher queues a run at once.
	if got, _ := push(bob, events+"?batch_id=b2", nd, "", `{"id":3}`); got != 202 {
		t.Fatalf("push b2: %d", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(runs.get()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if keys := runs.get(); len(keys) == 0 || keys[0] != "dp.web.clicks push:dp.web.clicks:b1" {
		t.Fatalf("queued %v", keys)
	}
	files, rows, _, err := spool.Pending("dp.web.clicks", "events")
	if err != nil || len(files) != 2 || rows != 3 {
		t.Errorf("pending %v, %d rows, %v", files, rows, err)
	}

	// Over MaxBodyBytes: 413, nothing spooled.
	big := strings.Repeat("{\"pad\":\""+strings.Repeat("x", 1000)+"\"}\n", MaxBodyBytes/1000+16)
	if got, a := push(bob, events, nd, "big", big); got != 413 || a.Error == nil {
		t.Errorf("too large: %d %+v", got, a)
	}
	if files, _, _, _ := spool.Pending("dp.web.clicks", "events"); len(files) != 2 {
		t.Errorf("pending after a refused batch: %v", files)
	}

	flusher.Stop()
	ts.Close()
	client.CloseIdleConnections()
	store.Close()
}

// TestEnqueuePush: asks for the same pending set are one run; once that
// run ended without taking the batches, the next ask is a new run.
func TestEnqueuePush(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, t.TempDir()+"/m.db", metastore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	sched, err := jobs.New(ctx, jobs.Options{Store: store, Dialect: jobs.DialectSQLite, DB: store.DB()})
	if err != nil {
		t.Fatal(err)
	}
	defer sched.Stop(ctx)
	runs := func() []rhizome.Run {
		t.Helper()
		rs, _, err := store.ListRuns(ctx, metastore.RunListOptions{ProductID: "dp.web.clicks"})
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	for range 3 {
		if err := enqueuePush(ctx, sched, "dp.web.clicks", "push:dp.web.clicks:b1"); err != nil {
			t.Fatal(err)
		}
	}
	rs := runs()
	if len(rs) != 1 || rs[0].Trigger != rhizome.TriggerPush || rs[0].State != rhizome.RunQueued {
		t.Fatalf("runs = %+v, want one queued push run", rs)
	}
	if err := sched.Cancel(ctx, rs[0].ID); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := enqueuePush(ctx, sched, "dp.web.clicks", "push:dp.web.clicks:b1"); err != nil {
			t.Fatal(err)
		}
	}
	queued := 0
	for _, r := range runs() {
		if r.State == rhizome.RunQueued {
			queued++
		}
	}
	if n := len(runs()); n != 2 || queued != 1 {
		t.Errorf("after a cancel: %d runs, %d queued; want 2 and 1", n, queued)
	}
}
