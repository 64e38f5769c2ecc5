package cli_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/cli"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// fakeAPI answers /api/v1/apply with a canned plan (dry run) or result,
// and records what it was sent.
type fakeAPI struct {
	mu       sync.Mutex
	requests []rhizome.ApplyRequest
	auth     []string
	plan     rhizome.ApplyResult
	fail     *rhizome.Error // answer the real apply with this
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.URL.Path != "/api/v1/apply" {
		http.NotFound(w, r)
		return
	}
	var req rhizome.ApplyRequest
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &req); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	f.requests = append(f.requests, req)
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	w.Header().Set("Content-Type", "application/json")
	res := f.plan
	res.DryRun = req.DryRun
	if !req.DryRun {
		if f.fail != nil {
			w.WriteHeader(409)
			json.NewEncoder(w).Encode(map[string]any{"error": f.fail})
			return
		}
		res.Applied = true
		res.ApplyID = "ap_2"
	}
	json.NewEncoder(w).Encode(res)
}

func newFake(t *testing.T, plan rhizome.ApplyResult) (*fakeAPI, map[string]string) {
	f := &fakeAPI{plan: plan}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, map[string]string{"RHIZOME_SERVER": srv.URL, "RHIZOME_TOKEN": "rhz_test"}
}

// samplePlan has one change of each action.
var samplePlan = rhizome.ApplyResult{
	ApplyID: "ap_1",
	Summary: rhizome.ApplySummary{Create: 1, Update: 1, Unchanged: 1, Delete: 1},
	Changes: []rhizome.Change{
		{Action: rhizome.ActionCreate, Kind: rhizome.KindDomain, ID: "customer"},
		{Action: rhizome.ActionUpdate, Kind: rhizome.KindDataProduct, ID: "dp.customer.360", BaseRevision: 2,
			Diff: []rhizome.FieldChange{
				{Path: "sla.freshness", Old: "1h", New: "15min"},
				{Path: "sla.accuracy", New: "99.5%"},
				{Path: "tags[2]", Old: "old"},
				{Path: "quality_metrics", Old: map[string]any{"completeness": 0.98}, New: map[string]any{"completeness": 0.99, "accuracy": 0.995, "freshness": 0.99, "timeliness": 0.97}},
			},
			Notes: []string{"processing.engine spark: runs on the embedded DuckDB engine"}},
		{Action: rhizome.ActionUnchanged, Kind: rhizome.KindTeam, ID: "customer-domain-team", BaseRevision: 1},
		{Action: rhizome.ActionDelete, Kind: rhizome.KindDataProduct, ID: "dp.customer.old", BaseRevision: 4},
	},
}

func manifests(t *testing.T) string {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "mesh", "a.yaml"), "kind: Domain\n")
	writeFile(t, filepath.Join(dir, "mesh", "sub", "b.yml"), "kind: Team\n")
	writeFile(t, filepath.Join(dir, "mesh", "notes.txt"), "not a manifest")
	return filepath.Join(dir, "mesh")
}

func TestApplyDryRunPlan(t *testing.T) {
	f, env := newFake(t, samplePlan)
	r := run(t, env, "", "apply", "-f", manifests(t), "--dry-run")
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.stderr)
	}
	golden(t, "plan.golden", r.stdout)
	if len(f.requests) != 1 || !f.requests[0].DryRun {
		t.Fatalf("requests %+v, want one dry run", f.requests)
	}
	var names []string
	for _, file := range f.requests[0].Files {
		names = append(names, filepath.Base(file.Name)+"="+file.Content)
	}
	if got := strings.Join(names, ","); got != "a.yaml=kind: Domain\n,b.yml=kind: Team\n" {
		t.Errorf("files sent: %q", got)
	}
	if f.auth[0] != "Bearer rhz_test" {
		t.Errorf("Authorization %q", f.auth[0])
	}
}

