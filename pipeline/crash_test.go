package pipeline_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/catalog"
	"github.com/rhizome-mesh/rhizome/connector"
	"github.com/rhizome-mesh/rhizome/engine/duckdb"
	"github.com/rhizome-mesh/rhizome/jobs"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/metastore/sqlite"
	"github.com/rhizome-mesh/rhizome/pipeline"
	"github.com/rhizome-mesh/rhizome/table"
)

// crashDirEnv names the data dir of TestCrashChild: set, the test is a
// worker that TestCrashRecovery kills.
const crashDirEnv = "RHIZOME_CRASH_DIR"

const (
	crashProduct = "dp.sales.crash"
	// recoveredMsg is jobs' error for a run a dead worker left running.
	recoveredMsg = "worker died; recovered at start"
)

var crashRef = table.RefFor(crashProduct, "1.0.0")

const crashMesh = `apiVersion: rhizome/v1
kind: Domain
name: sales
owner_teams: [sales-team]
---
apiVersion: rhizome/v1
kind: Team
name: sales-team
members: [{principal: bob@example.com}]
---
apiVersion: rhizome/v1
kind: DataProduct
id: dp.sales.crash
name: Crash
owner_team: sales-team
domain: sales
current_version: 1.0.0
sensitivity_level: internal
input_ports:
  - name: raw
    connector: csv
    config: {path: gen.csv}
pipeline:
  models:
    - name: crash
      sql: SELECT id, gen, name FROM raw
`

// rowsFor is the row count of generation g's data, so that every
// snapshot says which publish made it.
func rowsFor(g int64) int64 { return 3000 + g }

// crashWorld is a data dir's store, tables, pipeline and scheduler, as a
// `rhizome up` process would open them.
type crashWorld struct {
	dir    string
	store  *sqlite.Store
	tables *table.Catalog
	pipe   *pipeline.Pipeline
}

func openCrashWorld(tb testing.TB, dir string) *crashWorld {
	tb.Helper()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "m.db"), metastore.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tables, err := table.Open(ctx, table.Options{DB: store.DB(), Dialect: "sqlite", Warehouse: "file://" + filepath.Join(dir, "lake")})
	if err != nil {
		store.Close()
		tb.Fatal(err)
	}
	pipe := pipeline.New(pipeline.Options{Store: store, Tables: tables, WorkDir: filepath.Join(dir, "work"), BaseDir: filepath.Join(dir, "files"),
		Secrets: connector.EnvSecrets{Getenv: func(string) string { return "" }}, Warehouse: "file://" + filepath.Join(dir, "lake")})
	return &crashWorld{dir: dir, store: store, tables: tables, pipe: pipe}
}

