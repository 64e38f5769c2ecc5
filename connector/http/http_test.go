package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/connector"
	_ "github.com/rhizome-mesh/rhizome/connector/http"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const token = "s3cr3t-t0ken"

// api is a small paginated JSON API with the failures the connector must
// handle. hits counts requests per path.
type api struct {
	hits   map[string]*atomic.Int64
	flaky  atomic.Int64
	before func(r *http.Request) // called first, when set
}

func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.hits[r.URL.Path].Add(1)
	if a.before != nil {
		a.before(r)
	}
	if r.Header.Get("Authorization") != "Bearer "+token {
		http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
		return
	}
	item := func(i int) map[string]any { return map[string]any{"id": i, "name": fmt.Sprintf("c%d", i)} }
	switch r.URL.Path {
	case "/paged": // 5 items, by page number
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		size, _ := strconv.Atoi(r.URL.Query().Get("page_size"))
		items := []any{}
		for i := (page-1)*size + 1; i <= min(page*size, 5); i++ {
			items = append(items, item(i))
		}
		json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"items": items}})
	case "/linked": // 3 pages by cursor, relative next links
		c, _ := strconv.Atoi(r.URL.Query().Get("cursor"))
		var next any
		if c < 2 {
			next = fmt.Sprintf("/linked?cursor=%d", c+1)
		}
		json.NewEncoder(w).Encode(map[string]any{"items": []any{item(2 * c), item(2*c + 1)}, "links": map[string]any{"next": next}})
	case "/flaky": // 500 twice, then the data
		if a.flaky.Add(1) <= 2 {
			http.Error(w, "try later", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, `[{"id":1,"amount":1.10}]`)
	case "/search": // POST with a JSON body
		var q struct{ Q string }
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&q) != nil {
			http.Error(w, "want a POST of JSON", http.StatusBadRequest)
			return
		}
		json.NewEncoder(w).Encode([]any{map[string]any{"id": 1, "name": q.Q}})
	case "/down":
		http.Error(w, "down", http.StatusServiceUnavailable)
	case "/slow":
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	default:
		http.NotFound(w, r)
	}
}

func setup(t *testing.T) (*api, *httptest.Server) {
	a := &api{hits: map[string]*atomic.Int64{}}
	for _, p := range []string{"/search", "/paged", "/linked", "/flaky", "/down", "/slow", "/missing"} {
		a.hits[p] = new(atomic.Int64)
	}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return a, srv
}

func run(t *testing.T, srv *httptest.Server, cfg map[string]any) (*connector.Staged, string, string, error) {
	t.Helper()
	return runIn(t, t.TempDir(), srv, cfg)
}

func runIn(t *testing.T, dir string, srv *httptest.Server, cfg map[string]any) (*connector.Staged, string, string, error) {
	t.Helper()
	if _, ok := cfg["auth_secret"]; !ok {
		cfg["auth_secret"] = "env:API_TOKEN"
		cfg["auth_prefix"] = "Bearer "
	}
	c, err := connector.Open("http", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	env := connector.Env{
		StageDir:   dir,
		Secrets:    connector.Secrets{Env: connector.EnvSecrets{Getenv: func(string) string { return token }}},
		HTTPClient: srv.Client(),
		Logger:     slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	st, err := c.Stage(context.Background(), env)
	if strings.Contains(logs.String(), token) || (err != nil && strings.Contains(err.Error(), token)) {
		t.Errorf("the secret leaked:\nlogs: %s\nerr: %v", logs.String(), err)
	}
	out := ""
	if st != nil {
		b, _ := os.ReadFile(filepath.Join(dir, st.Files[0]))
		out = string(b)
	}
	return st, out, logs.String(), err
}

func lines(ids ...int) string {
	var b strings.Builder
	for _, i := range ids {
		fmt.Fprintf(&b, `{"id":%d,"name":"c%d"}`+"\n", i, i)
	}
	return b.String()
}

func TestPageParam(t *testing.T) {
	a, srv := setup(t)
	st, out, _, err := run(t, srv, map[string]any{"url": srv.URL + "/paged", "items_path": "data.items",
		"page_param": "page", "page_size": 2})
	if err != nil {
		t.Fatal(err)
	}
	if out != lines(1, 2, 3, 4, 5) || st.Rows != 5 || st.Bytes != int64(len(out)) || st.Format != "ndjson" {
		t.Errorf("staged %+v:\n%s", st, out)
	}
	if n := a.hits["/paged"].Load(); n != 3 { // 2 + 2 + 1: the short page ends it
		t.Errorf("%d requests, want 3", n)
	}
}

func TestNextLink(t *testing.T) {
	a, srv := setup(t)
	// Pages reach the stage as they come: when the last page is asked
	// for, the first two are on disk.
	dir := t.TempDir()
	var onDisk atomic.Value
	a.before = func(r *http.Request) {
		if r.URL.Query().Get("cursor") == "2" {
			b, _ := os.ReadFile(filepath.Join(dir, "0000-http.ndjson"))
			onDisk.Store(string(b))
		}
	}
	st, out, _, err := runIn(t, dir, srv, map[string]any{"url": srv.URL + "/linked", "items_path": "items", "next_link": "links.next"})
	if err != nil {
		t.Fatal(err)
	}
	if out != lines(0, 1, 2, 3, 4, 5) || st.Rows != 6 || a.hits["/linked"].Load() != 3 {
		t.Errorf("staged %+v after %d requests:\n%s", st, a.hits["/linked"].Load(), out)
	}
	if got, _ := onDisk.Load().(string); got != lines(0, 1, 2, 3) {
		t.Errorf("on disk before the last page: %q", got)
	}
}

func TestPost(t *testing.T) {
	_, srv := setup(t)
	_, out, _, err := run(t, srv, map[string]any{"url": srv.URL + "/search", "method": "post", "body": `{"q": "c1"}`})
	if err != nil || out != lines(1) {
		t.Errorf("staged %q, %v", out, err)
	}
	_, _, _, err = run(t, srv, map[string]any{"url": srv.URL + "/search"})
	if rhizome.Code(err) != rhizome.EInvalid || err == nil || !strings.Contains(err.Error(), "400 Bad Request: want a POST of JSON") {
		t.Errorf("GET: %v", err)
	}
}

func TestRedirectKeepsTheSecret(t *testing.T) {
	var got atomic.Value
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get("X-Api-Key"))
		fmt.Fprint(w, `[{"id":1}]`)
	}))
	defer other.Close()
	srv := httptest.NewServer(http.RedirectHandler(other.URL+"/data", http.StatusFound))
	defer srv.Close()
	_, out, _, err := run(t, srv, map[string]any{"url": srv.URL, "auth_header": "X-Api-Key", "auth_secret": "env:API_TOKEN"})
	if err != nil || out != `{"id":1}`+"\n" {
		t.Fatalf("staged %q, %v", out, err)
	}
	if v, _ := got.Load().(string); v != "" {
		t.Errorf("the other host got the key %q", v)
	}
}

