package sqlstore_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/metastore/sqlite"
	"github.com/rhizome-mesh/rhizome/metastore/sqlstore"
)

// TestUpgradeFrom0002 opens a SQLite database left at the previous
// release's schema (migrations 1 and 2, with data) and checks that 0003
// applies on top, keeping the data.
func TestUpgradeFrom0002(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "metastore.db")
	db, err := sql.Open("sqlite", sqlite.DSN(path))
	if err != nil {
		t.Fatal(err)
	}
	ms, err := sqlstore.Migrations("sqlite")
	if err != nil {
		t.Fatal(err)
	}
	stmts := []string{`CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`}
	for _, m := range ms[:2] {
		stmts = append(stmts, m.SQL, `INSERT INTO schema_migrations VALUES (`+strconv.Itoa(m.Version)+`, '`+m.Name+`', '2025-01-01T00:00:00.000000Z')`)
	}
	stmts = append(stmts, `INSERT INTO objects (kind, id, revision, body, labels, created_at, updated_at, updated_by)
VALUES ('Team', 't', 1, '{}', '{}', '2025-01-01T00:00:00.000000Z', '2025-01-01T00:00:00.000000Z', 'a')`)
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s, err := sqlstore.Open(ctx, db, sqlite.Dialect(), metastore.Options{})
	if err != nil {
		t.Fatalf("Open at 0002: %v", err)
	}
	defer s.Close()
	if v, err := s.SchemaVersion(ctx); err != nil || v != len(ms) {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, len(ms))
	}
	if _, err := s.Get(ctx, rhizome.KindTeam, "t"); err != nil {
		t.Errorf("object from before the upgrade: %v", err)
	}
	err = s.Update(ctx, func(tx metastore.Tx) error {
		return tx.PutRun(ctx, &rhizome.Run{ID: "run_1", ProductID: "dp.a", Trigger: rhizome.TriggerManual, State: rhizome.RunQueued})
	})
	if err != nil {
		t.Errorf("PutRun after the upgrade: %v", err)
	}
}
