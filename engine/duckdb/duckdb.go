// Package duckdb owns Rhizome's embedded SQL engine: an in-memory DuckDB
// database per transform run, locked into a sandbox that reaches only the
// run's own directories. It loads inputs with a declared schema into
// tables (checking them against it) and maps inputs with an inferred one
// as views over their files, vets user SQL against an allowlist (one
// SELECT, only declared tables, no table functions, files or URLs), runs
// dbt-style models (as tables, or views for one read once), derives
// column lineage from DuckDB's own parser, and exports tables and views
// to Parquet.
//
// It is the only package that imports duckdb-go (a large cgo library);
// everything it exposes is plain Go. Where inputs come from (connectors),
// where outputs go (table) and what a run is (pipeline) belong elsewhere.
package duckdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"

	duckdbdriver "github.com/duckdb/duckdb-go/v2"

	"github.com/rhizome-mesh/rhizome"
)

// Options configure an Engine. AllowedDirs are the only directories the
// engine may read or write (the run's staging directory and the declared
// input files' directories); TempDir is where DuckDB spills (it is created,
// and made reachable too). Empty MemoryLimit and zero Threads keep DuckDB's
// defaults.
type Options struct {
	AllowedDirs []string
	TempDir     string
	MemoryLimit string // e.g. "2GB"
	Threads     int
	// ParquetMetadataCache keeps Parquet footers in memory between
	// queries (for engines that read the same files again: serving).
	ParquetMetadataCache bool
}

// Engine is one in-memory DuckDB database, sandboxed for its whole life.
type Engine struct {
	db      *sql.DB
	dirs    []string // cleaned absolute allowed directories
	tempDir string
	ownTemp bool
}

// Open creates an in-memory database and locks it into the sandbox.
//
// DuckDB's sandbox settings are database-wide and lock_configuration
// freezes them for every connection, so they are applied once here;
// Session checks on its own connection that they hold.
func Open(ctx context.Context, opt Options) (*Engine, error) {
	e := &Engine{tempDir: opt.TempDir}
	if e.tempDir == "" {
		d, err := os.MkdirTemp("", "rhizome-duckdb-")
		if err != nil {
			return nil, rhizome.Wrap(err, "creating DuckDB temp dir")
		}
		e.tempDir, e.ownTemp = d, true
	} else if err := os.MkdirAll(e.tempDir, 0o700); err != nil {
		return nil, rhizome.Wrap(err, "creating DuckDB temp dir")
	}
	for _, d := range append(append([]string(nil), opt.AllowedDirs...), e.tempDir) {
		abs, err := filepath.Abs(d)
		if err != nil {
			e.cleanup()
			return nil, rhizome.Errorf(rhizome.EInvalid, "allowed dir %q: %v", d, err)
		}
		e.dirs = append(e.dirs, filepath.Clean(abs))
	}
	if opt.MemoryLimit != "" && !memoryLimitRE.MatchString(opt.MemoryLimit) {
		e.cleanup()
		return nil, rhizome.Errorf(rhizome.EInvalid, "memory limit %q is not a size", opt.MemoryLimit).WithHint(`write e.g. "2GB" or "512MiB"`)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		e.cleanup()
		return nil, rhizome.Wrap(err, "opening DuckDB")
	}
	e.db = db
	conn, err := db.Conn(ctx)
	if err != nil {
		e.Close()
		return nil, rhizome.Wrap(err, "opening DuckDB connection")
	}
	defer conn.Close()
	stmts := []string{
		"SET autoinstall_known_extensions = false",
		"SET autoload_known_extensions = false",
		"SET allow_community_extensions = false",
		"SET temp_directory = " + quoteLit(e.tempDir),
	}
	if opt.MemoryLimit != "" {
		stmts = append(stmts, "SET memory_limit = "+quoteLit(opt.MemoryLimit))
	}
	if opt.Threads > 0 {
		stmts = append(stmts, fmt.Sprintf("SET threads = %d", opt.Threads))
	}
	if opt.ParquetMetadataCache {
		stmts = append(stmts, "SET parquet_metadata_cache = true")
	}
	lits := make([]string, len(e.dirs))
	for i, d := range e.dirs {
		lits[i] = quoteLit(d + string(filepath.Separator))
	}
	stmts = append(stmts,
		"SET allowed_directories = ["+strings.Join(lits, ", ")+"]",
		"SET enable_external_access = false",
		"SET lock_configuration = true",
	)
	for _, s := range stmts {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			e.Close()
			return nil, rhizome.Wrap(err, "configuring DuckDB (%s)", s)
		}
	}
	return e, nil
}

// Close closes the database and removes a temp dir Open created.
func (e *Engine) Close() error {
	var err error
	if e.db != nil {
		err = e.db.Close()
	}
	e.cleanup()
	return err
}

func (e *Engine) cleanup() {
	if e.ownTemp {
		os.RemoveAll(e.tempDir)
	}
}

// allowed reports whether path (a file or a glob) lies inside an allowed
// directory. DuckDB enforces the same; checking here gives a clear error.
func (e *Engine) allowed(path string) bool {
	abs, err := filepath.Abs(path)
	if err != nil {
		return false
	}
	abs = filepath.Clean(abs)
	real := abs
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		real = r
	}
	for _, d := range e.dirs {
		realDir := d
		if r, err := filepath.EvalSymlinks(d); err == nil {
			realDir = r
		}
		if within(d, abs) && within(realDir, real) {
			return true
		}
	}
	return false
}

