package stream_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/stream"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock is a settable fake clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

const (
	product = "dp.clicks"
	port    = "events"
	maxBody = 1 << 20
)

func open(t *testing.T, c rhizome.Clock) (*stream.Spool, string) {
	t.Helper()
	root := t.TempDir()
	s, err := stream.Open(root, c)
	if err != nil {
		t.Fatal(err)
	}
	return s, root
}

func put(t *testing.T, s *stream.Spool, id, body string) stream.Batch {
	t.Helper()
	b, err := s.Put(context.Background(), product, port, id, strings.NewReader(body), maxBody)
	if err != nil {
		t.Fatalf("Put %s: %v", id, err)
	}
	return b
}

func names(files []string) []string {
	var out []string
	for _, f := range files {
		out = append(out, filepath.Base(f))
	}
	return out
}

func TestPutValidatesNDJSON(t *testing.T) {
	s, root := open(t, newClock())
	for _, tc := range []struct {
		name, body string
		code       rhizome.ErrorCode
		want       string
	}{
		{"array", "{\"a\":1}\n[1,2]\n", rhizome.EInvalid, "line 2 is not a JSON object"},
		{"broken", "{\"a\":1}\n\n{\"a\":\n", rhizome.EInvalid, "line 3 is not a JSON object"},
		{"scalar", "42\n", rhizome.EInvalid, "line 1 is not a JSON object"},
		{"latin1", "{}\n{\"name\":\"Jos\xe9\"}\n", rhizome.EInvalid, "line 2 is not a JSON object"},
		{"empty", "\n  \n", rhizome.EInvalid, "has no rows"},
		{"too-large", strings.Repeat("{\"a\":1}\n", 200), rhizome.ETooLarge, "over 100 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			limit := int64(maxBody)
			if tc.code == rhizome.ETooLarge {
				limit = 100
			}
			_, err := s.Put(context.Background(), product, port, "b-"+tc.name, strings.NewReader(tc.body), limit)
			if rhizome.Code(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v (%s), want %s containing %q", err, rhizome.Code(err), tc.code, tc.want)
			}
		})
	}
	if ps := rhizome.ProblemsOf(mustErr(s.Put(context.Background(), product, port, "b", strings.NewReader("{}\n{}\nnull\n"), maxBody))); len(ps) != 1 || ps[0].Line != 3 {
		t.Errorf("problems = %v, want one at line 3", ps)
	}
	// Nothing invalid was spooled, and no temp file is left.
	files, _, _, err := s.Pending(product, port)
	if err != nil || len(files) != 0 {
		t.Errorf("Pending = %v, %v; want none", files, err)
	}
	if left, _ := filepath.Glob(filepath.Join(root, product, port, "tmp", "*")); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
	for _, bad := range []string{"", "../x", "a/b", ".hidden"} {
		if _, err := s.Put(context.Background(), product, port, bad, strings.NewReader("{}"), maxBody); rhizome.Code(err) != rhizome.EInvalid {
			t.Errorf("batch id %q: err = %v, want invalid", bad, err)
		}
	}
}

func mustErr(_ stream.Batch, err error) error { return err }

func TestPutSpoolsAndCounts(t *testing.T) {
	c := newClock()
	s, root := open(t, c)
	long := `{"s":"` + strings.Repeat("x", 200<<10) + `"}`      // longer than the read buffer
	b := put(t, s, "b1", "{\"a\":1}\r\n\n  {\"a\":2}  \n"+long) // no final newline
	if b.ID != "b1" || b.Rows != 3 || b.Duplicate || !b.At.Equal(c.Now()) {
		t.Fatalf("Batch = %+v", b)
	}
	want := "{\"a\":1}\n{\"a\":2}\n" + long + "\n"
	got, err := os.ReadFile(filepath.Join(root, product, port, "pending", "000000000001-b1.ndjson"))
	if err != nil || string(got) != want {
		t.Fatalf("spooled file = %.60q, %v", got, err)
	}
	if b.Bytes != int64(len(want)) {
		t.Errorf("Bytes = %d, want %d", b.Bytes, len(want))
	}
	c.Add(time.Second)
	put(t, s, "b2", `{"a":3}`)
	files, rows, oldest, err := s.Pending(product, port)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names(files), []string{"000000000001-b1.ndjson", "000000000002-b2.ndjson"}) || rows != 4 || !oldest.Equal(b.At) {
		t.Errorf("Pending = %v, %d, %v", names(files), rows, oldest)
	}
}