func TestApplyPinsThePlan(t *testing.T) {
	f, env := newFake(t, samplePlan)
	r := run(t, env, "", "apply", "-f", manifests(t), "--yes", "--prune", "--expect", "dp/dp.customer.360=7")
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.stderr)
	}
	if len(f.requests) != 2 {
		t.Fatalf("%d requests, want a dry run then an apply", len(f.requests))
	}
	plan, apply := f.requests[0], f.requests[1]
	if !plan.DryRun || apply.DryRun || !plan.Prune || !apply.Prune {
		t.Errorf("dry_run/prune: plan %v/%v, apply %v/%v", plan.DryRun, plan.Prune, apply.DryRun, apply.Prune)
	}
	if fmt.Sprint(plan.Expected) != "map[DataProduct/dp.customer.360:7]" {
		t.Errorf("plan expected %v: want only the pinned revision", plan.Expected)
	}
	want := "map[DataProduct/dp.customer.360:7 DataProduct/dp.customer.old:4 Domain/customer:0 Team/customer-domain-team:1]"
	if fmt.Sprint(apply.Expected) != want {
		t.Errorf("apply expected %v, want %s", apply.Expected, want)
	}
	if !strings.HasSuffix(r.stdout, "Applied 3 changes (apply ap_2).\n") {
		t.Errorf("stdout %q", r.stdout)
	}
}

func TestApplyNothingToDo(t *testing.T) {
	f, env := newFake(t, rhizome.ApplyResult{ApplyID: "ap_1", Summary: rhizome.ApplySummary{Unchanged: 1},
		Changes: []rhizome.Change{{Action: rhizome.ActionUnchanged, Kind: rhizome.KindDomain, ID: "customer", BaseRevision: 3}}})
	r := run(t, env, "", "apply", "-f", manifests(t))
	want := "Plan: 0 to create, 0 to update, 1 unchanged, 0 to delete.\nNo changes: nothing to apply.\n"
	if r.err != nil || r.stdout != want || len(f.requests) != 1 {
		t.Errorf("err %v, %d requests, stdout %q, want %q", r.err, len(f.requests), r.stdout, want)
	}
}

func TestApplyAsksBeforeDeleting(t *testing.T) {
	f, env := newFake(t, samplePlan)
	r := run(t, env, "n\n", "apply", "-f", manifests(t))
	if r.code() != cli.ExitError || len(f.requests) != 1 || !strings.Contains(r.stderr, "The plan deletes 1 object. Apply it? [y/N] ") {
		t.Errorf("exit %d, %d requests, stderr %q", r.code(), len(f.requests), r.stderr)
	}
	r = run(t, env, "yes\n", "apply", "-f", manifests(t))
	if r.err != nil || len(f.requests) != 3 {
		t.Errorf("err %v, %d requests", r.err, len(f.requests))
	}
	r = run(t, env, "kind: Domain\n", "apply", "-f", "-")
	if r.code() != cli.ExitUsage || !strings.Contains(r.stderr, "pass --yes") {
		t.Errorf("stdin holds manifests: exit %d, stderr %q", r.code(), r.stderr)
	}
}

func TestApplyConflict(t *testing.T) {
	f, env := newFake(t, samplePlan)
	f.fail = rhizome.Errorf(rhizome.EConflict, "DataProduct/dp.customer.360 is at revision 3, not 2")
	r := run(t, env, "", "apply", "-f", manifests(t), "--yes")
	if r.code() != cli.ExitConflict {
		t.Fatalf("exit %d, stderr %q", r.code(), r.stderr)
	}
	want := "error: DataProduct/dp.customer.360 is at revision 3, not 2\n  hint: something changed since the plan was made; run the apply again to see the new plan\n"
	if r.stderr != want {
		t.Errorf("stderr %q\nwant %q", r.stderr, want)
	}
}

func TestApplyJSON(t *testing.T) {
	_, env := newFake(t, samplePlan)
	r := run(t, env, "", "apply", "-f", manifests(t), "--yes", "-o", "json")
	var res rhizome.ApplyResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.err != nil {
		t.Fatalf("stdout %q is not an ApplyResult: %v %v", r.stdout, err, r.err)
	}
	if !res.Applied || res.ApplyID != "ap_2" || len(res.Changes) != 4 {
		t.Errorf("result %+v", res)
	}
}

func TestApplyServerDown(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	r := run(t, map[string]string{"RHIZOME_SERVER": srv.URL}, "", "apply", "-f", manifests(t))
	if r.code() != cli.ExitUnavailable || !strings.Contains(r.stderr, "hint: is `rhizome up` running? set --server or RHIZOME_SERVER") {
		t.Errorf("exit %d, stderr %q", r.code(), r.stderr)
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n got:\n%s\nwant:\n%s", path, got, want)
	}
}
