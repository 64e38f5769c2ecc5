package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rhizome-mesh/rhizome/server"
)

// syncBuffer is a bytes.Buffer safe for the server goroutine to write
// while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

// startServe runs Serve on dir and returns its URL and a stop function
// that waits for a clean shutdown.
func startServe(t *testing.T, dir string, demo bool, out *syncBuffer) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- server.Serve(ctx, server.Config{DataDir: dir, Listen: "127.0.0.1:0", Demo: demo, Stdout: out})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if raw, err := os.ReadFile(filepath.Join(dir, server.InfoFile)); err == nil {
			var info server.Info
			if json.Unmarshal(raw, &info) == nil && info.URL != "" {
				return info.URL, func() {
					cancel()
					if err := <-done; err != nil {
						t.Errorf("shutdown: %v", err)
					}
				}
			}
		}
		select {
		case err := <-done:
			t.Fatalf("Serve returned early: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	t.Fatal("server never became ready")
	return "", nil
}

func TestServeDemoAndRestart(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := t.TempDir()
	var out syncBuffer
	url, stop := startServe(t, dir, true, &out)

	st, err := os.Stat(filepath.Join(dir, "admin.token"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("admin token: %v %v", st, err)
	}
	token, _ := os.ReadFile(filepath.Join(dir, "admin.token"))
	get := func(path string) (int, map[string]any) {
		req, _ := http.NewRequest("GET", url+path, nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Fatalf("readyz %d", code)
	}
	code, obj := get("/api/v1/products/dp.customer.360")
	if code != 200 {
		t.Fatalf("demo product: %d", code)
	}
	if m := obj["manifest"].(map[string]any); m["current_version"] != "2.1.0" || m["sensitivity_level"] != "confidential" {
		t.Fatalf("dp.customer.360 is not the guide's: %v", m)
	}
	for i := 0; i < 200 && !strings.Contains(out.String(), "ready at"); i++ {
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	if _, err := os.Stat(filepath.Join(dir, server.InfoFile)); !os.IsNotExist(err) {
		t.Fatalf("server.json left behind after shutdown: %v", err)
	}
	if !strings.Contains(out.String(), "ready at") || !strings.Contains(out.String(), "example mesh") {
		t.Fatalf("start-up output: %q", out.String())
	}

	// A restart keeps the data and the token, and leaves the mesh alone.
	out.Reset()
	url, stop = startServe(t, dir, true, &out)
	defer stop()
	if code, _ := get("/api/v1/products/dp.customer.360/history"); code != 200 {
		t.Fatalf("after restart: %d", code)
	}
	for i := 0; i < 200 && !strings.Contains(out.String(), "ready at"); i++ {
		time.Sleep(5 * time.Millisecond) // "ready at" follows server.json
	}
	if !strings.Contains(out.String(), "already holds a mesh") {
		t.Fatalf("restart output: %q", out.String())
	}
}