func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// Session is one connection to an Engine. User SQL runs only through
// RunModels (after CheckQuery); Query and Exec are for platform SQL.
type Session struct {
	e    *Engine
	conn *sql.Conn
	seq  atomic.Int64 // names scratch tables

	mu sync.Mutex
	// lineage of the models RunModels created, resolved to inputs, by
	// lower-case model name then column name.
	models map[string]map[string][]ColumnRef
	// models RunModels created as views, by lower-case name.
	views map[string]viewModel
	// the sources of the inputs Register made views, by lower-case name.
	scans map[string]Source
}

// Session opens a dedicated connection and verifies that the sandbox holds
// on it.
func (e *Engine) Session(ctx context.Context) (*Session, error) {
	conn, err := e.db.Conn(ctx)
	if err != nil {
		return nil, rhizome.Wrap(err, "opening DuckDB connection")
	}
	var ext, lock string
	err = conn.QueryRowContext(ctx, "SELECT current_setting('enable_external_access')::VARCHAR, current_setting('lock_configuration')::VARCHAR").Scan(&ext, &lock)
	if err != nil || ext != "false" || lock != "true" {
		conn.Close()
		if err == nil {
			err = fmt.Errorf("enable_external_access=%s lock_configuration=%s", ext, lock)
		}
		return nil, rhizome.Wrap(err, "DuckDB sandbox not in force")
	}
	return &Session{e: e, conn: conn}, nil
}

// Close releases the connection; tables live on in the Engine until it closes.
func (s *Session) Close() error { return s.conn.Close() }

// Query runs trusted platform SQL. Never pass user SQL here.
func (s *Session) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return s.conn.QueryContext(ctx, query, args...)
}

// Exec runs trusted platform SQL. Never pass user SQL here.
func (s *Session) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return s.conn.ExecContext(ctx, query, args...)
}

// Schema lists a table's columns in order (the name matches case-
// insensitively, as in SQL). Required means NOT NULL.
func (s *Session) Schema(ctx context.Context, table string) ([]Column, error) {
	rows, err := s.conn.QueryContext(ctx, `SELECT column_name, data_type, is_nullable = 'NO'
FROM information_schema.columns WHERE lower(table_name) = lower(?) AND table_schema = 'main' AND table_catalog = current_database()
ORDER BY ordinal_position`, table)
	if err != nil {
		return nil, rhizome.Wrap(err, "reading schema of %s", table)
	}
	defer rows.Close()
	var cols []Column
	for rows.Next() {
		var c Column
		if err := rows.Scan(&c.Name, &c.Type, &c.Required); err != nil {
			return nil, rhizome.Wrap(err, "reading schema of %s", table)
		}
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		return nil, rhizome.Wrap(err, "reading schema of %s", table)
	}
	if len(cols) == 0 {
		return nil, rhizome.Errorf(rhizome.ENotFound, "table %s not found", table)
	}
	return cols, nil
}

// RowCount counts a table's rows. For an input Register made a view over
// plain CSV files it counts their lines instead of parsing them (see
// countCSV); otherwise a view is read in full.
func (s *Session) RowCount(ctx context.Context, table string) (int64, error) {
	s.mu.Lock()
	src, isScan := s.scans[strings.ToLower(table)]
	s.mu.Unlock()
	if isScan {
		if n, ok := s.countCSV(ctx, src); ok {
			return n, nil
		}
	}
	var n int64
	if err := s.conn.QueryRowContext(ctx, "SELECT count(*) FROM "+quoteIdent(table)).Scan(&n); err != nil {
		return 0, s.tableErr(err, table, "counting rows of %s", table)
	}
	return n, nil
}

// ExportParquet writes a table (or view) to one zstd Parquet file at path,
// which must lie in an allowed directory, in one COPY: rows is the count
// COPY returns, so the data is not scanned twice. A view is computed here,
// streamed from its sources into the file. It writes to a temporary name and renames, so
// a failed export leaves nothing at path (DuckDB leaves a partial file).
func (s *Session) ExportParquet(ctx context.Context, table, path string) (rows, bytes int64, err error) {
	if !s.e.allowed(path) {
		return 0, 0, rhizome.Errorf(rhizome.EInvalid, "export path %s is outside the sandbox's directories", path)
	}
	tmp := filepath.Join(filepath.Dir(path), fmt.Sprintf(".%s.%d.tmp", filepath.Base(path), s.seq.Add(1)))
	// 122,880 rows is DuckDB's vector-aligned default: row groups large enough
	// to compress well and small enough for readers to split work on.
	q := fmt.Sprintf("COPY (SELECT * FROM %s) TO %s (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)", quoteIdent(table), quoteLit(tmp))
	if err := s.conn.QueryRowContext(ctx, q).Scan(&rows); err != nil {
		os.Remove(tmp)
		s.mu.Lock()
		v, isView := s.views[strings.ToLower(table)]
		s.mu.Unlock()
		if isView {
			// The model's rows are computed here: its errors are the model's.
			return 0, 0, v.m.execError(ctx, v.path, err)
		}
		return 0, 0, s.tableErr(err, table, "exporting %s to Parquet", table)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return 0, 0, rhizome.Wrap(err, "exporting %s to Parquet", table)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return 0, 0, rhizome.Wrap(err, "exporting %s to Parquet", table)
	}
	return rows, fi.Size(), nil
}

// tableErr maps a missing table to ENotFound and anything else to a wrapped error.
func (s *Session) tableErr(err error, table, format string, args ...any) error {
	var de *duckdbdriver.Error
	if errors.As(err, &de) && de.Type == duckdbdriver.ErrorTypeCatalog {
		return &rhizome.Error{Code: rhizome.ENotFound, Message: fmt.Sprintf("table %s not found", table), Err: err}
	}
	return rhizome.Wrap(err, format, args...)
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
func quoteLit(s string) string   { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

var memoryLimitRE = regexp.MustCompile(`(?i)^\s*\d+(\.\d+)?\s*([KMGT]i?B|B|[KMGT])?\s*$`)

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
