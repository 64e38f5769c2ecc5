package bench

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/access"
	"github.com/rhizome-mesh/rhizome/engine/duckdb"
	"github.com/rhizome-mesh/rhizome/pgwire"
	"github.com/rhizome-mesh/rhizome/serve"
)

// The SQL endpoint's throughput: ann's 1M governed rows of dp.shop.orders
// (id BIGINT, region VARCHAR, amount DECIMAL(18,2), card VARCHAR masked)
// streamed over the Postgres wire protocol to pgx (binary) and to psql
// (text, no COPY), against the same scan read through database/sql on a
// bare DuckDB over the same Parquet file. Reports rows/s.

const pgwireSQL = `SELECT * FROM shop.orders`

type pgwireQuerier struct{ svc *serve.Service }

func (q pgwireQuerier) Query(ctx context.Context, subj access.Subject, query string) (*pgwire.Result, error) {
	res, err := q.svc.Query(ctx, subj, query)
	if err != nil {
		return nil, err
	}
	cols := make([]pgwire.Column, len(res.Columns))
	for i, c := range res.Columns {
		cols[i] = pgwire.Column{Name: c.Name, Type: c.Type}
	}
	return &pgwire.Result{Columns: cols, Rows: res.Rows, Close: res.Close}, nil
}

func (q pgwireQuerier) Describe(ctx context.Context, subj access.Subject, query string) ([]pgwire.Column, error) {
	cols, err := q.svc.Describe(ctx, subj, query)
	out := make([]pgwire.Column, len(cols))
	for i, c := range cols {
		out[i] = pgwire.Column{Name: c.Name, Type: c.Type}
	}
	return out, err
}

// newPgwire starts the endpoint over the serve benchmark's service; ann's
// token is the password.
func newPgwire(b *testing.B, e *serveEnv) string {
	srv := &pgwire.Server{
		Querier:  pgwireQuerier{e.svc},
		SQLState: serve.SQLState,
		Authenticate: func(ctx context.Context, _, password string) (access.Subject, error) {
			if password != e.token {
				return access.Subject{}, rhizome.Errorf(rhizome.EUnauthorized, "unknown token")
			}
			return e.ann, nil
		},
	}
	ln, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return "postgres://ann:" + e.token + "@" + ln.Addr().String() + "/rhizome?sslmode=disable"
}

func reportRows(b *testing.B, rows int, start time.Time) float64 {
	rps := float64(rows) * float64(b.N) / time.Since(start).Seconds()
	b.ReportMetric(rps, "rows/s")
	return rps
}

func BenchmarkPgwireThroughput(b *testing.B) {
	e := newServeEnv(b)
	url := newPgwire(b, e)
	want := serveRows / 2
	var viaPgx, viaPsql, bare float64

	b.Run("pgx", func(b *testing.B) {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(ctx)
		start := time.Now()
		for b.Loop() {
			rows, err := conn.Query(ctx, pgwireSQL)
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for rows.Next() {
				if _, err := rows.Values(); err != nil {
					b.Fatal(err)
				}
				n++
			}
			if err := rows.Err(); err != nil {
				b.Fatal(err)
			}
			if n != want {
				b.Fatalf("rows = %d, want %d", n, want)
			}
		}
		viaPgx = reportRows(b, want, start)
	})

	b.Run("psql", func(b *testing.B) {
		psql, err := exec.LookPath("psql")
		if err != nil {
			b.Fatalf("psql is not installed (apt-get install postgresql-client): %v", err)
		}
		start := time.Now()
		for b.Loop() {
			// -At: unaligned rows, as a script reads them; output to a pipe
			// that counts lines (psql buffers the whole result first).
			cmd := exec.Command("sh", "-c", `"$0" "$1" -XAtc "$2" | wc -l`, psql, url, pgwireSQL)
			out, err := cmd.CombinedOutput()
			if err != nil {
				b.Fatalf("psql: %v\n%s", err, out)
			}
			if n, _ := strconv.Atoi(strings.TrimSpace(string(out))); n != want {
				b.Fatalf("psql printed %d rows, want %d: %.200s", n, want, out)
			}
		}
		viaPsql = reportRows(b, want, start)
	})

	b.Run("bare-duckdb", func(b *testing.B) {
		eng, err := duckdb.Open(ctx, duckdb.Options{AllowedDirs: []string{filepath.Dir(e.files[0])}})
		if err != nil {
			b.Fatal(err)
		}
		defer eng.Close()
		sess, err := eng.Session(ctx)
		if err != nil {
			b.Fatal(err)
		}
		defer sess.Close()
		if _, err := sess.Exec(ctx, "CREATE SCHEMA shop; CREATE VIEW shop.orders AS SELECT * FROM read_parquet('"+e.files[0]+"') WHERE region = 'EU'"); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for b.Loop() {
			rows, err := sess.Query(ctx, pgwireSQL)
			if err != nil {
				b.Fatal(err)
			}
			vals := make([]any, 4)
			ptrs := []any{&vals[0], &vals[1], &vals[2], &vals[3]}
			n := 0
			for rows.Next() {
				if err := rows.Scan(ptrs...); err != nil {
					b.Fatal(err)
				}
				n++
			}
			rows.Close()
			if n != want {
				b.Fatalf("rows = %d, want %d", n, want)
			}
		}
		bare = reportRows(b, want, start)
	})
	if viaPgx > 0 && bare > 0 {
		b.Logf("rows/s: pgx %.0f, psql %.0f, bare DuckDB (database/sql) %.0f", viaPgx, viaPsql, bare)
	}
}
