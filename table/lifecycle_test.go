package table

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	iceio "github.com/apache/iceberg-go/io"

	"github.com/rhizome-mesh/rhizome"
)

func TestSchemaEvolution(t *testing.T) {
	for _, b := range []backend{{"sqlite", "file"}, {"postgres", "s3"}} {
		t.Run(b.String(), func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, b)
			ref := Ref{"customer", "profiles_v1"}
			e.publish(t, ref, Replace, nil, people(0, 2))

			// A new column is fine; old rows read it as null.
			scored := rows{schema: idNameScore, json: []string{`{"id": 7, "name": "p7", "score": 0.5}`}}
			s2 := e.publish(t, ref, Append, nil, scored)
			if got := colNames(s2.Schema); !slices.Equal(got, []string{"id", "name", "score"}) {
				t.Fatalf("schema after adding score: %v", got)
			}
			if s2.Schema[2].Type != "double" {
				t.Errorf("score is %s, want double", s2.Schema[2].Type)
			}
			n, sc := e.icebergRows(t, ref)
			if n != 3 || sc.NumFields() != 3 {
				t.Fatalf("iceberg-go reads %d rows of %v, want 3 rows of 3 columns", n, sc)
			}
			// The mapping from names to field ids learned the new column:
			// the score of the new file reads back, not as null.
			if got := e.scores(t, ref); !slices.Equal(got, []string{"(null)", "(null)", "0.5"}) {
				t.Errorf("scores %v", got)
			}
			// Replacing with files that carry the new column is fine too.
			e.publish(t, ref, Replace, nil, scored)

			before := e.files(t)
			cur, _ := e.cat.Current(ctx, ref)
			for name, c := range map[string]struct {
				r     rows
				names []string
			}{
				"drop":   {rows{schema: idOnly, json: []string{`{"id": 1}`}}, []string{"name", "score"}},
				"retype": {rows{schema: idAsString, json: []string{`{"id": "x", "name": "y"}`}}, []string{"id", "score"}},
			} {
				t.Run(name, func(t *testing.T) {
					_, err := e.cat.Publish(ctx, PublishRequest{Ref: ref, Mode: Replace, Files: []string{e.parquetFile(t, c.r)}})
					wantCode(t, err, rhizome.EConflict)
					if !strings.Contains(err.Error(), "needs a new major product version") {
						t.Errorf("error %q does not say a new major version is needed", err)
					}
					for _, n := range c.names {
						if !strings.Contains(err.Error(), n) {
							t.Errorf("error %q does not name column %s", err, n)
						}
					}
				})
			}
			after, _ := e.cat.Current(ctx, ref)
			if after.ID != cur.ID {
				t.Errorf("a refused publish moved the table from %d to %d", cur.ID, after.ID)
			}
			if got := e.files(t); !slices.Equal(got, before) {
				t.Errorf("a refused publish changed the files:\nbefore %v\nafter  %v", before, got)
			}
		})
	}
}

// TestRequiredColumns: a file whose columns are required (NOT NULL) and
// one whose columns are optional publish to the same table.
func TestRequiredColumns(t *testing.T) {
	e := newEnv(t, backend{"sqlite", "file"})
	ref := Ref{"sales", "strict_v1"}
	notNull := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}, {Name: "name", Type: arrow.BinaryTypes.String}}, nil)
	s1 := e.publish(t, ref, Replace, nil, rows{schema: notNull, json: []string{`{"id": 1, "name": "a"}`}})
	if s1.Schema[0].Required {
		t.Errorf("column id is required: %+v", s1.Schema)
	}
	e.publish(t, ref, Append, nil, rows{schema: idName, json: []string{`{"id": 2, "name": null}`}})
	e.publish(t, ref, Append, nil, rows{schema: notNull, json: []string{`{"id": 3, "name": "c"}`}})
	if n, _ := e.icebergRows(t, ref); n != 3 {
		t.Errorf("iceberg-go reads %d rows, want 3", n)
	}
}

// scores reads the score column through iceberg-go, sorted.
func (e *env) scores(t *testing.T, ref Ref) []string {
	t.Helper()
	tbl, err := e.cat.cat.LoadTable(context.Background(), ref.ident())
	if err != nil {
		t.Fatal(err)
	}
	at, err := tbl.Scan().ToArrowTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer at.Release()
	var out []string
	idx := at.Schema().FieldIndices("score")
	for _, chunk := range at.Column(idx[0]).Data().Chunks() {
		for i := 0; i < chunk.Len(); i++ {
			out = append(out, chunk.ValueStr(i))
		}
	}
	slices.Sort(out)
	return out
}

