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
	"fmt"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/access"
	"github.com/rhizome-mesh/rhizome/audit"
	"github.com/rhizome-mesh/rhizome/engine/duckdb"
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
	// Limit is the most rows the result may have (the service's MaxRows
	// for SQL; 0: no cap). Rows holds one more row when the result is
	// larger: read through Stream, which fails there with ETooLarge
	// (SQLSTATE 54000) rather than truncate silently.
	Limit int64
	close func() error
	// mapErr maps errors met while reading Rows (see Err).
	mapErr func(error) error
	// done, when set, is called once on Close with the rows read (see
	// Stream and Reader) and whether the cap was hit: it audits them.
	done      func(rows int64, capped bool)
	read      int64
	capped    bool
	streaming *Stream
}

// Stream reads a Result's rows, counting them for the audit log and
// enforcing Limit. It has the methods of *sql.Rows that a consumer
// needs; Err is already mapped (see Result.Err).
type Stream struct {
	res *Result
	err error
}

// Stream returns the result's row reader (the same one each time).
func (r *Result) Stream() *Stream {
	if r.streaming == nil {
		r.streaming = &Stream{res: r}
	}
	return r.streaming
}

// Next advances to the next row. Past the result's Limit it returns
// false and Err is ETooLarge.
func (s *Stream) Next() bool {
	if s.err != nil {
		return false
	}
	if !s.res.Rows.Next() {
		return false
	}
	if s.res.Limit > 0 && s.res.read >= s.res.Limit {
		s.res.capped = true
		s.err = &rhizome.Error{Code: rhizome.ETooLarge,
			Message: fmt.Sprintf("the result has more than %d rows, the most a SQL query may return", s.res.Limit),
			Hint:    "add a LIMIT or aggregate, or export the product: rhizome data PRODUCT --format parquet",
			Err:     duckdb.ServeError{Kind: "too_large"}}
		return false
	}
	s.res.read++
	return true
}

// Scan copies the current row's columns into dest.
func (s *Stream) Scan(dest ...any) error {
	if err := s.res.Rows.Scan(dest...); err != nil {
		return s.res.Err(err)
	}
	return nil
}

// Err is the error that ended the rows, if any, mapped.
func (s *Stream) Err() error {
	if s.err != nil {
		return s.err
	}
	return s.res.Err(s.res.Rows.Err())
}

// Close closes the result.
func (s *Stream) Close() error { return s.res.Close() }

// Read is how many rows were read through Stream (or a Reader).
func (r *Result) Read() int64 { return r.read }

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

// Close ends the query and releases its session; the rows read are
// then audited (an entry "<action>.done", see docs/audit.md).
func (r *Result) Close() error {
	if r.close == nil {
		return nil
	}
	c := r.close
	r.close = nil
	err := c()
	if r.done != nil {
		r.done(r.read, r.capped)
	}
	return err
}

// Querier is what pgwire needs of the service.
type Querier interface {
	// Query runs one allowed statement as subj.
	Query(ctx context.Context, subj access.Subject, query string) (*Result, error)
	// Describe returns the columns query would return, without running it.
	Describe(ctx context.Context, subj access.Subject, query string) ([]Column, error)
}

var _ Querier = (*Service)(nil)

// completion returns the function that audits the rows a read
// returned: an entry like the read's with Action "<action>.done", Rows
// the rows sent and Details.truncated when the row cap was hit. The read
// itself was audited before its first row; this adds the count, when
// the result is closed (a failure to record it is logged: the rows are
// already gone).
func (s *Service) completion(e audit.Entry) func(int64, bool) {
	e.Action += ".done"
	e.Decision = audit.Allow
	return func(rows int64, capped bool) {
		e.Rows = rows
		if capped {
			e.Details = map[string]any{"truncated": true}
		}
		if err := s.Audit.Record(context.Background(), e); err != nil {
			s.Logger.Error("audit: recording the rows of a read failed", "err", err, "actor", e.Actor, "action", e.Action)
		}
	}
}

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
