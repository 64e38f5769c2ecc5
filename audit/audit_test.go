package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rhizome-mesh/rhizome/audit"
	"github.com/rhizome-mesh/rhizome/internal/testenv"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/metastore/postgres"
	"github.com/rhizome-mesh/rhizome/metastore/sqlite"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, true)) }

type backend struct {
	name string
	open func(t *testing.T) (metastore.Store, *sql.DB, func(string) string)
}

// rebinders turn ? into $n for Postgres.
func pgRebind(q string) string {
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

var backends = []backend{
	{"sqlite", func(t *testing.T) (metastore.Store, *sql.DB, func(string) string) {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "m.db"), metastore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s, s.DB(), func(q string) string { return q }
	}},
	{"postgres", func(t *testing.T) (metastore.Store, *sql.DB, func(string) string) {
		s, err := postgres.Open(context.Background(), testenv.NewDatabase(t), metastore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s, s.DB(), pgRebind
	}},
}

func forEach(t *testing.T, fn func(t *testing.T, l *audit.Log, db *sql.DB, rebind func(string) string)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s, db, rebind := b.open(t)
			l := audit.Open(audit.Options{Store: s})
			t.Cleanup(func() { l.Close() })
			fn(t, l, db, rebind)
		})
	}
}

func record(t *testing.T, l *audit.Log, n int) {
	t.Helper()
	for i := range n {
		err := l.Record(context.Background(), audit.Entry{Actor: fmt.Sprintf("user%d", i%3), Action: "data.read", Via: "rest",
			ProductID: fmt.Sprintf("dp.p.%d", i%2), Columns: []string{"a", "b"}, Query: "/api/v1/x?a=1&b=<2>", Decision: audit.Allow,
			PolicyIDs: []string{"pii"}, Masks: map[string]string{"email": "hash"}, Rows: int64(i),
			Details: map[string]any{"big": int64(1) << 60, "nested": struct{ Z, A int }{1, 2}, "f": 1.5}})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func verify(t *testing.T, l *audit.Log) *audit.Verification {
	t.Helper()
	v, err := l.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestChainVerifies(t *testing.T) {
	forEach(t, func(t *testing.T, l *audit.Log, _ *sql.DB, _ func(string) string) {
		if v := verify(t, l); !v.OK || v.Entries != 0 {
			t.Fatalf("empty log: %+v", v)
		}
		record(t, l, 7)
		v := verify(t, l)
		if !v.OK || v.Entries != 7 || v.Head == "" {
			t.Fatalf("untouched chain: %+v", v)
		}
	})
}

func TestTamper(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(t *testing.T, db *sql.DB, rebind func(string) string)
		at     int64
	}{
		{"edit body", func(t *testing.T, db *sql.DB, rebind func(string) string) {
			exec(t, db, rebind(`UPDATE records SET body = REPLACE(body, '"rows":3', '"rows":0') WHERE collection = 'audit' AND id = ?`), audit.PositionID(4))
		}, 4},
		{"edit actor index", func(t *testing.T, db *sql.DB, rebind func(string) string) {
			exec(t, db, rebind(`UPDATE records SET subject = 'mallory' WHERE collection = 'audit' AND id = ?`), audit.PositionID(2))
		}, 2},
		{"delete one", func(t *testing.T, db *sql.DB, rebind func(string) string) {
			exec(t, db, rebind(`DELETE FROM records WHERE collection = 'audit' AND id = ?`), audit.PositionID(5))
		}, 5},
		{"delete the newest", func(t *testing.T, db *sql.DB, rebind func(string) string) {
			exec(t, db, rebind(`DELETE FROM records WHERE collection = 'audit' AND id = ?`), audit.PositionID(7))
		}, 7},
		{"delete the head", func(t *testing.T, db *sql.DB, rebind func(string) string) {
			exec(t, db, rebind(`DELETE FROM records WHERE collection = 'audit.head'`))
		}, 7},
		{"delete the two newest", func(t *testing.T, db *sql.DB, rebind func(string) string) {
			exec(t, db, rebind(`DELETE FROM records WHERE collection = 'audit' AND id = ?`), audit.PositionID(7))
			exec(t, db, rebind(`DELETE FROM records WHERE collection = 'audit' AND id = ?`), audit.PositionID(6))
		}, 6},
		{"swap two bodies", func(t *testing.T, db *sql.DB, rebind func(string) string) {
			var b2, b3 string
			if err := db.QueryRow(rebind(`SELECT body FROM records WHERE collection = 'audit' AND id = ?`), audit.PositionID(2)).Scan(&b2); err != nil {
				t.Fatal(err)
			}
			if err := db.QueryRow(rebind(`SELECT body FROM records WHERE collection = 'audit' AND id = ?`), audit.PositionID(3)).Scan(&b3); err != nil {
				t.Fatal(err)
			}
			exec(t, db, rebind(`UPDATE records SET body = ? WHERE collection = 'audit' AND id = ?`), b3, audit.PositionID(2))
			exec(t, db, rebind(`UPDATE records SET body = ? WHERE collection = 'audit' AND id = ?`), b2, audit.PositionID(3))
		}, 2},
		{"swap two ids", func(t *testing.T, db *sql.DB, rebind func(string) string) {
			exec(t, db, rebind(`UPDATE records SET id = 'x' WHERE collection = 'audit' AND id = ?`), audit.PositionID(3))
			exec(t, db, rebind(`UPDATE records SET id = ? WHERE collection = 'audit' AND id = ?`), audit.PositionID(3), audit.PositionID(4))
			exec(t, db, rebind(`UPDATE records SET id = ? WHERE collection = 'audit' AND id = 'x'`), audit.PositionID(4))
		}, 3},
		{"rehash an edited entry", func(t *testing.T, db *sql.DB, rebind func(string) string) {
			// A forger who recomputes the edited entry's own hash still
			// breaks the next link.
			var body string
			if err := db.QueryRow(rebind(`SELECT body FROM records WHERE collection = 'audit' AND id = ?`), audit.PositionID(3)).Scan(&body); err != nil {
				t.Fatal(err)
			}
			var e audit.Entry
			if err := json.Unmarshal([]byte(body), &e); err != nil {
				t.Fatal(err)
			}
			e.Decision = "deny"
			e.Details = nil
			e.Hash = ""
			b, _ := json.Marshal(e)
			sum := sha256.Sum256(append([]byte(e.PrevHash), b...))
			e.Hash = hex.EncodeToString(sum[:])
			b, _ = json.Marshal(e)
			exec(t, db, rebind(`UPDATE records SET body = ?, state = 'deny' WHERE collection = 'audit' AND id = ?`), string(b), audit.PositionID(3))
		}, 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			forEach(t, func(t *testing.T, l *audit.Log, db *sql.DB, rebind func(string) string) {
				record(t, l, 7)
				if v := verify(t, l); !v.OK {
					t.Fatalf("before tampering: %+v", v)
				}
				c.tamper(t, db, rebind)
				v := verify(t, l)
				if v.OK || v.BrokenAt != c.at || v.Problem == "" {
					t.Fatalf("after %s: got %+v, want broken at %d", c.name, v, c.at)
				}
			})
		})
	}
}

func exec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	res, err := db.Exec(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("%s: %d rows", q, n)
	}
}

