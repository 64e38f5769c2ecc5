// Package serve is the governed read path: a subject's SQL or data request
// over the products it may read, each product exposed as a view that applies
// the access.Decision (masked columns, row filter) over the current or an
// older snapshot's files, run in a read-only DuckDB sandbox behind a
// statement allowlist. The REST data API (server) and the Postgres wire
// endpoint (pgwire) both call it; every call is audited.
//
// One decision point: SQL (Query), REST reads (Read) and schemas (Schema)
// all decide through access.Decider and expose the same view; the
// statement allowlist lives in engine/duckdb (CheckServe), which parses
// with DuckDB's own parser, so that what is checked is exactly what runs.
//
// Each set of views lives in its own in-memory DuckDB whose sandbox
// (allowed_directories, no external access, locked configuration) reaches
// only those products' data files; engines are cached per set of views
// (subject decisions and snapshots), so a repeated query reuses one.
// We wrote this rather than use a SQL proxy library because the rules
// (views per decision, audit, one allowlist for REST and SQL) are ours.
package serve

import (
	"context"
	"database/sql"

	"github.com/rhizome-mesh/rhizome/access"
)

// Column is one result column: its name and DuckDB type (DECIMAL(18,2),
// UUID, TIMESTAMP WITH TIME ZONE, VARCHAR[], ...).
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Result is a running query's rows. The caller reads Rows and must Close.
type Result struct {
	Columns []Column
	Rows    *sql.Rows
	// Extra is how many trailing columns of Rows are not part of the
	// result (the keyset of a paginated read); 0 for SQL queries.
	Extra int
	close func() error
	// mapErr maps errors met while reading Rows (see Err).
	mapErr func(error) error
}

// Err maps an error met while reading Rows (from Next, Scan or Err) to
// the service's errors, as Query's own: rhizome codes, a SQLSTATE for
// SQLState, canceled queries as EUnavailable, file paths removed from
// the message. nil stays nil.
func (r *Result) Err(err error) error {
	if err == nil || r.mapErr == nil {
		return err
	}
	return r.mapErr(err)
}

// Close ends the query and releases its session.
func (r *Result) Close() error {
	if r.close == nil {
		return nil
	}
	c := r.close
	r.close = nil
	return c()
}

// Querier is what pgwire needs of the service.
type Querier interface {
	// Query runs one allowed statement as subj.
	Query(ctx context.Context, subj access.Subject, query string) (*Result, error)
	// Describe returns the columns query would return, without running it.
	Describe(ctx context.Context, subj access.Subject, query string) ([]Column, error)
}

var _ Querier = (*Service)(nil)

// resultOf wraps rows with their column types; the last extra columns are
// internal.
func resultOf(rows *sql.Rows, extra int) (*Result, error) {
	types, err := rows.ColumnTypes()
	if err != nil {
		rows.Close()
		return nil, err
	}
	res := &Result{Rows: rows, Extra: extra}
	for _, t := range types[:len(types)-extra] {
		res.Columns = append(res.Columns, Column{Name: t.Name(), Type: t.DatabaseTypeName()})
	}
	return res, nil
}