func colNames(cols []Column) []string {
	var out []string
	for _, c := range cols {
		out = append(out, c.Name)
	}
	return out
}

// TestFailedPublish: a publish that fails after files were checked, or
// after they were uploaded, leaves the table and its files as they were.
func TestFailedPublish(t *testing.T) {
	for _, b := range []backend{{"sqlite", "file"}, {"sqlite", "s3"}} {
		t.Run(b.String(), func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, b)
			ref := Ref{"sales", "orders_v1"}
			s1 := e.publish(t, ref, Replace, nil, people(0, 3))
			before := e.files(t)

			good := e.parquetFile(t, people(10, 2))
			corrupt := filepath.Join(e.dir, "corrupt.parquet")
			if err := os.WriteFile(corrupt, []byte("PAR1 this is not parquet at all PAR1"), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := e.cat.Publish(ctx, PublishRequest{Ref: ref, Mode: Replace, Files: []string{good, corrupt, good}})
			wantCode(t, err, rhizome.EInvalid)
			if !strings.Contains(err.Error(), "corrupt.parquet") {
				t.Errorf("error %q does not name the file", err)
			}

			// Fail after the upload, before the commit.
			e.cat.testHookBeforeCommit = func() error { return errors.New("injected: the process is stopping") }
			_, err = e.cat.Publish(ctx, PublishRequest{Ref: ref, Mode: Append, Files: []string{good, e.parquetFile(t, people(20, 1))}})
			e.cat.testHookBeforeCommit = nil
			if err == nil || !strings.Contains(err.Error(), "injected") {
				t.Fatalf("publish with a failing commit: %v", err)
			}

			// A context cancelled before the publish, or after the upload.
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := e.cat.Publish(cctx, PublishRequest{Ref: ref, Mode: Append, Files: []string{good}}); err == nil {
				t.Fatal("publish with a cancelled context succeeded")
			}
			cctx, cancel = context.WithCancel(ctx)
			e.cat.testHookBeforeCommit = func() error { cancel(); return nil }
			_, err = e.cat.Publish(cctx, PublishRequest{Ref: ref, Mode: Append, Files: []string{good}})
			e.cat.testHookBeforeCommit = nil
			if err == nil {
				t.Fatal("publish cancelled after the upload succeeded")
			}

			cur, err := e.cat.Current(ctx, ref)
			if err != nil || cur.ID != s1.ID || cur.Rows != 3 {
				t.Fatalf("current %+v, %v; want snapshot %d with 3 rows", cur, err, s1.ID)
			}
			if got := e.files(t); !slices.Equal(got, before) {
				t.Errorf("failed publishes changed the files:\nbefore %v\nafter  %v", before, got)
			}
			if n, _ := e.icebergRows(t, ref); n != 3 {
				t.Errorf("iceberg-go reads %d rows, want 3", n)
			}
		})
	}
}

// TestConcurrentPublish: publishes from one process serialize and all
// commit; publishes from two processes (two Catalogs on one database)
// either commit or fail with EConflict, and the table holds exactly the
// committed ones, with no files left by the others.
func TestConcurrentPublish(t *testing.T) {
	for _, b := range []backend{{"sqlite", "file"}, {"postgres", "file"}} {
		t.Run(b.String(), func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, b)
			ref := Ref{"sales", "lines_v1"}
			e.publish(t, ref, Replace, nil, people(0, 1))

			committed, conflicts := e.concurrently(t, ref, e.cat, e.cat, e.cat)
			if committed != 9 || conflicts != 0 {
				t.Fatalf("one process: %d committed, %d conflicts; want all 9 to commit", committed, conflicts)
			}
			more, conflicts := e.concurrently(t, ref, e.cat, e.open(t), e.open(t))
			if more == 0 {
				t.Fatal("no concurrent publish committed")
			}
			t.Logf("three processes: %d committed, %d conflicts", more, conflicts)
			committed += more

			cur, err := e.cat.Current(ctx, ref)
			if err != nil {
				t.Fatal(err)
			}
			if want := 1 + 2*committed; cur.Rows != want {
				t.Errorf("current snapshot has %d rows, want %d", cur.Rows, want)
			}
			if n, _ := e.icebergRows(t, ref); n != 1+2*committed {
				t.Errorf("iceberg-go reads %d rows, want %d", n, 1+2*committed)
			}
			all, _ := e.cat.Snapshots(ctx, ref)
			if int64(len(all)) != 1+committed {
				t.Errorf("%d snapshots, want %d", len(all), 1+committed)
			}
			var data int64
			for _, f := range e.files(t) {
				if strings.Contains(f, "/data/") {
					data++
				}
			}
			if data != 1+committed {
				t.Errorf("%d data files, want %d", data, 1+committed)
			}
			// The losers left no data files or manifests behind. (A
			// metadata.json that iceberg-go's SQL catalog wrote before
			// losing the compare-and-swap may remain: RemoveOrphans.)
			orphans, err := e.cat.RemoveOrphans(ctx, ref, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range orphans {
				if !strings.HasSuffix(o, ".metadata.json") {
					t.Errorf("orphan %s", o)
				}
			}
			t.Logf("orphans: %v", orphans)
		})
	}
}

