package cli_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// whoamiServer answers /api/v1/whoami with its own name and the token it
// was given, so a test sees which server and token the CLI chose.
func whoamiServer(t *testing.T, name string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		json.NewEncoder(w).Encode(map[string]any{"id": name + "/" + tok, "kind": "user"})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestServerAndTokenResolution(t *testing.T) {
	flagURL, envURL, fileURL := whoamiServer(t, "flag"), whoamiServer(t, "env"), whoamiServer(t, "file")
	home := t.TempDir()
	writeFile(t, filepath.Join(home, "server.json"), fmt.Sprintf(`{"url": %q, "pid": 1}`, fileURL))
	writeFile(t, filepath.Join(home, "admin.token"), "rhz_admin\n")
	other := t.TempDir()
	writeFile(t, filepath.Join(other, "server.json"), fmt.Sprintf(`{"url": %q, "pid": 1}`, flagURL))

	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"data dir files", map[string]string{"RHIZOME_HOME": home}, nil, "file/rhz_admin"},
		{"env wins over files", map[string]string{"RHIZOME_HOME": home, "RHIZOME_SERVER": envURL, "RHIZOME_TOKEN": "rhz_env"}, nil, "env/rhz_env"},
		{"flags win over env", map[string]string{"RHIZOME_HOME": home, "RHIZOME_SERVER": envURL, "RHIZOME_TOKEN": "rhz_env"},
			[]string{"--server", flagURL, "--token", "rhz_flag"}, "flag/rhz_flag"},
		{"--data wins over RHIZOME_HOME", map[string]string{"RHIZOME_HOME": home}, []string{"--data", other}, "flag/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, tt.env, "", append([]string{"whoami", "-o", "json"}, tt.args...)...)
			var p struct{ ID string }
			if err := json.Unmarshal([]byte(r.stdout), &p); err != nil || r.err != nil {
				t.Fatalf("stdout %q, stderr %q: %v", r.stdout, r.stderr, err)
			}
			if p.ID != tt.want {
				t.Errorf("server/token = %q, want %q", p.ID, tt.want)
			}
		})
	}
}

func TestDefaultServerWithoutServerJSON(t *testing.T) {
	// Nothing in the data directory: the default address. Whether anything
	// answers there does not matter; the address tried does.
	r := run(t, map[string]string{"RHIZOME_HOME": t.TempDir()}, "", "version", "-o", "json")
	var v struct {
		ServerURL string `json:"server_url"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || r.err != nil || v.ServerURL != "http://127.0.0.1:8080" {
		t.Errorf("err %v, stdout %q", r.err, r.stdout)
	}
}

func TestWaitTimesOutWithoutServerJSON(t *testing.T) {
	r := run(t, map[string]string{"RHIZOME_HOME": t.TempDir()}, "", "wait", "--timeout", "200ms")
	if r.code() != 7 || !strings.Contains(r.stderr, "not ready after 200ms: no ") {
		t.Errorf("exit %d, stderr %q", r.code(), r.stderr)
	}
}
