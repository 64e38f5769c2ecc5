package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"

	"github.com/rhizome-mesh/rhizome"
)

// Migrations are numbered files, forward-only, one directory per dialect:
// migrations/<dialect>/NNNN_name.sql, numbered 1, 2, 3... without gaps.
// A released file never changes; a schema change is a new file.
//
//go:embed migrations
var migrationFiles embed.FS

// Migration is one numbered schema change.
type Migration struct {
	Version int
	Name    string // file name, e.g. 0001_init.sql
	SQL     string
}

var migrationName = regexp.MustCompile(`^([0-9]{4})_[a-z0-9_]+\.sql$`)

// Migrations returns a dialect's migrations in order; an error if the
// files are misnamed or the numbers are not 1..n.
func Migrations(dialect string) ([]Migration, error) {
	dir := path.Join("migrations", dialect)
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: no migrations for dialect %q: %w", dialect, err)
	}
	var ms []Migration
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil || e.IsDir() {
			return nil, fmt.Errorf("sqlstore: %s/%s: want NNNN_name.sql", dir, e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		b, err := fs.ReadFile(migrationFiles, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: e.Name(), SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("sqlstore: %s/%s: want version %04d (versions are 1..n without gaps)", dir, m.Name, i+1)
		}
	}
	return ms, nil
}

// migrate applies the pending migrations in one transaction: a failed
// open leaves the schema as it was.
func (s *Store) migrate(ctx context.Context) (err error) {
	ms, err := Migrations(s.d.Name)
	if err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap(err, "metastore: begin migration")
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if s.d.MigrationLock != "" {
		if _, err := tx.ExecContext(ctx, s.d.MigrationLock); err != nil {
			return s.wrap(err, "metastore: lock for migration")
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER NOT NULL PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at `+s.d.TimeType+` NOT NULL
)`); err != nil {
		return s.wrap(err, "metastore: create schema_migrations")
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return s.wrap(err, "metastore: read schema version")
	}
	if current > len(ms) {
		return rhizome.Errorf(rhizome.EInternal, "metastore: the %s database is at schema version %d, newer than this binary knows (%d)", s.d.Name, current, len(ms)).
			WithHint("run a rhizome at least as new as the one that last opened this database")
	}
	insert := s.d.rebind(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`)
	now := s.d.BindTime(s.now())
	for _, m := range ms[current:] {
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return s.wrap(err, "metastore: migration %s/%s", s.d.Name, m.Name)
		}
		if _, err := tx.ExecContext(ctx, insert, m.Version, m.Name, now); err != nil {
			return s.wrap(err, "metastore: record migration %s", m.Name)
		}
		s.log.Info("metastore: applied migration", "dialect", s.d.Name, "migration", m.Name)
	}
	if err := tx.Commit(); err != nil {
		return s.wrap(err, "metastore: commit migrations")
	}
	return nil
}

// SchemaVersion returns the highest applied migration.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	return v, s.wrap(err, "metastore: read schema version")
}