func (w *crashWorld) scheduler(tb testing.TB, onRecover func(*rhizome.Run)) *jobs.Scheduler {
	tb.Helper()
	s, err := jobs.New(ctx, jobs.Options{Store: w.store, Dialect: jobs.DialectSQLite, DB: w.store.DB(), Runner: w.pipe.Run,
		Queue: true, OnRecover: onRecover, PollInterval: 20 * time.Millisecond, RetryDelay: 50 * time.Millisecond})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// TestCrashChild is the worker that TestCrashRecovery starts and kills:
// it publishes a new generation of data, one run at a time, until killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("runs as a child of TestCrashRecovery")
	}
	w := openCrashWorld(t, dir)
	defer w.store.Close()
	s := w.scheduler(t, func(r *rhizome.Run) {
		if err := w.pipe.Recover(ctx, r); err != nil {
			t.Errorf("recover %s: %v", r.ID, err)
		}
	})
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(ctx)
	fmt.Println("ready")
	// The parent kills us long before this; the bound only stops an
	// orphaned child.
	stop := time.Now().Add(time.Minute)
	for time.Now().Before(stop) {
		g := nextGen(t, dir)
		writeGen(t, filepath.Join(dir, "files", "gen.csv"), g)
		run, err := s.Enqueue(ctx, jobs.Request{ProductID: crashProduct})
		if err != nil {
			t.Fatal(err)
		}
		for {
			r, err := w.store.GetRun(ctx, run.ID)
			if err != nil {
				t.Fatal(err)
			}
			if r.State.Done() {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// nextGen bumps the generation counter kept in dir (written atomically,
// so a kill leaves the old or the new value).
func nextGen(t *testing.T, dir string) int64 {
	p := filepath.Join(dir, "gen")
	b, _ := os.ReadFile(p)
	g, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	g++
	writeAtomic(t, p, []byte(strconv.FormatInt(g, 10)))
	return g
}

// writeGen writes generation g's CSV: rowsFor(g) rows, each saying g.
func writeGen(t *testing.T, path string, g int64) {
	var b strings.Builder
	b.WriteString("id,gen,name\n")
	for i := range rowsFor(g) {
		fmt.Fprintf(&b, "%d,%d,row %d of generation %d\n", i, g, i, g)
	}
	writeAtomic(t, path, []byte(b.String()))
}

func writeAtomic(t *testing.T, path string, b []byte) {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestCrashRecovery kills a worker (SIGKILL) at random moments while it
// publishes, many times. After each kill a new process opens the data dir
// as `rhizome up` would; the test checks that the store is intact, no run
// is left running, recovered runs are failed with jobs' message, the table
// is at one whole snapshot whose data reads back in full, and no file
// under the table's location is unreferenced.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("kills worker processes for up to 40s")
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "files"), 0o700); err != nil {
		t.Fatal(err)
	}
	w := openCrashWorld(t, dir)
	if _, err := catalog.New(w.store, catalog.Options{}).Apply(ctx, &rhizome.Principal{ID: "admin", Admin: true},
		rhizome.ApplyRequest{Files: []rhizome.SourceFile{{Name: "mesh.yaml", Content: crashMesh}}}); err != nil {
		t.Fatal(err)
	}
	w.store.Close()

	rng := rand.New(rand.NewPCG(4, 2026))
	const kills = 15
	deadline := time.Now().Add(40 * time.Second)
	stats := crashStats{stuck: map[string]bool{}}
	for i := 0; i < kills && time.Now().Before(deadline); i++ {
		delay := time.Duration(5+rng.IntN(796)) * time.Millisecond
		killChild(t, dir, delay)
		checkAfterCrash(t, dir, i, &stats)
		if t.Failed() {
			return
		}
	}
	t.Logf("%d kills: %d found a run running (recovered), %d left orphan files (%d files), %d snapshots, %d runs succeeded, %d queued runs with a stuck job",
		stats.kills, stats.recovered, stats.withOrphans, stats.orphans, stats.snapshots, stats.succeeded, len(stats.stuck))
	if stats.kills < 5 {
		t.Fatalf("only %d kills in the time bound", stats.kills)
	}
	if stats.recovered == 0 {
		t.Error("no kill found a run running: the test did not exercise recovery")
	}
}

type crashStats struct {
	kills, recovered, withOrphans, orphans, snapshots, succeeded int
	// stuck holds the queued runs whose River job was marked running
	// with no process working it (see stuckRuns).
	stuck map[string]bool
}

// stuckRuns lists the queued runs whose River job is marked running
// after recovery, when no process works the queue: a kill between River
// fetching the job and the worker claiming the run leaves that, and
// jobs' recovery, which looks at running runs, does not see it. River's
// rescuer frees the job only after Options.DefaultTimeout plus an hour.
func stuckRuns(t *testing.T, w *crashWorld, i int) []string {
	t.Helper()
	rows, err := w.store.DB().QueryContext(ctx, `SELECT args ->> 'run_id' FROM river_job WHERE state = 'running'`)
	if err != nil {
		t.Fatalf("kill %d: reading River's jobs: %v", i, err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	var stuck []string
	for _, id := range ids {
		r, err := w.store.GetRun(ctx, id)
		if err == nil && r.State == rhizome.RunQueued {
			stuck = append(stuck, id)
			last := ""
			if logs, err := w.store.RunLogs(ctx, id, 0); err == nil && len(logs) > 0 {
				last = logs[len(logs)-1].Msg
			}
			t.Logf("kill %d: run %s (attempt %d, last log %q) is queued but its River job is marked running: nothing runs it until River rescues the job",
				i, id, r.Attempt, last)
		}
	}
	return stuck
}

// killChild starts TestCrashChild on dir and kills it delay after it says
// it is ready.
func killChild(t *testing.T, dir string, delay time.Duration) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready, drained := make(chan error, 1), make(chan struct{})
	go func() {
		defer close(drained)
		line, err := bufio.NewReader(out).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("child said %q", line)
		}
		ready <- err
		io.Copy(io.Discard, out)
	}()
	select {
	case err = <-ready:
	case <-time.After(30 * time.Second):
		err = fmt.Errorf("child not ready after 30s")
	}
	if err == nil {
		time.Sleep(delay)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-drained // the pipe closes with the child; Wait must come after the reads
	werr := cmd.Wait()
	if err != nil {
		t.Fatalf("child: %v (exit %v)\n%s", err, werr, stderr.String())
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		// It ended on its own: a failure inside the child.
		t.Fatalf("child exited before the kill: %v\n%s", werr, stderr.String())
	}
}

// checkAfterCrash opens dir as a restarted server does (recovery in
// jobs.Start calling Pipeline.Recover) and checks what the kill left.
func checkAfterCrash(t *testing.T, dir string, i int, stats *crashStats) {
	t.Helper()
	stats.kills++
	w := openCrashWorld(t, dir)
	defer w.store.Close()

	var ok string
	if err := w.store.DB().QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("kill %d: SQLite integrity_check: %q %v", i, ok, err)
	}
	orphansBefore := unreferenced(t, w)
	if len(orphansBefore) > 0 {
		stats.withOrphans++
		stats.orphans += len(orphansBefore)
	}

	var mu sync.Mutex
	var recovered []*rhizome.Run
	s := w.scheduler(t, func(r *rhizome.Run) {
		if err := w.pipe.Recover(ctx, r); err != nil {
			t.Errorf("kill %d: recover %s: %v", i, r.ID, err)
		}
		mu.Lock()
		recovered = append(recovered, r)
		mu.Unlock()
	})
	if err := s.Start(ctx); err != nil {
		t.Fatalf("kill %d: Start: %v", i, err)
	}
	// Checks look at the state recovery left (Start recovers before its
	// workers start); the workers may finish queued runs meanwhile.
	stopCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.Stop(stopCtx); err != nil {
		t.Fatalf("kill %d: Stop: %v", i, err)
	}
	if len(recovered) > 0 {
		stats.recovered++
	}
	for _, r := range recovered {
		if r.State != rhizome.RunFailed || r.Error != recoveredMsg {
			t.Errorf("kill %d: recovered run %s is %s %q", i, r.ID, r.State, r.Error)
		}
	}

	for _, id := range stuckRuns(t, w, i) {
		stats.stuck[id] = true
	}

	// Runs: none left running; failures are recoveries.
	runs := allRuns(t, w.store)
	byID := map[string]rhizome.Run{}
	for _, r := range runs {
		byID[r.ID] = r
		switch {
		case r.State == rhizome.RunSucceeded:
		case r.State == rhizome.RunQueued:
		case r.State == rhizome.RunFailed && r.Error == recoveredMsg:
		default:
			t.Errorf("kill %d: run %s is %s %q", i, r.ID, r.State, r.Error)
		}
	}

	// The table: one whole snapshot, readable in full.
	cur, err := w.tables.Current(ctx, crashRef)
	if rhizome.Code(err) == rhizome.ENotFound {
		for _, r := range runs {
			if r.State == rhizome.RunSucceeded {
				t.Fatalf("kill %d: run %s succeeded but the table has no snapshot: %v", i, r.ID, err)
			}
		}
		checkNoOrphans(t, w, i)
		return
	}
	if err != nil {
		t.Fatalf("kill %d: current snapshot: %v", i, err)
	}
	n, gens, gen := readGen(t, w)
	if n != cur.Rows || gens != 1 || n != rowsFor(gen) {
		t.Fatalf("kill %d: snapshot %d says %d rows; its files hold %d rows of %d generations (generation %d has %d)",
			i, cur.ID, cur.Rows, n, gens, gen, rowsFor(gen))
	}
	// pipeline.Run passes "run-id"; table.Publish stores it with a prefix
	// and strips it again on read.
	makerID := cur.Properties["run-id"]
	maker, ok2 := byID[makerID]
	if !ok2 || (maker.State != rhizome.RunSucceeded && maker.State != rhizome.RunFailed) {
		t.Errorf("kill %d: snapshot %d was made by run %q, which is %+v", i, cur.ID, makerID, maker)
	}
	snaps, err := w.tables.Snapshots(ctx, crashRef)
	if err != nil {
		t.Fatal(err)
	}
	stats.snapshots = len(snaps)
	ids := map[int64]bool{}
	for _, s := range snaps {
		ids[s.ID] = true
	}
	stats.succeeded = 0
	for _, r := range runs {
		if r.State == rhizome.RunSucceeded {
			stats.succeeded++
			if !ids[r.SnapshotID] {
				t.Errorf("kill %d: run %s succeeded with snapshot %d, which the table does not have", i, r.ID, r.SnapshotID)
			}
		}
	}
	checkNoOrphans(t, w, i)
}

func checkNoOrphans(t *testing.T, w *crashWorld, i int) {
	t.Helper()
	if left := unreferenced(t, w); len(left) > 0 {
		t.Errorf("kill %d: after recovery, files no snapshot references:\n%s", i, strings.Join(left, "\n"))
	}
	entries, err := os.ReadDir(filepath.Join(w.dir, "work"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("kill %d: work dir %s left behind", i, e.Name())
	}
}

func allRuns(t *testing.T, st metastore.Store) []rhizome.Run {
	t.Helper()
	var all []rhizome.Run
	opt := metastore.RunListOptions{Limit: 1000}
	for {
		runs, next, err := st.ListRuns(ctx, opt)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, runs...)
		if next == "" {
			return all
		}
		opt.After = next
	}
}

// readGen reads the current snapshot's files with DuckDB: the row count,
// the number of distinct generations and the (largest) generation.
func readGen(t *testing.T, w *crashWorld) (rows, gens, gen int64) {
	t.Helper()
	files, _, err := w.tables.DataFiles(ctx, crashRef, table.AsOf{})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := duckdb.Open(ctx, duckdb.Options{AllowedDirs: []string{filepath.Dir(files[0])}, TempDir: filepath.Join(t.TempDir(), "duck")})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	s, err := eng.Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Register(ctx, "t", duckdb.Source{Format: "parquet", Paths: files}); err != nil {
		t.Fatalf("the current snapshot's files do not load: %v", err)
	}
	res, err := s.Query(ctx, "SELECT count(*), count(DISTINCT gen), coalesce(max(gen), 0) FROM t")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	res.Next()
	if err := res.Scan(&rows, &gens, &gen); err != nil {
		t.Fatal(err)
	}
	return rows, gens, gen
}

// unreferenced lists the files under the table's location that its
// metadata does not reach: the metadata files it lists, and every
// snapshot's manifest list, manifests and data files. It reads the
// catalog with iceberg-go directly, not through package table.
func unreferenced(t *testing.T, w *crashWorld) []string {
	t.Helper()
	cat, err := sqlcat.NewCatalog(table.CatalogName, w.store.DB(), sqlcat.SQLite, iceberg.Properties{"warehouse": "file://" + filepath.Join(w.dir, "lake")})
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := cat.LoadTable(ctx, icetable.Identifier{crashRef.Namespace, crashRef.Name})
	if err != nil {
		return nil // no table yet: nothing can reference or orphan files
	}
	fsys, err := tbl.FS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ref := map[string]bool{tbl.MetadataLocation(): true}
	for e := range tbl.Metadata().PreviousFiles() {
		ref[e.MetadataFile] = true
	}
	for _, s := range tbl.Metadata().Snapshots() {
		ref[s.ManifestList] = true
		mans, err := s.Manifests(fsys)
		if err != nil {
			t.Fatalf("snapshot %d: %v", s.SnapshotID, err)
		}
		for _, m := range mans {
			ref[m.FilePath()] = true
			for e, err := range m.Entries(fsys, false) {
				if err != nil {
					t.Fatalf("manifest %s: %v", m.FilePath(), err)
				}
				ref[e.DataFile().FilePath()] = true
			}
		}
	}
	root := strings.TrimPrefix(tbl.Location(), "file://")
	var left []string
	err = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !ref["file://"+p] && !ref[p] {
			left = append(left, p)
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	slices.Sort(left)
	return left
}
