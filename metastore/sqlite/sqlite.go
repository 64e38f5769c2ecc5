// Package sqlite owns the embedded metastore: one SQLite file (by default
// <data dir>/metastore.db), opened with modernc.org/sqlite (pure Go, no
// cgo). It decides the file's mode, the connection pragmas and how writers
// queue; the schema and queries are metastore/sqlstore's.
//
// The database runs in WAL mode so readers never wait for the writer.
// Write transactions begin IMMEDIATE (they take the write lock up front, so
// a reader never has to upgrade to a writer and deadlock), and writers in
// this process queue on an in-process lock; busy_timeout covers another
// process holding the file. synchronous=NORMAL is durable against a crash
// of the process; a power loss may lose the last transactions, never
// corrupt the file.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/metastore/sqlstore"
)

// BusyTimeoutMillis is how long a connection waits for a lock held by
// another process before the write fails with EUnavailable.
const BusyTimeoutMillis = 10000

// Store is the SQLite metastore.
type Store struct {
	*sqlstore.Store
	path string
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Dialect is SQLite's sqlstore.Dialect.
func Dialect() sqlstore.Dialect {
	return sqlstore.Dialect{
		Name:              "sqlite",
		Placeholder:       sqlstore.QuestionMark,
		TimeType:          "TEXT",
		BindTime:          sqlstore.BindTimeText,
		Isolation:         sql.LevelDefault, // BEGIN IMMEDIATE, from the DSN
		SerializeWrites:   true,
		PrepareInTx:       true,
		IsUniqueViolation: isUniqueViolation,
		IsBusy:            isBusy,
		MaxAttempts:       1,
	}
}

// Open opens (creating if needed, mode 0600 in a 0700 directory) the SQLite
// database at path and brings its schema up to date.
func Open(ctx context.Context, path string, opt metastore.Options) (*Store, error) {
	if path == "" {
		return nil, rhizome.Errorf(rhizome.EInvalid, "metastore: no SQLite path").WithHint("pass a file path, e.g. .rhizome/metastore.db")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, rhizome.Wrap(err, "metastore: create the directory of %s", path)
	}
	// Create the file ourselves so that it (and the -wal and -shm files,
	// which SQLite gives the database file's mode) is private.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, rhizome.Wrap(err, "metastore: open %s", path)
	}
	f.Close()

	db, err := sql.Open("sqlite", DSN(path))
	if err != nil {
		return nil, rhizome.Wrap(err, "metastore: open %s", path)
	}
	// One writer at a time anyway; a few readers in parallel.
	n := max(4, runtime.GOMAXPROCS(0))
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	st, err := sqlstore.Open(ctx, db, Dialect(), opt)
	if err != nil {
		return nil, rhizome.Wrap(err, "metastore: open %s", path)
	}
	return &Store{Store: st, path: path}, nil
}

// DSN is the modernc.org/sqlite data source name for path, with the
// pragmas every connection gets.
func DSN(path string) string {
	u := url.URL{Path: path}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.Itoa(BusyTimeoutMillis)+")")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	// Statement journals (multi-row and ON CONFLICT statements inside a
	// transaction) in memory, not in temporary files.
	q.Add("_pragma", "temp_store(MEMORY)")
	q.Add("_pragma", "cache_size(-16384)") // KiB: big applies stay in memory until commit
	q.Set("_txlock", "immediate")
	return "file:" + u.EscapedPath() + "?" + q.Encode()
}

func sqliteCode(err error) (int, bool) {
	var e *msqlite.Error
	if errors.As(err, &e) {
		return e.Code(), true
	}
	return 0, false
}

func isUniqueViolation(err error) bool {
	c, ok := sqliteCode(err)
	return ok && (c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

func isBusy(err error) bool {
	c, ok := sqliteCode(err)
	return ok && (c&0xff == sqlite3.SQLITE_BUSY || c&0xff == sqlite3.SQLITE_LOCKED)
}
