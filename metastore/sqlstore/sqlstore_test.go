package sqlstore

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rhizome-mesh/rhizome/metastore"
)

func TestMigrationsWellFormed(t *testing.T) {
	var names [][]string
	for _, d := range []string{"sqlite", "postgres"} {
		ms, err := Migrations(d)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == 0 {
			t.Fatalf("%s has no migrations", d)
		}
		var ns []string
		for i, m := range ms {
			if m.Version != i+1 || strings.TrimSpace(m.SQL) == "" {
				t.Errorf("%s/%s: version %d, %d bytes", d, m.Name, m.Version, len(m.SQL))
			}
			ns = append(ns, m.Name)
		}
		names = append(names, ns)
	}
	// The dialects move in step: every schema change lands in both.
	if !slices.Equal(names[0], names[1]) {
		t.Errorf("sqlite migrations %v, postgres %v: want the same files", names[0], names[1])
	}
	if _, err := Migrations("oracle"); err == nil {
		t.Errorf("Migrations(oracle) did not fail")
	}
}

func TestRebind(t *testing.T) {
	d := Dialect{Placeholder: Dollar}
	if got := d.rebind(`SELECT a FROM t WHERE b = ? AND c IN (?, ?)`); got != `SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)` {
		t.Errorf("rebind = %s", got)
	}
	q := Dialect{Placeholder: QuestionMark}
	if got := q.rebind(`x = ?`); got != `x = ?` {
		t.Errorf("rebind for ? = %s", got)
	}
}

func TestTimes(t *testing.T) {
	zone := time.FixedZone("X", 5*3600)
	in := time.Date(2025, 1, 2, 3, 4, 5, 123456789, zone)
	want := time.Date(2025, 1, 1, 22, 4, 5, 123456000, time.UTC)
	if got := normTime(in); !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("normTime = %v", got)
	}
	text := BindTimeText(normTime(in)).(string)
	if text != "2025-01-01T22:04:05.123456Z" {
		t.Errorf("BindTimeText = %s", text)
	}
	for _, src := range []any{text, []byte(text), want.In(zone)} {
		var got time.Time
		if err := (timeScan{&got}).Scan(src); err != nil || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("scan %T: %v, %v", src, got, err)
		}
	}
	var p *time.Time = &want
	if err := (nullTimeScan{&p}).Scan(nil); err != nil || p != nil {
		t.Errorf("scan NULL: %v, %v", p, err)
	}
	var got time.Time
	if err := (timeScan{&got}).Scan(42); err == nil {
		t.Errorf("scan int: no error")
	}
	// Text order is time order, even across whole seconds.
	a, b := BindTimeText(time.Date(2025, 1, 1, 0, 0, 1, 0, time.UTC)).(string), BindTimeText(time.Date(2025, 1, 1, 0, 0, 0, 999999000, time.UTC)).(string)
	if !(b < a) {
		t.Errorf("%s sorts after %s", b, a)
	}
}

func TestListQuery(t *testing.T) {
	q, args := ListQuery(metastore.ListOptions{Kind: "DataProduct", Tag: "pii", Member: "alice", Domain: "d", After: "x"}, 11)
	for _, s := range []string{"FROM object_tags t JOIN objects o", "EXISTS (SELECT 1 FROM object_members", "o.domain = ?", "t.id > ?", "ORDER BY t.id LIMIT ?"} {
		if !strings.Contains(q, s) {
			t.Errorf("query lacks %q:\n%s", s, q)
		}
	}
	if want := []any{"DataProduct", "pii", "alice", "d", "x", 11}; !slices.Equal(args, want) {
		t.Errorf("args = %v, want %v", args, want)
	}
	if n := strings.Count(q, "?"); n != len(args) {
		t.Errorf("%d placeholders, %d args", n, len(args))
	}
}
