package postgres_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/connector"
	"github.com/rhizome-mesh/rhizome/connector/postgres"
	"github.com/rhizome-mesh/rhizome/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, true)) }

func exec1(tb testing.TB, dsn string, sql ...string) {
	tb.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, s := range sql {
		if _, err := conn.Exec(ctx, s); err != nil {
			tb.Fatalf("%s: %v", s, err)
		}
	}
}

func stage(tb testing.TB, dsn string, cfg map[string]any) (*connector.Staged, string, error) {
	tb.Helper()
	cfg["dsn_secret"] = "env:PG_DSN"
	c, err := connector.Open("postgres", cfg)
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	st, err := c.Stage(context.Background(), connector.Env{StageDir: dir,
		Secrets: connector.EnvSecrets{Getenv: func(string) string { return dsn }}})
	return st, dir, err
}

const rows = 3000

const orders = `CREATE TABLE sales.orders (
	id bigint PRIMARY KEY,
	customer text,
	amount numeric(12,2) NOT NULL,
	ratio numeric,
	created timestamptz,
	day date NOT NULL,
	paid boolean,
	tags text[],
	ref uuid
);
INSERT INTO sales.orders
SELECT i,
	CASE WHEN i % 7 = 0 THEN NULL WHEN i % 11 = 0 THEN 'O''Hara, "Jr"' || i WHEN i % 13 = 0 THEN 'two' || chr(10) || 'lines'
		WHEN i = 1 THEN '' ELSE 'c' || i END,
	i * 1.25,
	CASE WHEN i % 5 = 0 THEN NULL ELSE i * 0.001 END,
	CASE WHEN i % 9 = 0 THEN NULL ELSE timestamptz '2024-01-01 00:00:00+00' + i * interval '1 minute 1.5 seconds' END,
	date '2024-01-01' + (i % 365),
	CASE WHEN i % 3 = 0 THEN NULL ELSE i % 2 = 0 END,
	ARRAY['a', 'b' || i],
	('00000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid
FROM generate_series(1, ` + "3000" + `) AS i`

// want is the CSV line Postgres' COPY writes for row i, computed here in
// Go from the same formulas.
func want(i int) string {
	q := func(s string) string {
		if s == "" || strings.ContainsAny(s, ",\"\r\n") {
			return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
		}
		return s
	}
	var f []string
	f = append(f, fmt.Sprint(i))
	switch {
	case i%7 == 0:
		f = append(f, "")
	case i%11 == 0:
		f = append(f, q(fmt.Sprintf(`O'Hara, "Jr"%d`, i)))
	case i%13 == 0:
		f = append(f, q("two\nlines"))
	case i == 1:
		f = append(f, q(""))
	default:
		f = append(f, fmt.Sprintf("c%d", i))
	}
	f = append(f, fmt.Sprintf("%d.%02d", i*125/100, i*125%100))
	if i%5 == 0 {
		f = append(f, "")
	} else {
		f = append(f, fmt.Sprintf("%d.%03d", i/1000, i%1000))
	}
	if i%9 == 0 {
		f = append(f, "")
	} else {
		ts := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 61500 * time.Millisecond)
		s := ts.Format("2006-01-02 15:04:05.9") + "+00"
		f = append(f, s)
	}
	f = append(f, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i%365).Format("2006-01-02"))
	switch {
	case i%3 == 0:
		f = append(f, "")
	case i%2 == 0:
		f = append(f, "t")
	default:
		f = append(f, "f")
	}
	f = append(f, fmt.Sprintf(`"{a,b%d}"`, i))
	f = append(f, fmt.Sprintf("00000000-0000-0000-0000-%012d", i))
	return strings.Join(f, ",")
}

func TestStageTable(t *testing.T) {
	dsn := testenv.NewDatabase(t)
	exec1(t, dsn, "CREATE SCHEMA sales", orders)
	st, dir, err := stage(t, dsn, map[string]any{"table": "sales.orders"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, st.Files[0]))
	if err != nil {
		t.Fatal(err)
	}
	var w strings.Builder
	w.WriteString("id,customer,amount,ratio,created,day,paid,tags,ref\n")
	for i := 1; i <= rows; i++ {
		w.WriteString(want(i) + "\n")
	}
	got, exp := strings.SplitAfter(string(b), "\n"), strings.SplitAfter(w.String(), "\n")
	for i := range min(len(got), len(exp)) {
		if got[i] != exp[i] {
			t.Fatalf("line %d:\n got %q\nwant %q", i+1, got[i], exp[i])
		}
	}
	if len(got) != len(exp) {
		t.Fatalf("%d lines, want %d", len(got), len(exp))
	}
	if st.Format != "csv" || st.Rows != rows || st.Bytes != int64(len(b)) {
		t.Errorf("Staged = %+v", st)
	}
	wantCols := []connector.Column{
		{Name: "id", Type: "BIGINT", Required: true},
		{Name: "customer", Type: "VARCHAR"},
		{Name: "amount", Type: "DECIMAL(12,2)", Required: true},
		{Name: "ratio", Type: "DOUBLE"},
		{Name: "created", Type: "TIMESTAMPTZ"},
		{Name: "day", Type: "DATE", Required: true},
		{Name: "paid", Type: "BOOLEAN"},
		{Name: "tags", Type: "VARCHAR"},
		{Name: "ref", Type: "UUID"},
	}
	if !slices.Equal(st.Columns, wantCols) {
		t.Errorf("Columns:\n got %v\nwant %v", st.Columns, wantCols)
	}
}

