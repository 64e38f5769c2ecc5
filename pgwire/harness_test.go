package pgwire

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/access"
	"github.com/rhizome-mesh/rhizome/engine/duckdb"
	"github.com/rhizome-mesh/rhizome/identity"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/metastore/sqlite"
)

// duckQuerier is the test Querier: a real sandboxed DuckDB (engine/duckdb)
// with a few tables, and a stand-in for serve's decisions: a relation
// named "secret" is forbidden, and subjects in deny are refused
// everything (a revoked grant).
type duckQuerier struct {
	e    *duckdb.Engine
	mu   sync.Mutex
	deny map[string]bool
}

func (q *duckQuerier) decide(subj access.Subject, query string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if subj.ID == "" {
		return rhizome.Errorf(rhizome.EUnauthorized, "no subject")
	}
	if q.deny[subj.ID] {
		return rhizome.Errorf(rhizome.EForbidden, "%s may not read these products: the grant was revoked", subj.ID)
	}
	if strings.Contains(strings.ToLower(query), "secret") {
		return rhizome.Errorf(rhizome.EForbidden, "%s may not read sales.secret", subj.ID).WithHint("request access with `rhizome access request sales.secret`")
	}
	return nil
}

func (q *duckQuerier) Query(ctx context.Context, subj access.Subject, query string) (*Result, error) {
	if err := q.decide(subj, query); err != nil {
		return nil, err
	}
	sess, err := q.e.Session(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := sess.Query(ctx, query)
	if err != nil {
		sess.Close()
		return nil, rhizome.Errorf(rhizome.EInvalid, "%s", err.Error())
	}
	cts, err := rows.ColumnTypes()
	if err != nil {
		rows.Close()
		sess.Close()
		return nil, err
	}
	res := &Result{Rows: rows, Close: func() error {
		err := rows.Close()
		sess.Close()
		return err
	}}
	for _, c := range cts {
		res.Columns = append(res.Columns, Column{Name: c.Name(), Type: c.DatabaseTypeName()})
	}
	return res, nil
}

func (q *duckQuerier) Describe(ctx context.Context, subj access.Subject, query string) ([]Column, error) {
	res, err := q.Query(ctx, subj, "DESCRIBE "+query)
	if err != nil {
		return nil, err
	}
	defer res.close()
	var out []Column
	for res.Rows.Next() {
		var name, typ string
		var rest [4]any
		if err := res.Rows.Scan(&name, &typ, &rest[0], &rest[1], &rest[2], &rest[3]); err != nil {
			return nil, err
		}
		out = append(out, Column{Name: name, Type: typ})
	}
	return out, res.Rows.Err()
}

// env is a running endpoint over a real metastore (SQLite) and identity.
type env struct {
	srv   *Server
	q     *duckQuerier
	store metastore.Store
	addr  string
	token string // alice's secret
	tokID string
}

type envOption func(*Server)

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	ctx := context.Background()
	e, err := duckdb.Open(ctx, duckdb.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	sess, err := e.Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []string{
		`CREATE TABLE sales_orders AS SELECT * FROM (VALUES
			(1, 'o''brien', 19.99::DECIMAL(18,2), '6f1c2a9e-3b7d-4c1e-9f00-0a1b2c3d4e5f'::UUID, TIMESTAMPTZ '2024-03-01 10:00:00+00', [1, 2, NULL], ['a', NULL], NULL::INTEGER),
			(2, 'zoë', -0.50::DECIMAL(18,2), NULL::UUID, NULL::TIMESTAMPTZ, []::INTEGER[], NULL::VARCHAR[], 7)
		) t(id, customer, amount, ref, placed_at, qty, tags, note)`,
		`CREATE VIEW big AS SELECT i, 'row ' || i::VARCHAR AS s, i * 0.5 AS d FROM range(1000000) t(i)`,
	} {
		if _, err := sess.Exec(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	sess.Close()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "meta.db"), metastore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	tok, secret, err := identity.Minter{Store: store, Clock: rhizome.SystemClock{}}.Create(ctx, identity.TokenSpec{Principal: "alice", Name: "sql"})
	if err != nil {
		t.Fatal(err)
	}
	q := &duckQuerier{e: e, deny: map[string]bool{}}
	srv := &Server{
		Querier: q,
		Authenticate: func(ctx context.Context, user, password string) (access.Subject, error) {
			p, err := identity.Authenticate(ctx, store, rhizome.SystemClock{}, password)
			if err != nil {
				return access.Subject{}, err
			}
			return access.SubjectOf(p), nil
		},
		Logger:  slog.New(slog.DiscardHandler),
		Version: "test",
	}
	for _, o := range opts {
		o(srv)
	}
	ln, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &env{srv: srv, q: q, store: store, addr: ln.Addr().String(), token: secret, tokID: tok.ID}
}

func (e *env) url(sslmode string) string {
	return fmt.Sprintf("postgres://alice:%s@%s/rhizome?sslmode=%s", e.token, e.addr, sslmode)
}

// connect opens a pgx connection whose context cancellation sends a
// CancelRequest (as psql's Ctrl-C does) rather than closing the socket.
func (e *env) connect(t *testing.T, mode pgx.QueryExecMode) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(e.url("disable"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = mode
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, CancelRequestDelay: 0, DeadlineDelay: 5 * time.Second}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}
