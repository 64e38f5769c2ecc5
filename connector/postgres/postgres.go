// Package postgres registers the postgres connector: a table or a query,
// streamed with COPY into a CSV file in the stage.
package postgres

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/connector"
	"github.com/rhizome-mesh/rhizome/connector/internal/stage"
)

func init() {
	connector.Register(connector.Spec{
		Name:    "postgres",
		Summary: "A PostgreSQL table or query, streamed with COPY into CSV.",
		Fields: []connector.Field{
			{Name: "dsn_secret", Type: connector.TypeSecret, Required: true,
				Doc: "Reference to the connection string, e.g. `env:CRM_PG_DSN` holding `postgres://reader:...@db:5432/crm`. Never logged."},
			{Name: "table", Type: connector.TypeString, Doc: "Table to read whole, e.g. `public.customers`. Set `table` or `query`."},
			{Name: "query", Type: connector.TypeString, Doc: "A SELECT to read. Runs in a read-only session."},
			{Name: "connect_timeout", Type: connector.TypeDuration, Default: "10s", Doc: "Time limit of connecting."},
		},
		New: newPostgres,
	})
}

type pgConn struct {
	dsnSecret, table, query string
	connectTimeout          time.Duration
}

func newPostgres(cfg map[string]any) (connector.Connector, error) {
	c := connector.Config(cfg)
	p := &pgConn{dsnSecret: c.String("dsn_secret"), table: strings.TrimSpace(c.String("table")),
		query: strings.TrimRight(strings.TrimSpace(c.String("query")), "; \n\t"), connectTimeout: c.Duration("connect_timeout")}
	if (p.table == "") == (p.query == "") {
		return nil, rhizome.Invalid("invalid postgres config", rhizome.Problem{Path: "config.table",
			Message: "set one of `table` and `query`", Hint: "e.g. `table: public.customers`"})
	}
	return p, nil
}

