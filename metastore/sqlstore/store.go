// Package sqlstore owns the one database/sql implementation of
// metastore.Store that the SQLite and Postgres backends share: the schema
// and its migrations (per dialect, embedded), the queries, and the
// revision and optimistic-concurrency rules. A backend supplies the
// *sql.DB and a small Dialect (placeholders, time encoding, isolation,
// error classification); opening files or servers and choosing drivers is
// left to metastore/sqlite and metastore/postgres.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/metastore"
)

// Store is a metastore.Store over a *sql.DB.
type Store struct {
	reader // reads outside a transaction, on the pool

	db    *sql.DB
	d     Dialect
	q     queries
	rq    runQueries
	clock rhizome.Clock
	log   *slog.Logger
	// writer is a one-slot semaphore when the dialect serializes writes.
	writer chan struct{}
}

var _ metastore.Store = (*Store)(nil)

// Open wraps db, applies pending migrations and returns the Store. The
// Store owns db from then on: Close closes it, and so does a failed Open.
func Open(ctx context.Context, db *sql.DB, d Dialect, opt metastore.Options) (*Store, error) {
	if err := d.check(); err != nil {
		db.Close()
		return nil, err
	}
	opt = opt.WithDefaults()
	s := &Store{db: db, d: d, clock: opt.Clock, log: opt.Logger}
	if d.SerializeWrites {
		s.writer = make(chan struct{}, 1)
	}
	s.q = newQueries(&s.d)
	s.rq = newRunQueries(&s.d)
	s.reader = reader{s: s, r: runner{s: s, db: db}}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// DB returns the underlying pool, for backends and tests; writes through it
// bypass the revision rules.
func (s *Store) DB() *sql.DB { return s.db }

// Dialect returns the store's dialect.
func (s *Store) Dialect() Dialect { return s.d }

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	return s.wrap(s.db.PingContext(ctx), "metastore: ping %s", s.d.Name)
}

// Close closes the pool.
func (s *Store) Close() error { return s.db.Close() }

// Update runs fn in a transaction, again (up to Dialect.MaxAttempts times)
// when the database reports a serialization failure or deadlock.
func (s *Store) Update(ctx context.Context, fn func(metastore.Tx) error) error {
	if s.writer != nil {
		select {
		case s.writer <- struct{}{}:
			defer func() { <-s.writer }()
		case <-ctx.Done():
			return rhizome.Wrap(ctx.Err(), "metastore: waiting to write")
		}
	}
	attempts := max(s.d.MaxAttempts, 1)
	for attempt := 1; ; attempt++ {
		err := s.updateOnce(ctx, fn)
		if err == nil || attempt >= attempts || !s.d.retryable(err) {
			return err
		}
		// Back off with jitter so that the transactions that collided do
		// not collide again: 1ms, 2ms, 4ms... capped at 100ms.
		wait := min(time.Millisecond<<(attempt-1), 100*time.Millisecond)
		wait = wait/2 + rand.N(wait/2+1)
		s.log.Debug("metastore: retrying transaction", "attempt", attempt, "wait", wait, "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return rhizome.Wrap(ctx.Err(), "metastore: retrying transaction")
		}
	}
}

func (s *Store) updateOnce(ctx context.Context, fn func(metastore.Tx) error) (err error) {
	sqlTx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: s.d.Isolation})
	if err != nil {
		return s.wrap(err, "metastore: begin transaction")
	}
	t := &tx{}
	t.reader = reader{s: s, r: runner{s: s, db: sqlTx, tx: sqlTx}}
	done := false
	defer func() {
		t.r.closeStmts()
		if !done {
			_ = sqlTx.Rollback() // fn failed or panicked
		}
	}()
	if err := fn(t); err != nil {
		return err
	}
	done = true
	if err := sqlTx.Commit(); err != nil {
		return s.wrap(err, "metastore: commit")
	}
	return nil
}

// now is the store's clock, cut as stored.
func (s *Store) now() time.Time { return normTime(s.clock.Now()) }

// wrap turns a driver error into a *rhizome.Error with context: EUnavailable
// when the database stayed locked, EConflict for a unique violation the
// caller did not expect, EInternal otherwise. nil stays nil.
func (s *Store) wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	var re *rhizome.Error
	if errors.As(err, &re) {
		return rhizome.Wrap(err, format, args...)
	}
	msg := fmt.Sprintf(format, args...)
	switch {
	case s.d.busy(err):
		return &rhizome.Error{Code: rhizome.EUnavailable, Message: msg + ": the database is locked by another writer",
			Hint: "another process holds the SQLite file; stop it or use Postgres for several servers", Err: err}
	case s.d.uniqueViolation(err):
		return &rhizome.Error{Code: rhizome.EConflict, Message: msg + ": already exists", Err: err}
	}
	return &rhizome.Error{Code: rhizome.EInternal, Message: msg + ": " + err.Error(), Err: err}
}

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// runner runs queries on the pool or in a transaction, preparing each
// query once per transaction when the dialect asks for it.
type runner struct {
	s     *Store
	db    querier
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

func (r *runner) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := r.stmts[q]; ok {
		return st, nil
	}
	st, err := r.tx.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if r.stmts == nil {
		r.stmts = make(map[string]*sql.Stmt)
	}
	r.stmts[q] = st
	return st, nil
}

func (r *runner) prepared() bool { return r.tx != nil && r.s.d.PrepareInTx }

func (r *runner) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if r.prepared() {
		st, err := r.stmt(ctx, q)
		if err != nil {
			return nil, err
		}
		return st.ExecContext(ctx, args...)
	}
	return r.db.ExecContext(ctx, q, args...)
}

func (r *runner) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if r.prepared() {
		st, err := r.stmt(ctx, q)
		if err != nil {
			return nil, err
		}
		return st.QueryContext(ctx, args...)
	}
	return r.db.QueryContext(ctx, q, args...)
}

// scanRow runs a one-row query and scans it; sql.ErrNoRows when empty.
func (r *runner) scanRow(ctx context.Context, q string, args []any, dest ...any) error {
	if r.prepared() {
		st, err := r.stmt(ctx, q)
		if err != nil {
			return err
		}
		return st.QueryRowContext(ctx, args...).Scan(dest...)
	}
	return r.db.QueryRowContext(ctx, q, args...).Scan(dest...)
}

func (r *runner) closeStmts() {
	for _, st := range r.stmts {
		_ = st.Close()
	}
	r.stmts = nil
}
