// Package postgres owns the Postgres metastore, for deployments that run
// several servers or already operate Postgres. It connects through
// github.com/jackc/pgx/v5/stdlib and decides the isolation and retry
// policy; the schema and queries are metastore/sqlstore's.
//
// Update runs SERIALIZABLE, and Put and Delete also lock the row they
// change (SELECT ... FOR UPDATE), so two writers that read the same
// revision cannot both write: the second gets a serialization failure,
// Update runs fn again, and fn now sees the new revision and returns
// EConflict. Serialization failures and deadlocks are retried up to
// MaxAttempts times, so fn must have no effects outside its transaction.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/metastore/sqlstore"
)

// MaxAttempts is how often Update runs fn before a serialization failure
// is returned (as EInternal wrapping the driver error).
const MaxAttempts = 10

// Store is the Postgres metastore.
type Store struct {
	*sqlstore.Store
}

// Dialect is Postgres's sqlstore.Dialect.
func Dialect() sqlstore.Dialect {
	return sqlstore.Dialect{
		Name:        "postgres",
		Placeholder: sqlstore.Dollar,
		TimeType:    "TIMESTAMPTZ",
		BindTime:    sqlstore.BindTimeValue,
		Isolation:   sql.LevelSerializable,
		ForUpdate:   " FOR UPDATE",
		// Serializes migrations between processes opening one database.
		MigrationLock:     "SELECT pg_advisory_xact_lock(1919580781)", // "rhzm"
		PrepareInTx:       false,                                      // pgx caches prepared statements per connection
		IsUniqueViolation: func(err error) bool { return sqlState(err) == "23505" },
		IsRetryable: func(err error) bool {
			s := sqlState(err)
			return s == "40001" || s == "40P01" // serialization_failure, deadlock_detected
		},
		MaxAttempts: MaxAttempts,
	}
}

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// Open connects to the database at url (postgres://user:pass@host/db?...),
// checks that it answers and brings its schema up to date.
func Open(ctx context.Context, url string, opt metastore.Options) (*Store, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, &rhizome.Error{Code: rhizome.EInvalid, Message: "metastore: bad Postgres URL: " + redact(err),
			Hint: "want postgres://user:password@host:5432/dbname?sslmode=disable", Err: err}
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(10)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, &rhizome.Error{Code: rhizome.EUnavailable,
			Message: "metastore: cannot reach Postgres at " + cfg.Host + ": " + redact(err),
			Hint:    "check that the server runs and the URL, user and password are right", Err: err}
	}
	st, err := sqlstore.Open(ctx, db, Dialect(), opt)
	if err != nil {
		return nil, rhizome.Wrap(err, "metastore: open Postgres at %s/%s", cfg.Host, cfg.Database)
	}
	return &Store{Store: st}, nil
}

// redact keeps a password in a URL out of a message: pgx's parse errors
// quote the connection string, redacted only on a best-effort basis.
func redact(err error) string {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		if cause := errors.Unwrap(pe); cause != nil {
			return "cannot parse the connection string: " + cause.Error()
		}
		return "cannot parse the connection string"
	}
	return err.Error()
}