func TestRetriesServerErrors(t *testing.T) {
	a, srv := setup(t)
	st, out, logs, err := run(t, srv, map[string]any{"url": srv.URL + "/flaky", "retries": 3, "retry_wait": "1ms"})
	if err != nil {
		t.Fatal(err)
	}
	if out != `{"id":1,"amount":1.10}`+"\n" || st.Rows != 1 || a.hits["/flaky"].Load() != 3 {
		t.Errorf("staged %+v after %d requests: %q", st, a.hits["/flaky"].Load(), out)
	}
	if strings.Count(logs, "http retry") != 2 {
		t.Errorf("want 2 retries logged:\n%s", logs)
	}

	_, _, _, err = run(t, srv, map[string]any{"url": srv.URL + "/down", "retries": 2, "retry_wait": "1ms"})
	want := "after 3 attempts: GET " + srv.URL + "/down: 503 Service Unavailable: down"
	if rhizome.Code(err) != rhizome.EUnavailable || err == nil || !strings.HasPrefix(err.Error(), want) || a.hits["/down"].Load() != 3 {
		t.Errorf("err = %v, want %q", err, want)
	}
}

func TestTimeout(t *testing.T) {
	a, srv := setup(t)
	start := time.Now()
	_, _, _, err := run(t, srv, map[string]any{"url": srv.URL + "/slow", "timeout": "50ms", "retries": 1, "retry_wait": "1ms"})
	if rhizome.Code(err) != rhizome.EUnavailable || err == nil || !strings.Contains(err.Error(), "/slow: timed out after 50ms") {
		t.Errorf("err = %v", err)
	}
	if n := a.hits["/slow"].Load(); n != 2 {
		t.Errorf("%d requests, want 2 (one retry)", n)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
}

func TestClientErrorsFailAtOnce(t *testing.T) {
	a, srv := setup(t)
	_, _, _, err := run(t, srv, map[string]any{"url": srv.URL + "/missing", "retries": 5, "retry_wait": "1ms"})
	if rhizome.Code(err) != rhizome.ENotFound || err == nil ||
		!strings.HasPrefix(err.Error(), "GET "+srv.URL+"/missing: 404 Not Found") || a.hits["/missing"].Load() != 1 {
		t.Errorf("err = %v after %d requests", err, a.hits["/missing"].Load())
	}

	// A wrong credential is named by its reference, never by its value.
	c, _ := connector.Open("http", map[string]any{"url": srv.URL + "/paged", "auth_secret": "env:API_TOKEN", "retries": 5})
	_, err = c.Stage(context.Background(), connector.Env{StageDir: t.TempDir(), HTTPClient: srv.Client(),
		Secrets: connector.EnvSecrets{Getenv: func(string) string { return "wrong-" + token }}})
	if rhizome.Code(err) != rhizome.EUnauthorized || strings.Contains(err.Error(), token) || a.hits["/paged"].Load() != 1 {
		t.Errorf("err = %v", err)
	}
}

func TestConfigProblems(t *testing.T) {
	for _, cfg := range []map[string]any{
		{"url": "ftp://x/y"},
		{"url": "http://x", "method": "DELETE"},
		{"url": "http://x", "next_link": "a", "page_param": "p"},
		{"url": "http://x", "page_size": 10},
		{"url": "http://x", "headers": map[string]any{"authorization": "Bearer x"}},
		{"url": "http://x", "auth_secret": "Bearer abc"},
		{"url": "http://x", "timeout": "0s"},
		{"url": "http://x", "body": "{}"},
		{"url": "http://x", "method": "POST", "body": "{"},
	} {
		_, err := connector.Open("http", cfg)
		if rhizome.Code(err) != rhizome.EInvalid {
			t.Errorf("Open(%v) = %v, want invalid", cfg, err)
		}
		if err != nil && strings.Contains(err.Error(), "abc") {
			t.Errorf("error shows the inline secret: %v", err)
		}
	}
}