func TestConcurrentRecorders(t *testing.T) {
	forEach(t, func(t *testing.T, l *audit.Log, _ *sql.DB, _ func(string) string) {
		const goroutines, each = 16, 25
		var wg sync.WaitGroup
		errs := make(chan error, goroutines*each)
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					errs <- l.Record(context.Background(), audit.Entry{Actor: fmt.Sprintf("g%d", g), Action: "sql.query", Decision: audit.Allow, Rows: int64(i)})
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		v := verify(t, l)
		if !v.OK || v.Entries != goroutines*each {
			t.Fatalf("after concurrent records: %+v", v)
		}
	})
}

// Two Logs on one database (two processes) append to one chain.
func TestTwoWritersOneChain(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s, _, _ := b.open(t)
			l1, l2 := audit.Open(audit.Options{Store: s}), audit.Open(audit.Options{Store: s})
			var wg sync.WaitGroup
			for _, l := range []*audit.Log{l1, l2} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 30 {
						if err := l.Record(context.Background(), audit.Entry{Actor: "a", Action: "x", Decision: audit.Deny}); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			l1.Close()
			l2.Close()
			l := audit.Open(audit.Options{Store: s})
			defer l.Close()
			if v := verify(t, l); !v.OK || v.Entries != 60 {
				t.Fatalf("%+v", v)
			}
		})
	}
}