func TestPutIsIdempotentUnderConcurrency(t *testing.T) {
	s, _ := open(t, newClock())
	var wg sync.WaitGroup
	results := make([]stream.Batch, 8)
	errs := make([]error, 8)
	for i := range 8 {
		wg.Go(func() {
			results[i], errs[i] = s.Put(context.Background(), product, port, "same", strings.NewReader("{\"a\":1}\n{\"a\":2}\n"), maxBody)
		})
	}
	wg.Wait()
	fresh := 0
	for i := range 8 {
		if errs[i] != nil {
			t.Fatalf("Put %d: %v", i, errs[i])
		}
		if !results[i].Duplicate {
			fresh++
		}
		if results[i].ID != "same" || results[i].Rows != 2 {
			t.Errorf("Put %d = %+v", i, results[i])
		}
	}
	if fresh != 1 {
		t.Errorf("%d Puts were not duplicates, want 1", fresh)
	}
	files, rows, _, _ := s.Pending(product, port)
	if len(files) != 1 || rows != 2 {
		t.Errorf("Pending = %v, %d rows; want one file of 2 rows", names(files), rows)
	}
}

func TestClaimCommitRelease(t *testing.T) {
	s, root := open(t, newClock())
	portDir := filepath.Join(root, product, port)
	put(t, s, "b1", `{"a":1}`)
	put(t, s, "b2", `{"a":2}`)

	// A failed run hands its claim back; the next run gets it.
	got, err := s.Claim(product, port, "run_1")
	if err != nil || !slices.Equal(names(got), []string{"000000000001-b1.ndjson", "000000000002-b2.ndjson"}) {
		t.Fatalf("Claim = %v, %v", names(got), err)
	}
	if files, _, _, _ := s.Pending(product, port); len(files) != 0 {
		t.Errorf("pending after Claim: %v", names(files))
	}
	put(t, s, "b3", `{"a":3}`) // arrives during the run
	if err := s.Release("run_1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(portDir, "claimed", "run_1")); !os.IsNotExist(err) {
		t.Errorf("claim of run_1 still there: %v", err)
	}
	files, rows, _, _ := s.Pending(product, port)
	if len(files) != 3 || rows != 3 {
		t.Fatalf("Pending after Release = %v, %d", names(files), rows)
	}

	// A retried attempt of a run keeps its claim and adds what is pending.
	got, _ = s.Claim(product, port, "run_2")
	put(t, s, "b4", `{"a":4}`)
	got2, err := s.Claim(product, port, "run_2")
	if err != nil || len(got) != 3 || len(got2) != 4 {
		t.Fatalf("Claim twice = %v then %v, %v", names(got), names(got2), err)
	}
	if err := s.Commit("run_2"); err != nil {
		t.Fatal(err)
	}
	if files, _, _, _ := s.Pending(product, port); len(files) != 0 {
		t.Errorf("pending after Commit: %v", names(files))
	}
	ids, err := os.ReadFile(filepath.Join(portDir, "committed.ids"))
	if err != nil || string(ids) != "b1 run_2\nb2 run_2\nb3 run_2\nb4 run_2\n" {
		t.Errorf("committed.ids = %q, %v", ids, err)
	}
	if left, _ := filepath.Glob(filepath.Join(portDir, "claimed", "*", "*")); len(left) != 0 {
		t.Errorf("data kept after Commit: %v", left)
	}
	// Runs that claimed nothing commit and release nothing.
	if err := s.Commit("run_none"); err != nil {
		t.Error(err)
	}
	if err := s.Release("run_none"); err != nil {
		t.Error(err)
	}
	if got, err := s.Claim(product, port, "run_3"); err != nil || len(got) != 0 {
		t.Errorf("Claim of nothing = %v, %v", got, err)
	}
}