func (p *pgConn) Stage(ctx context.Context, env connector.Env) (_ *connector.Staged, err error) {
	dsn, err := connector.ResolveSecret(ctx, env, p.dsnSecret)
	if err != nil {
		return nil, rhizome.Wrap(err, "postgres")
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// The parse error may quote the DSN, password and all.
		return nil, rhizome.Errorf(rhizome.EInvalid, "postgres: the secret %s is not a valid connection string", p.dsnSecret).
			WithHint("want e.g. postgres://user:password@host:5432/db")
	}
	where := fmt.Sprintf("%s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
	if p.connectTimeout > 0 {
		cfg.ConnectTimeout = p.connectTimeout
	}
	// Read-only: COPY (query) also runs INSERT ... RETURNING. UTC and ISO
	// dates: the stage's text must not depend on the server's settings.
	for k, v := range map[string]string{"default_transaction_read_only": "on", "TimeZone": "UTC",
		"DateStyle": "ISO, YMD", "IntervalStyle": "postgres", "application_name": "rhizome-connector"} {
		cfg.RuntimeParams[k] = v
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, connectError(err, where, cfg.Password)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	sql := p.query
	if p.table != "" {
		sql = "SELECT * FROM " + pgx.Identifier(strings.Split(p.table, ".")).Sanitize()
	}
	cols, err := p.describe(ctx, conn, sql)
	if err != nil {
		return nil, p.queryError(err, where)
	}
	const name = "0000-postgres.csv"
	f, err := os.OpenFile(filepath.Join(env.StageDir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, rhizome.Errorf(rhizome.EInternal, "postgres: %v", err)
	}
	defer func() {
		f.Close()
		if err != nil {
			os.Remove(f.Name()) // no half a table in the stage
		}
	}()
	// CopyTo hands over one CopyData message (a row) at a time: the
	// buffer makes that a few large writes, and holds at most 1 MiB.
	cw := &stage.CountingWriter{W: f}
	w := bufio.NewWriterSize(cw, 1<<20)
	tag, err := conn.PgConn().CopyTo(ctx, w, "COPY ("+sql+") TO STDOUT WITH (FORMAT csv, HEADER)")
	if err != nil {
		return nil, p.queryError(err, where)
	}
	if err := w.Flush(); err != nil {
		return nil, rhizome.Errorf(rhizome.EInternal, "postgres: write the stage: %v", err)
	}
	if err := f.Close(); err != nil {
		return nil, rhizome.Errorf(rhizome.EInternal, "postgres: write the stage: %v", err)
	}
	st := &connector.Staged{Format: connector.FormatCSV, Files: []string{name}, Rows: tag.RowsAffected(), Bytes: cw.N, Columns: cols}
	env.Log().Info("staged postgres", "db", where, "rows", st.Rows, "bytes", st.Bytes)
	return st, nil
}

// describe returns the result's columns with DuckDB types. For a table,
// NOT NULL columns are required; a query's columns are not (an outer join
// can make any of them null).
func (p *pgConn) describe(ctx context.Context, conn *pgx.Conn, sql string) ([]connector.Column, error) {
	sd, err := conn.PgConn().Prepare(ctx, "", sql, nil)
	if err != nil {
		return nil, err
	}
	cols := make([]connector.Column, len(sd.Fields))
	var rels []uint32
	var nums []int16
	for i, f := range sd.Fields {
		cols[i] = connector.Column{Name: f.Name, Type: DuckDBType(f.DataTypeOID, f.TypeModifier)}
		rels, nums = append(rels, f.TableOID), append(nums, int16(f.TableAttributeNumber))
	}
	if p.table == "" || len(cols) == 0 {
		return cols, nil
	}
	rows, err := conn.Query(ctx, `SELECT k.i, a.attnotnull
		FROM unnest($1::oid[], $2::int2[]) WITH ORDINALITY AS k(rel, num, i)
		JOIN pg_attribute a ON a.attrelid = k.rel AND a.attnum = k.num`, rels, nums)
	if err != nil {
		return nil, err
	}
	var i int64
	var notNull bool
	_, err = pgx.ForEachRow(rows, []any{&i, &notNull}, func() error {
		cols[i-1].Required = notNull
		return nil
	})
	return cols, err
}

// DuckDBType maps a Postgres type to the DuckDB type that reads its COPY
// CSV text back unchanged. Types without a faithful DuckDB twin (arrays,
// bytea, money, network types) stay VARCHAR, holding Postgres' text.
func DuckDBType(oid uint32, typmod int32) string {
	switch oid {
	case pgtype.BoolOID:
		return "BOOLEAN"
	case pgtype.Int2OID:
		return "SMALLINT"
	case pgtype.Int4OID:
		return "INTEGER"
	case pgtype.Int8OID:
		return "BIGINT"
	case pgtype.OIDOID, pgtype.XIDOID:
		return "UINTEGER"
	case pgtype.Float4OID:
		return "FLOAT"
	case pgtype.Float8OID:
		return "DOUBLE"
	case pgtype.NumericOID:
		// numeric(p,s) keeps (p<<16 | s) + 4 in typmod. Unconstrained
		// numeric has no scale to keep: DOUBLE, as DuckDB's own postgres
		// scanner does.
		if typmod >= 4 {
			prec, scale := ((typmod-4)>>16)&0xffff, (typmod-4)&0xffff
			if prec >= 1 && prec <= 38 && scale <= prec {
				return fmt.Sprintf("DECIMAL(%d,%d)", prec, scale)
			}
		}
		return "DOUBLE"
	case pgtype.DateOID:
		return "DATE"
	case pgtype.TimeOID:
		return "TIME"
	case pgtype.TimetzOID:
		return "TIMETZ"
	case pgtype.TimestampOID:
		return "TIMESTAMP"
	case pgtype.TimestamptzOID:
		return "TIMESTAMPTZ"
	case pgtype.IntervalOID:
		return "INTERVAL"
	case pgtype.UUIDOID:
		return "UUID"
	case pgtype.JSONOID, pgtype.JSONBOID:
		return "JSON"
	}
	return "VARCHAR"
}

// connectError says which server could not be reached and why, never with
// the password.
func connectError(err error, where, password string) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		code := rhizome.EUnavailable
		switch pgErr.Code {
		case "28P01", "28000":
			code = rhizome.EUnauthorized
		case "3D000":
			code = rhizome.ENotFound
		}
		return scrub(rhizome.Errorf(code, "postgres %s: %s", where, pgErr.Message).
			WithHint("check the connection string in the secret that `dsn_secret` points at"), password)
	}
	cause := "cannot connect"
	var opErr *net.OpError
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr):
		cause = "unknown host"
	case errors.As(err, &opErr):
		cause = opErr.Err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		cause = "timed out"
	}
	return scrub(rhizome.Errorf(rhizome.EUnavailable, "postgres %s is unreachable: %s", where, cause).
		WithHint("check that the database is up and the host and port in the connection string"), password)
}

func (p *pgConn) queryError(err error, where string) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		code := rhizome.EInvalid
		switch {
		case pgErr.Code == "42P01":
			code = rhizome.ENotFound
		case pgErr.Code == "42501":
			code = rhizome.EForbidden
		case strings.HasPrefix(pgErr.Code, "08"), strings.HasPrefix(pgErr.Code, "53"), strings.HasPrefix(pgErr.Code, "57"):
			code = rhizome.EUnavailable // connection lost, out of resources, shutting down
		}
		what := "query"
		if p.table != "" {
			what = "table " + p.table
		}
		return rhizome.Errorf(code, "postgres %s: %s: %s (SQLSTATE %s)", where, what, pgErr.Message, pgErr.Code)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return rhizome.Errorf(rhizome.EUnavailable, "postgres %s: %v", where, err)
}

func scrub(e *rhizome.Error, password string) *rhizome.Error {
	if password != "" {
		e.Message = strings.ReplaceAll(e.Message, password, "xxxxx")
	}
	return e
}
