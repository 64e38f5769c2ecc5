package quality

import (
	"context"
	"database/sql"
	"strings"
	"sync"
	"testing"

	"github.com/rhizome-mesh/rhizome/engine/duckdb"
	"github.com/rhizome-mesh/rhizome/spec"
)

// counting wraps a Querier and records every query.
type counting struct {
	Querier
	mu      sync.Mutex
	queries []string
}

func (c *counting) Query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	c.mu.Lock()
	c.queries = append(c.queries, q)
	c.mu.Unlock()
	return c.Querier.Query(ctx, q, args...)
}

// scans are the queries that read table rows (not DESCRIBE, not the
// statistics read or min/max probe of integer keys).
func (c *counting) scans() []string {
	var out []string
	for _, q := range c.queries {
		if !strings.HasPrefix(q, "DESCRIBE") && !strings.HasPrefix(q, "SELECT CAST(min(") && !strings.HasPrefix(q, "SELECT CAST(stats(") {
			out = append(out, q)
		}
	}
	return out
}

func newSession(t testing.TB) *duckdb.Session {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	e, err := duckdb.Open(ctx, duckdb.Options{AllowedDirs: []string{dir}, TempDir: dir + "/tmp"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	s, err := e.Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func exec(t testing.TB, s *duckdb.Session, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		if _, err := s.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func th(t testing.TB, s string) spec.Threshold {
	t.Helper()
	x, err := spec.ParseThreshold(s)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// chk builds a check; threshold "" keeps the type's default.
func chk(t testing.TB, typ, col, threshold string, args map[string]any) Check {
	c := Check{Name: typ, Type: typ, Column: col, Args: args}
	if threshold != "" {
		c.Threshold, c.ThresholdText = th(t, threshold), threshold
	}
	return c
}