func TestCommittedBatchIsDuplicate(t *testing.T) {
	c := newClock()
	s, root := open(t, c)
	first := put(t, s, "b1", "{\"a\":1}\n{\"a\":2}\n")
	if _, err := s.Claim(product, port, "run_1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit("run_1"); err != nil {
		t.Fatal(err)
	}
	c.Add(time.Hour)
	check := func(s *stream.Spool) {
		t.Helper()
		again := put(t, s, "b1", `{"other":true}`)
		if !again.Duplicate || again.Rows != 2 || !again.At.Equal(first.At) {
			t.Errorf("re-put = %+v, want the first batch as a duplicate", again)
		}
		if files, _, _, _ := s.Pending(product, port); len(files) != 0 {
			t.Errorf("a committed batch was spooled again: %v", names(files))
		}
	}
	check(s)
	// The dedupe survives a restart.
	s2, err := stream.Open(root, c)
	if err != nil {
		t.Fatal(err)
	}
	check(s2)
}

func TestOpenRecovers(t *testing.T) {
	c := newClock()
	s, root := open(t, c)
	put(t, s, "b1", `{"a":1}`)
	if _, err := s.Claim(product, port, "run_dead"); err != nil {
		t.Fatal(err)
	}
	// A spooled file the index lacks: the process died between the rename
	// and the log append.
	pending := filepath.Join(root, product, port, "pending")
	if err := os.WriteFile(filepath.Join(pending, "000000000007-orphan.ndjson"), []byte("{}\n{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A torn last index line and an upload cut short.
	portDir := filepath.Join(root, product, port)
	f, err := os.OpenFile(filepath.Join(portDir, "batches.log"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"id":"torn","se`)
	f.Close()
	if err := os.WriteFile(filepath.Join(portDir, "tmp", "b5-123.tmp"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	s2, err := stream.Open(root, c)
	if err != nil {
		t.Fatal(err)
	}
	files, rows, _, err := s2.Pending(product, port)
	if err != nil || !slices.Equal(names(files), []string{"000000000001-b1.ndjson", "000000000007-orphan.ndjson"}) || rows != 3 {
		t.Fatalf("Pending after Open = %v, %d, %v; want the dead run's claim back and the orphan", names(files), rows, err)
	}
	if b := put(t, s2, "orphan", `{}`); !b.Duplicate || b.Rows != 2 {
		t.Errorf("orphan re-put = %+v, want a duplicate of 2 rows", b)
	}
	if b := put(t, s2, "b9", `{}`); b.Duplicate {
		t.Errorf("new batch = %+v", b)
	}
	if files, _, _, _ := s2.Pending(product, port); filepath.Base(files[2]) != "000000000008-b9.ndjson" {
		t.Errorf("sequence did not continue after the orphan: %v", names(files))
	}
	if left, _ := filepath.Glob(filepath.Join(portDir, "tmp", "*")); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
	// The index reads back whole after the repair and the appends.
	s3, err := stream.Open(root, c)
	if err != nil {
		t.Fatal(err)
	}
	if files, rows, _, err := s3.Pending(product, port); err != nil || len(files) != 3 || rows != 4 {
		t.Errorf("after reopening: %v, %d rows, %v", names(files), rows, err)
	}
}

// TestOpenCommitsPublishedClaims: a process that died after its run
// published, but before it committed the claim, must not deliver the
// batches again.
func TestOpenCommitsPublishedClaims(t *testing.T) {
	c := newClock()
	s, root := open(t, c)
	put(t, s, "b1", `{"a":1}`+"\n")
	put(t, s, "b2", `{"a":2}`+"\n")
	if _, err := s.Claim(product, port, "run_published"); err != nil {
		t.Fatal(err)
	}
	var asked []string
	s2, err := stream.OpenWith(root, c, func(p, run string) bool {
		asked = append(asked, p+"/"+run)
		return run == "run_published"
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(asked) != 1 || asked[0] != product+"/run_published" {
		t.Fatalf("published asked about %v", asked)
	}
	files, rows, _, err := s2.Pending(product, port)
	if err != nil || len(files) != 0 || rows != 0 {
		t.Fatalf("a published claim went back to pending: %v %d %v", files, rows, err)
	}
	if b := put(t, s2, "b1", `{"a":1}`+"\n"); !b.Duplicate {
		t.Fatal("a published batch was accepted again")
	}
}