// concurrently appends three 2-row files through each catalog at once
// and counts the publishes that committed and those that got EConflict.
func (e *env) concurrently(t *testing.T, ref Ref, cats ...*Catalog) (committed int64, conflicts int) {
	t.Helper()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for i, c := range cats {
		for j := range 3 {
			file := e.parquetFile(t, people(1000+100*i+10*j, 2))
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := c.Publish(context.Background(), PublishRequest{Ref: ref, Mode: Append, Files: []string{file},
					Properties: map[string]string{"run_id": fmt.Sprintf("run-%d-%d", i, j)}})
				mu.Lock()
				defer mu.Unlock()
				switch rhizome.Code(err) {
				case "":
					committed++
				case rhizome.EConflict:
					conflicts++
				default:
					errs = append(errs, err)
				}
			}()
		}
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("publishes failed other than with EConflict: %v", errs)
	}
	return committed, conflicts
}

// TestReadersNeverSeeAMix reads the table while replaces swap a 3-row
// version (one file) and a 7-row version (two files): a reader sees 3 or
// 7 rows, never a part of one or both.
func TestReadersNeverSeeAMix(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, backend{"sqlite", "file"})
	ref := Ref{"sales", "swap_v1"}
	e.publish(t, ref, Replace, nil, people(0, 3))
	small := []string{e.parquetFile(t, people(0, 3))}
	big := []string{e.parquetFile(t, people(0, 3)), e.parquetFile(t, people(3, 4))}

	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			files, _, err := e.cat.DataFiles(ctx, ref, AsOf{})
			if err != nil {
				t.Error(err)
				return
			}
			var n int64
			for _, f := range files {
				n += parquetRows(t, f)
			}
			if n != 3 && n != 7 {
				t.Errorf("a reader saw %d rows in %d files", n, len(files))
				return
			}
		}
	}()
	for i := range 10 {
		files := small
		if i%2 == 0 {
			files = big
		}
		if _, err := e.cat.Publish(ctx, PublishRequest{Ref: ref, Mode: Replace, Files: files}); err != nil {
			t.Error(err)
			break
		}
	}
	close(done)
	wg.Wait()
}

func TestRemoveOrphans(t *testing.T) {
	for _, b := range []backend{{"sqlite", "file"}, {"postgres", "s3"}} {
		t.Run(b.String(), func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, b)
			ref := Ref{"support", "tickets_v1"}
			e.publish(t, ref, Replace, nil, people(0, 2))
			e.publish(t, ref, Append, nil, people(2, 2))

			tbl, err := e.cat.cat.LoadTable(ctx, ref.ident())
			if err != nil {
				t.Fatal(err)
			}
			stray := tbl.Location() + "/data/20260101T000000Z-crashed-00000.parquet"
			fsys, err := tbl.FS(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if m, ok := fsys.(iceio.MkdirAllIO); ok && b.storage == "file" {
				if err := m.MkdirAll(tbl.Location() + "/data"); err != nil {
					t.Fatal(err)
				}
			}
			if err := fsys.(iceio.WriteFileIO).WriteFile(stray, []byte("half an upload")); err != nil {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond) // older than "now" when cleaning

			removed, err := e.cat.RemoveOrphans(ctx, ref, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			want := stray
			if p, ok := localPath(stray); ok {
				want = p
			}
			if !slices.Equal(removed, []string{want}) {
				t.Errorf("removed %v, want [%s]", removed, want)
			}
			if slices.Contains(e.files(t), stray) {
				t.Errorf("%s is still there", stray)
			}
			if n, _ := e.icebergRows(t, ref); n != 4 {
				t.Errorf("iceberg-go reads %d rows after RemoveOrphans, want 4", n)
			}
			again, err := e.cat.RemoveOrphans(ctx, ref, time.Now())
			if err != nil || len(again) != 0 {
				t.Errorf("second RemoveOrphans: %v, %v", again, err)
			}
		})
	}
}

