package serve_test

import (
	"strings"
	"testing"
)

// TestViewsOverFiles: products above MaterializeBytes are views over their
// Parquet files; they answer the same, and EXPLAIN does not show the files.
func TestViewsOverFiles(t *testing.T) {
	e := newEnv(t, nil)
	e.svc.MaterializeBytes = -1
	_, rows := rowsOf(t, e, bob, `SELECT count(*), min(email) FROM sales.orders`)
	if rows[0][0] != "10" || strings.Contains(rows[0][1], "user") {
		t.Errorf("over files: %v", rows)
	}
	_, rows = rowsOf(t, e, bob, `EXPLAIN SELECT * FROM sales.orders`)
	if s := joinRows(rows); strings.Contains(s, e.lake) || strings.Contains(s, ".parquet") || !strings.Contains(s, "READ_PARQUET") {
		t.Errorf("EXPLAIN:\n%s", s)
	}
}
