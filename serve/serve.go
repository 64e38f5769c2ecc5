// Package serve is the governed read path: a subject's SQL or data request
// over the products it may read, each product exposed as a view that applies
// the access.Decision (masked columns, row filter) over the current or an
// older snapshot's files, run in a read-only DuckDB sandbox behind a
// statement allowlist. The REST data API (server) and the Postgres wire
// endpoint (pgwire) both call it; every call is audited.
package serve

import (
	"context"
	"database/sql"

	"github.com/rhizome-mesh/rhizome/access"
)

// Column is one result column: its name and DuckDB type (DECIMAL(18,2),
// UUID, TIMESTAMP WITH TIME ZONE, VARCHAR[], ...).
type Column struct {
	Name string
	Type string
}

// Result is a running query's rows. The caller reads Rows and must Close.
type Result struct {
	Columns []Column
	Rows    *sql.Rows
	close   func() error
}

// Close ends the query and releases its session.
func (r *Result) Close() error {
	if r.close == nil {
		return nil
	}
	return r.close()
}

// Querier is what pgwire needs of the service.
type Querier interface {
	// Query runs one allowed statement as subj.
	Query(ctx context.Context, subj access.Subject, query string) (*Result, error)
	// Describe returns the columns query would return, without running it.
	Describe(ctx context.Context, subj access.Subject, query string) ([]Column, error)
}