// TestRemoveOrphansKeepsNewFiles: an unreferenced file modified at or
// after the cutoff may be another worker's upload for a publish it has not
// committed yet; it stays, and an older one goes.
func TestRemoveOrphansKeepsNewFiles(t *testing.T) {
	for _, b := range []backend{{"sqlite", "file"}, {"postgres", "s3"}} {
		t.Run(b.String(), func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, b)
			ref := Ref{"support", "tickets_v1"}
			e.publish(t, ref, Replace, nil, people(0, 2))

			tbl, err := e.cat.cat.LoadTable(ctx, ref.ident())
			if err != nil {
				t.Fatal(err)
			}
			fsys, err := tbl.FS(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if m, ok := fsys.(iceio.MkdirAllIO); ok && b.storage == "file" {
				if err := m.MkdirAll(tbl.Location() + "/data"); err != nil {
					t.Fatal(err)
				}
			}
			write := func(name string) string {
				t.Helper()
				loc := tbl.Location() + "/data/" + name
				if err := fsys.(iceio.WriteFileIO).WriteFile(loc, []byte("an upload")); err != nil {
					t.Fatal(err)
				}
				return loc
			}
			old := write("20260101T000000Z-crashed-00000.parquet")
			// Stores may keep whole seconds: a second apart, the two
			// files' times differ.
			time.Sleep(1100 * time.Millisecond)
			fresh := write("20260101T000001Z-uploading-00000.parquet")
			// The cutoff is the fresh file's own time: "at" the cutoff
			// stays. (iceberg-go's own cutoff falls a little later, so the
			// file is a candidate and RemoveOrphans' recheck must keep it.)
			f, err := fsys.Open(fresh)
			if err != nil {
				t.Fatal(err)
			}
			info, err := f.Stat()
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			cutoff := info.ModTime()

			removed, err := e.cat.RemoveOrphans(ctx, ref, cutoff)
			if err != nil {
				t.Fatal(err)
			}
			if p, ok := localPath(old); ok {
				old = p
			}
			if p, ok := localPath(fresh); ok {
				fresh = p
			}
			if !slices.Equal(removed, []string{old}) {
				t.Errorf("removed %v, want [%s]", removed, old)
			}
			files := e.files(t)
			if slices.Contains(files, old) {
				t.Errorf("old orphan %s is still there", old)
			}
			if !slices.Contains(files, fresh) {
				t.Errorf("fresh file %s was removed; files: %v", fresh, files)
			}
			if n, _ := e.icebergRows(t, ref); n != 2 {
				t.Errorf("iceberg-go reads %d rows after RemoveOrphans, want 2", n)
			}
			// Once the cutoff passes it, the fresh file goes too.
			again, err := e.cat.RemoveOrphans(ctx, ref, time.Now().Add(time.Second))
			if err != nil || len(again) != 1 {
				t.Errorf("RemoveOrphans after the cutoff passed: %v, %v; want the fresh file", again, err)
			}
		})
	}
}