func TestQueryAndExport(t *testing.T) {
	forEach(t, func(t *testing.T, l *audit.Log, _ *sql.DB, _ func(string) string) {
		ctx := context.Background()
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := range 10 {
			action := "data.read"
			if i%2 == 1 {
				action = "POST /api/v1/apply"
			}
			if err := l.Record(ctx, audit.Entry{At: t0.Add(time.Duration(i) * time.Hour), Actor: fmt.Sprintf("u%d", i%2), Action: action,
				ProductID: fmt.Sprintf("dp.a.%d", i%3), Decision: audit.Allow}); err != nil {
				t.Fatal(err)
			}
		}
		p, err := l.Query(ctx, audit.Filter{ProductID: "dp.a.0"})
		if err != nil || len(p.Items) != 4 || p.Items[0].Seq != 10 {
			t.Fatalf("by product: %+v %v", p, err)
		}
		p, err = l.Query(ctx, audit.Filter{Principal: "u1", Action: "POST *"})
		if err != nil || len(p.Items) != 5 {
			t.Fatalf("by principal and action: %+v %v", p, err)
		}
		p, err = l.Query(ctx, audit.Filter{Since: t0.Add(2 * time.Hour), Until: t0.Add(5 * time.Hour)})
		if err != nil || len(p.Items) != 3 {
			t.Fatalf("by time: %+v %v", p, err)
		}
		// Paging.
		var seen []int64
		f := audit.Filter{Limit: 3}
		for {
			p, err := l.Query(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range p.Items {
				seen = append(seen, e.Seq)
			}
			if p.Next == "" {
				break
			}
			f.Cursor = p.Next
		}
		if len(seen) != 10 || seen[0] != 10 || seen[9] != 1 {
			t.Fatalf("paged: %v", seen)
		}

		var buf bytes.Buffer
		n, err := l.Export(ctx, &buf, audit.Filter{})
		if err != nil || n != 10 {
			t.Fatalf("export: %d %v", n, err)
		}
		sc := bufio.NewScanner(&buf)
		prev := ""
		for i := int64(1); sc.Scan(); i++ {
			var e audit.Entry
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatal(err)
			}
			if e.Seq != i || e.PrevHash != prev {
				t.Fatalf("export line %d: %+v", i, e)
			}
			prev = e.Hash
		}
	})
}

func TestRecordRejects(t *testing.T) {
	forEach(t, func(t *testing.T, l *audit.Log, _ *sql.DB, _ func(string) string) {
		ctx := context.Background()
		for _, e := range []audit.Entry{{Action: "x", Decision: "allow"}, {Actor: "a", Decision: "allow"}, {Actor: "a", Action: "x", Decision: "maybe"},
			{Actor: "a", Action: "x", Decision: "allow", Details: map[string]any{"c": make(chan int)}}} {
			if err := l.Record(ctx, e); err == nil {
				t.Errorf("%+v: accepted", e)
			}
		}
		l.Close()
		if err := l.Record(ctx, audit.Entry{Actor: "a", Action: "x", Decision: "allow"}); err == nil {
			t.Error("recorded after Close")
		}
	})
}

func BenchmarkRecord(b *testing.B) {
	s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "m.db"), metastore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	l := audit.Open(audit.Options{Store: s})
	defer l.Close()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := l.Record(context.Background(), audit.Entry{Actor: "a", Action: "data.read", ProductID: "dp.x.y", Decision: audit.Allow}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRecordOne is one caller at a time: the latency an audited
// request pays.
func BenchmarkRecordOne(b *testing.B) {
	s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "m.db"), metastore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	l := audit.Open(audit.Options{Store: s})
	defer l.Close()
	for b.Loop() {
		if err := l.Record(context.Background(), audit.Entry{Actor: "a", Action: "data.read", ProductID: "dp.x.y", Decision: audit.Allow}); err != nil {
			b.Fatal(err)
		}
	}
}

// Verify while entries are being appended: every walk sees an intact
// chain.
func TestVerifyWhileAppending(t *testing.T) {
	forEach(t, func(t *testing.T, l *audit.Log, _ *sql.DB, _ func(string) string) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range 150 {
				if err := l.Record(context.Background(), audit.Entry{Actor: "a", Action: "x", Decision: audit.Allow}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		for {
			select {
			case <-done:
				if v := verify(t, l); !v.OK || v.Entries != 150 {
					t.Fatalf("at the end: %+v", v)
				}
				return
			default:
			}
			if v := verify(t, l); !v.OK {
				t.Fatalf("while appending: %+v", v)
			}
		}
	})
}
