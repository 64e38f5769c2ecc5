package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/rhizome-mesh/rhizome/audit"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/metastore/metastoretest"
	"github.com/rhizome-mesh/rhizome/metastore/sqlite"
	"github.com/rhizome-mesh/rhizome/server"
)

// TestFailedAuthenticationIsAudited: a request with no token or a bad one
// writes an auth.failed deny entry; past 20 a minute from one client, one
// auth.failed.suppressed entry stands for the rest of that minute, so
// unauthenticated clients cannot flood the log.
func TestFailedAuthenticationIsAudited(t *testing.T) {
	ctx := context.Background()
	clock := metastoretest.NewClock(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "m.db"), metastore.Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	log := audit.Open(audit.Options{Store: store, Clock: clock})
	t.Cleanup(func() { log.Close() })
	srv := httptest.NewServer(server.New(server.Deps{Store: store, Clock: clock, Audit: log, Version: "test"}).Handler())
	t.Cleanup(srv.Close)

	get := func(auth string) int {
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/products", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for i := range 25 {
		auth := "Bearer rhz_notarealtoken"
		if i == 0 {
			auth = ""
		}
		if code := get(auth); code != http.StatusUnauthorized {
			t.Fatalf("request %d: %d, want 401", i, code)
		}
	}
	count := func(action string) int {
		t.Helper()
		page, err := log.Query(ctx, audit.Filter{Action: action, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Items {
			if e.Decision != audit.Deny || e.Actor != "anonymous" || e.Via != "rest" {
				t.Errorf("entry %+v", e)
			}
		}
		return len(page.Items)
	}
	if n, s := count("auth.failed"), count("auth.failed.suppressed"); n != 20 || s != 1 {
		t.Errorf("after 25 failures in a minute: %d auth.failed and %d suppressed entries, want 20 and 1", n, s)
	}
	clock.Advance(time.Minute)
	get("Bearer rhz_notarealtoken")
	if n := count("auth.failed"); n != 21 {
		t.Errorf("a failure in the next minute: %d auth.failed entries, want 21", n)
	}
	if res, err := log.Verify(ctx); err != nil || !res.OK {
		t.Errorf("chain after failures: %+v, %v", res, err)
	}
}