func TestStageQuery(t *testing.T) {
	dsn := testenv.NewDatabase(t)
	exec1(t, dsn, "CREATE SCHEMA sales", orders)
	st, dir, err := stage(t, dsn, map[string]any{"query": "SELECT id, amount, count(*) OVER () AS n FROM sales.orders WHERE id <= 3 ORDER BY id;"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, st.Files[0]))
	if string(b) != "id,amount,n\n1,1.25,3\n2,2.50,3\n3,3.75,3\n" || st.Rows != 3 {
		t.Errorf("staged %q, rows %d", b, st.Rows)
	}
	// A query's columns are never required: an outer join can null any.
	wantCols := []connector.Column{{Name: "id", Type: "BIGINT"}, {Name: "amount", Type: "DECIMAL(12,2)"}, {Name: "n", Type: "BIGINT"}}
	if !slices.Equal(st.Columns, wantCols) {
		t.Errorf("Columns = %v", st.Columns)
	}
}

func TestQueryErrors(t *testing.T) {
	dsn := testenv.NewDatabase(t)
	exec1(t, dsn, "CREATE SCHEMA sales", orders)
	for _, tt := range []struct {
		cfg  map[string]any
		code rhizome.ErrorCode
		msg  string
	}{
		{map[string]any{"table": "sales.order"}, rhizome.ENotFound, `table sales.order: relation "sales.order" does not exist (SQLSTATE 42P01)`},
		{map[string]any{"query": "DELETE FROM sales.orders RETURNING id"}, rhizome.EInvalid, "read-only transaction"},
		{map[string]any{"query": "SELEC 1"}, rhizome.EInvalid, "syntax error"},
	} {
		_, _, err := stage(t, dsn, tt.cfg)
		if rhizome.Code(err) != tt.code || err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%v: err = %v (%s), want %s %q", tt.cfg, err, rhizome.Code(err), tt.code, tt.msg)
		}
	}
	var n int
	conn, _ := pgx.Connect(context.Background(), dsn)
	defer conn.Close(context.Background())
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM sales.orders").Scan(&n); err != nil || n != rows {
		t.Errorf("rows after the DELETE attempt: %d, %v", n, err)
	}
}

func TestPostgresDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dsn := fmt.Sprintf("postgres://reader:hunter2@127.0.0.1:%d/crm?sslmode=disable", port)
	_, _, err = stage(t, dsn, map[string]any{"table": "customers", "connect_timeout": "2s"})
	host := fmt.Sprintf("127.0.0.1:%d/crm", port)
	if rhizome.Code(err) != rhizome.EUnavailable || err == nil || !strings.Contains(err.Error(), host) ||
		strings.Contains(err.Error(), "hunter2") {
		t.Errorf("err = %v (%s), want unavailable naming %s without the password", err, rhizome.Code(err), host)
	}
	t.Log(err)

	_, _, err = stage(t, "postgres://reader:hunter2@[bad", map[string]any{"table": "customers"})
	if rhizome.Code(err) != rhizome.EInvalid || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("bad DSN: %v", err)
	}
}

func TestConfig(t *testing.T) {
	for _, cfg := range []map[string]any{
		{"dsn_secret": "env:X"},
		{"dsn_secret": "env:X", "table": "a", "query": "SELECT 1"},
		{"dsn_secret": "postgres://u:p@h/db", "table": "a"},
	} {
		if _, err := connector.Open("postgres", cfg); rhizome.Code(err) != rhizome.EInvalid {
			t.Errorf("Open(%v) = %v", cfg, err)
		}
	}
	if got := postgres.DuckDBType(1700, -1); got != "DOUBLE" {
		t.Errorf("unconstrained numeric = %s", got)
	}
	if got := postgres.DuckDBType(1700, (50<<16|2)+4); got != "DOUBLE" {
		t.Errorf("numeric(50,2) = %s", got)
	}
}

var benchOnce sync.Once
var benchDSN string

const benchRows = 1_000_000

func BenchmarkPostgresStage(b *testing.B) {
	benchOnce.Do(func() {
		benchDSN = testenv.NewDatabase(b)
		exec1(b, benchDSN, `CREATE TABLE bench AS SELECT i AS id, 'customer ' || i AS name, (i * 1.25)::numeric(12,2) AS amount,
			timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second' AS created, CASE WHEN i % 10 = 0 THEN NULL ELSE i % 2 = 0 END AS flag
			FROM generate_series(1, 1000000) AS i`, "VACUUM ANALYZE bench")
	})
	const query = "SELECT * FROM bench"
	b.Run("connector", func(b *testing.B) {
		for b.Loop() {
			st, _, err := stage(b, benchDSN, map[string]any{"query": query})
			if err != nil || st.Rows != benchRows {
				b.Fatal(st, err)
			}
		}
		b.ReportMetric(float64(benchRows*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("psql", func(b *testing.B) {
		psql, err := exec.LookPath("psql")
		if err != nil {
			b.Skip("no psql in PATH")
		}
		for b.Loop() {
			out := filepath.Join(b.TempDir(), "out.csv")
			cmd := exec.Command(psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", benchDSN,
				"-c", `\copy (`+query+`) TO '`+out+`' WITH (FORMAT csv, HEADER)`)
			if msg, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("%v: %s", err, msg)
			}
		}
		b.ReportMetric(float64(benchRows*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}