// TestRemoveOrphansOfUncreatedTable: a first publish that died before its
// create committed left files at the table's default location while the
// catalog has no table; RemoveOrphans removes the old ones, keeps new ones
// (a concurrent first publish), and says ENotFound when nothing is there.
func TestRemoveOrphansOfUncreatedTable(t *testing.T) {
	for _, b := range []backend{{"sqlite", "file"}, {"postgres", "s3"}} {
		t.Run(b.String(), func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, b)
			ref := Ref{"support", "never_v1"}
			if _, err := e.cat.RemoveOrphans(ctx, ref, time.Now()); rhizome.Code(err) != rhizome.ENotFound {
				t.Fatalf("RemoveOrphans of a table with no files: %v, want ENotFound", err)
			}
			loc := strings.TrimSuffix(e.cat.props["warehouse"], "/") + "/support.db/never_v1"
			fsys, err := iceio.LoadFS(e.cat.withIO(ctx), e.cat.props, loc)
			if err != nil {
				t.Fatal(err)
			}
			write := func(name string) string {
				t.Helper()
				f := loc + "/" + name
				if m, ok := fsys.(iceio.MkdirAllIO); ok && b.storage == "file" {
					if err := m.MkdirAll(f[:strings.LastIndex(f, "/")]); err != nil {
						t.Fatal(err)
					}
				}
				if err := fsys.(iceio.WriteFileIO).WriteFile(f, []byte("{}")); err != nil {
					t.Fatal(err)
				}
				if p, ok := localPath(f); ok {
					return p
				}
				return f
			}
			old := write("metadata/00000-crashed.metadata.json")
			time.Sleep(1100 * time.Millisecond) // stores may keep whole seconds
			cutoff := time.Now()
			time.Sleep(1100 * time.Millisecond)
			fresh := write("metadata/00000-creating.metadata.json")

			removed, err := e.cat.RemoveOrphans(ctx, ref, cutoff)
			if err != nil || !slices.Equal(removed, []string{old}) {
				t.Fatalf("RemoveOrphans: %v %v; want [%s]", removed, err, old)
			}
			removed, err = e.cat.RemoveOrphans(ctx, ref, cutoff)
			if rhizome.Code(err) != rhizome.ENotFound || len(removed) != 0 {
				t.Errorf("again: %v %v; want nothing, ENotFound (the fresh file %s stays)", removed, err, fresh)
			}
			removed, err = e.cat.RemoveOrphans(ctx, ref, time.Now().Add(time.Second))
			if err != nil || !slices.Equal(removed, []string{fresh}) {
				t.Errorf("after the cutoff passed: %v %v; want [%s]", removed, err, fresh)
			}
		})
	}
}

func TestExpire(t *testing.T) {
	for _, b := range []backend{{"sqlite", "file"}, {"postgres", "s3"}} {
		t.Run(b.String(), func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, b)
			ref := Ref{"sales", "daily_v1"}
			s1 := e.publish(t, ref, Replace, nil, people(0, 1))
			s2 := e.publish(t, ref, Replace, nil, people(1, 2))
			s3 := e.publish(t, ref, Replace, nil, people(3, 3))
			old, _, err := e.cat.DataFiles(ctx, ref, AsOf{SnapshotID: s1.ID})
			if err != nil {
				t.Fatal(err)
			}

			// Nothing is older than s1: nothing expires.
			expired, err := e.cat.Expire(ctx, ref, s1.Time.Add(-time.Second), 1)
			if err != nil || len(expired) != 0 {
				t.Fatalf("Expire before s1: %v, %v", expired, err)
			}
			// Everything is old, but keep the last two.
			expired, err = e.cat.Expire(ctx, ref, time.Now(), 2)
			if err != nil || !slices.Equal(expired, []int64{s1.ID}) {
				t.Fatalf("Expire keeping 2: %v, %v; want [%d]", expired, err, s1.ID)
			}
			all, _ := e.cat.Snapshots(ctx, ref)
			if len(all) != 2 || all[0].ID != s2.ID || all[1].ID != s3.ID {
				t.Errorf("snapshots after expiry %+v", all)
			}
			_, _, err = e.cat.DataFiles(ctx, ref, AsOf{SnapshotID: s1.ID})
			wantCode(t, err, rhizome.ENotFound)
			for _, f := range old {
				if _, err := e.cat.Fetch(ctx, f, t.TempDir()); b.storage == "s3" && rhizome.Code(err) != rhizome.ENotFound {
					t.Errorf("fetch expired %s: %v, want ENotFound", f, err)
				}
				if _, err := os.Stat(f); b.storage == "file" && !errors.Is(err, os.ErrNotExist) {
					t.Errorf("expired data file %s is still there (%v)", f, err)
				}
			}
			// keepLast 0 still keeps the current snapshot.
			if _, err := e.cat.Expire(ctx, ref, time.Now(), 0); err != nil {
				t.Fatal(err)
			}
			cur, err := e.cat.Current(ctx, ref)
			if err != nil || cur.ID != s3.ID {
				t.Fatalf("current after expiring all: %+v, %v", cur, err)
			}
			if n, _ := e.icebergRows(t, ref); n != 3 {
				t.Errorf("iceberg-go reads %d rows, want 3", n)
			}
			_, err = e.cat.Expire(ctx, Ref{"sales", "nope_v1"}, time.Now(), 1)
			wantCode(t, err, rhizome.ENotFound)
		})
	}
}
