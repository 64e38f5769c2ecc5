package pgwire

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/rhizome-mesh/rhizome/metastore"
)

var modes = map[string]pgx.QueryExecMode{
	"extended": pgx.QueryExecModeCacheStatement, // binary results where pgx can
	"simple":   pgx.QueryExecModeSimpleProtocol, // text results
}

func TestTypesPgx(t *testing.T) {
	e := newEnv(t)
	for name, mode := range modes {
		t.Run(name, func(t *testing.T) {
			conn := e.connect(t, mode)
			ctx := context.Background()
			var (
				id       int32
				customer string
				amount   pgtype.Numeric
				ref      pgtype.UUID
				placed   pgtype.Timestamptz
				qty      []*int32
				tags     []*string
				note     *int32
			)
			err := conn.QueryRow(ctx, "SELECT id, customer, amount, ref, placed_at, qty, tags, note FROM sales_orders ORDER BY id").
				Scan(&id, &customer, &amount, &ref, &placed, &qty, &tags, &note)
			if err != nil {
				t.Fatal(err)
			}
			if id != 1 || customer != "o'brien" {
				t.Errorf("id, customer = %d, %q", id, customer)
			}
			if v, _ := amount.Value(); v != "19.99" {
				t.Errorf("amount = %v, want 19.99", v)
			}
			if v, _ := ref.Value(); v != "6f1c2a9e-3b7d-4c1e-9f00-0a1b2c3d4e5f" {
				t.Errorf("ref = %v", v)
			}
			if want := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC); !placed.Valid || !placed.Time.Equal(want) {
				t.Errorf("placed_at = %v, want %v", placed.Time, want)
			}
			if len(qty) != 3 || qty[0] == nil || *qty[0] != 1 || *qty[1] != 2 || qty[2] != nil {
				t.Errorf("qty = %v", qty)
			}
			if len(tags) != 2 || tags[0] == nil || *tags[0] != "a" || tags[1] != nil {
				t.Errorf("tags = %v", tags)
			}
			if note != nil {
				t.Errorf("note = %v, want NULL", *note)
			}

			// The second row: NULLs in every nullable type, an empty list.
			var ref2 pgtype.UUID
			var placed2 pgtype.Timestamptz
			var qty2 []int32
			var tags2 []string
			var amount2 pgtype.Numeric
			err = conn.QueryRow(ctx, "SELECT amount, ref, placed_at, qty, tags FROM sales_orders WHERE id = 2").Scan(&amount2, &ref2, &placed2, &qty2, &tags2)
			if err != nil {
				t.Fatal(err)
			}
			if v, _ := amount2.Value(); v != "-0.50" {
				t.Errorf("amount = %v, want -0.50", v)
			}
			if ref2.Valid || placed2.Valid || len(qty2) != 0 || tags2 != nil {
				t.Errorf("row 2 = %v %v %v %v, want NULL, NULL, [], NULL", ref2, placed2, qty2, tags2)
			}

			// Scalar types computed in SQL.
			var (
				b    bool
				ti   int16
				i8   int64
				huge pgtype.Numeric
				f4   float32
				f8   float64
				d    time.Time
				tm   pgtype.Time
				ts   time.Time
				iv   pgtype.Interval
				blob []byte
				js   map[string]any
				dec  pgtype.Numeric
			)
			err = conn.QueryRow(ctx, `SELECT true, 7::TINYINT, 9007199254740993::BIGINT, 170141183460469231731687303715884105727::HUGEINT,
				1.5::FLOAT, 2.25::DOUBLE, DATE '2024-02-29', TIME '12:34:56.789', TIMESTAMP '2024-01-02 03:04:05.123456',
				INTERVAL '1 year 2 days 3 hours', 'ab'::BLOB, {'a': 1, 'b': 'x'}, 12345678901234567890.123::DECIMAL(38,3)`).
				Scan(&b, &ti, &i8, &huge, &f4, &f8, &d, &tm, &ts, &iv, &blob, &js, &dec)
			if err != nil {
				t.Fatal(err)
			}
			if !b || ti != 7 || i8 != 9007199254740993 || f4 != 1.5 || f8 != 2.25 {
				t.Errorf("scalars = %v %v %v %v %v", b, ti, i8, f4, f8)
			}
			if v, _ := huge.Value(); v != "170141183460469231731687303715884105727" {
				t.Errorf("hugeint = %v", v)
			}
			if v, _ := dec.Value(); v != "12345678901234567890.123" {
				t.Errorf("decimal(38,3) = %v", v)
			}
			if !d.Equal(time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)) {
				t.Errorf("date = %v", d)
			}
			if tm.Microseconds != (12*3600+34*60+56)*1e6+789000 {
				t.Errorf("time = %v", tm.Microseconds)
			}
			if !ts.Equal(time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.UTC)) {
				t.Errorf("timestamp = %v", ts)
			}
			if iv.Months != 12 || iv.Days != 2 || iv.Microseconds != 3*3600e6 {
				t.Errorf("interval = %+v", iv)
			}
			if string(blob) != "ab" {
				t.Errorf("blob = %q", blob)
			}
			if js["a"] != float64(1) || js["b"] != "x" {
				t.Errorf("struct = %v", js)
			}
		})
	}
}

func TestParameters(t *testing.T) {
	e := newEnv(t)
	conn := e.connect(t, pgx.QueryExecModeCacheStatement)
	ctx := context.Background()
	var customer string
	if err := conn.QueryRow(ctx, "SELECT customer FROM sales_orders WHERE id = $1", 1).Scan(&customer); err != nil {
		t.Fatal(err)
	}
	if customer != "o'brien" {
		t.Errorf("customer = %q", customer)
	}
	// A value with a quote stays a value.
	var n int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM sales_orders WHERE customer = $1 OR customer = $2", "o'brien", "x' OR 1=1 --").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("count = %d, want 1", n)
	}
	// '$1' in a string is not a parameter.
	var s string
	if err := conn.QueryRow(ctx, "SELECT '$1' AS lit, customer FROM sales_orders WHERE id = $1 -- $2", 2).Scan(&s, &customer); err != nil {
		t.Fatal(err)
	}
	if s != "$1" || customer != "zoë" {
		t.Errorf("got %q, %q", s, customer)
	}
	// The same prepared statement with another value.
	if err := conn.QueryRow(ctx, "SELECT customer FROM sales_orders WHERE id = $1", 2).Scan(&customer); err != nil {
		t.Fatal(err)
	}
	if customer != "zoë" {
		t.Errorf("customer = %q", customer)
	}
	// A parameter alone as a result column, untyped: text, as in Postgres.
	if err := conn.QueryRow(ctx, "SELECT $1", "hello").Scan(&s); err != nil || s != "hello" {
		t.Errorf("SELECT $1 = %q, %v", s, err)
	}
	if err := conn.QueryRow(ctx, "SELECT $1::INTEGER + 1", 41).Scan(&n); err != nil || n != 42 {
		t.Errorf("SELECT $1::INTEGER + 1 = %d, %v", n, err)
	}
}

func TestLargeResult(t *testing.T) {
	e := newEnv(t)
	for name, mode := range modes {
		t.Run(name, func(t *testing.T) {
			conn := e.connect(t, mode)
			rows, err := conn.Query(context.Background(), "SELECT i, s, d FROM big")
			if err != nil {
				t.Fatal(err)
			}
			var n, sum int64
			for rows.Next() {
				var i int64
				var s string
				var d pgtype.Numeric
				if err := rows.Scan(&i, &s, &d); err != nil {
					t.Fatal(err)
				}
				n++
				sum += i
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if n != 1_000_000 || sum != 999_999*1_000_000/2 {
				t.Errorf("rows = %d, sum = %d", n, sum)
			}
			if tag := rows.CommandTag().String(); tag != "SELECT 1000000" {
				t.Errorf("tag = %q", tag)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	e := newEnv(t)
	for name, mode := range modes {
		t.Run(name, func(t *testing.T) {
			conn := e.connect(t, mode)
			ctx := context.Background()
			for _, c := range []struct{ sql, code string }{
				{"SELEC 1", "42601"},
				{"SELECT * FROM secret", "42501"},
				{"SELECT * FROM no_such_table", "42P01"},
				{"SELECT no_such_column FROM sales_orders", "42703"},
				{"SELECT 1; SELECT 2", "42501"},
				{"SET memory_limit = '100GB'", "42501"},
			} {
				if name == "extended" && strings.Contains(c.sql, ";") {
					continue // pgx sends one statement per Parse
				}
				_, err := conn.Exec(ctx, c.sql)
				if got := pgCode(err); got != c.code {
					t.Errorf("%s: SQLSTATE %q (%v), want %s", c.sql, got, err, c.code)
				}
				// The session goes on.
				var one int32
				if err := conn.QueryRow(ctx, "SELECT 1::INTEGER").Scan(&one); err != nil || one != 1 {
					t.Fatalf("after %s: %v", c.sql, err)
				}
			}
		})
	}
}

func TestDriverStatements(t *testing.T) {
	e := newEnv(t)
	conn := e.connect(t, pgx.QueryExecModeSimpleProtocol)
	ctx := context.Background()
	for _, st := range []string{"SET extra_float_digits = 3", "SET client_encoding TO 'UTF8'", "SET application_name = 'DBeaver'",
		"BEGIN", "COMMIT", "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED", "SET TIME ZONE 'UTC'",
		"SET extra_float_digits = 3; SET client_encoding = 'UTF8'", "DISCARD ALL", "RESET ALL"} {
		if _, err := conn.Exec(ctx, st); err != nil {
			t.Errorf("%s: %v", st, err)
		}
	}
	var v string
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&v); err != nil || v != "15.0" {
		t.Errorf("SHOW server_version = %q, %v", v, err)
	}
	if err := conn.QueryRow(ctx, "select version()").Scan(&v); err != nil || !strings.Contains(v, "PostgreSQL 15.0 (Rhizome test") {
		t.Errorf("version() = %q, %v", v, err)
	}
	if err := conn.QueryRow(ctx, "select current_user").Scan(&v); err != nil || v != "alice" {
		t.Errorf("current_user = %q, %v", v, err)
	}
	if _, err := conn.Exec(ctx, "SET application_name = 'Metabase'"); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SHOW application_name").Scan(&v); err != nil || v != "Metabase" {
		t.Errorf("SHOW application_name = %q, %v", v, err)
	}
	// pgx transactions: BEGIN and COMMIT are accepted, the status follows.
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st := conn.PgConn().TxStatus(); st != 'T' {
		t.Errorf("status in a transaction = %c", st)
	}
	var n int64
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM sales_orders").Scan(&n); err != nil || n != 2 {
		t.Errorf("count in a transaction = %d, %v", n, err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if st := conn.PgConn().TxStatus(); st != 'I' {
		t.Errorf("status after COMMIT = %c", st)
	}
	// The same through the extended protocol.
	xconn := e.connect(t, pgx.QueryExecModeCacheStatement)
	if _, err := xconn.Exec(ctx, "SET extra_float_digits = 3"); err != nil {
		t.Error(err)
	}
	if err := xconn.QueryRow(ctx, "SHOW transaction isolation level").Scan(&v); err != nil || v != "repeatable read" {
		t.Errorf("SHOW transaction isolation level = %q, %v", v, err)
	}
}

// slowQuery runs for minutes on DuckDB unless interrupted.
const slowQuery = "SELECT count(*) FROM range(100000) a, range(100000) b WHERE (a.range * b.range) % 7 = 3"

func TestCancel(t *testing.T) {
	e := newEnv(t)
	conn := e.connect(t, pgx.QueryExecModeSimpleProtocol)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := conn.Exec(ctx, slowQuery)
	if code := pgCode(err); code != "57014" {
		t.Fatalf("canceled query: %v (SQLSTATE %q), want 57014", err, code)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("cancel took %s", d)
	}
	// The CancelRequest ended the statement, not the session.
	var one int32
	if err := conn.QueryRow(context.Background(), "SELECT 1::INTEGER").Scan(&one); err != nil {
		t.Fatalf("after cancel: %v", err)
	}
}

func TestStatementTimeout(t *testing.T) {
	e := newEnv(t, func(s *Server) { s.StatementTimeout = 500 * time.Millisecond })
	conn := e.connect(t, pgx.QueryExecModeCacheStatement)
	ctx := context.Background()
	_, err := conn.Exec(ctx, slowQuery)
	if code := pgCode(err); code != "57014" || !strings.Contains(err.Error(), "statement timeout") {
		t.Fatalf("slow query: %v (SQLSTATE %q), want 57014 statement timeout", err, code)
	}
	// A session may lower it.
	if _, err := conn.Exec(ctx, "SET statement_timeout = 100"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = conn.Exec(ctx, slowQuery)
	if code := pgCode(err); code != "57014" {
		t.Fatalf("slow query: %v, want 57014", err)
	}
	if d := time.Since(start); d > 450*time.Millisecond {
		t.Errorf("SET statement_timeout = 100 stopped the query after %s", d)
	}
}

func TestRevocation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	// A revoked grant: serve refuses the next statement (42501); the
	// session stays.
	conn := e.connect(t, pgx.QueryExecModeCacheStatement)
	var n int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM sales_orders").Scan(&n); err != nil {
		t.Fatal(err)
	}
	e.q.mu.Lock()
	e.q.deny["alice"] = true
	e.q.mu.Unlock()
	_, err := conn.Exec(ctx, "SELECT count(*) FROM sales_orders")
	if code := pgCode(err); code != "42501" {
		t.Fatalf("after the grant was revoked: %v, want 42501", err)
	}
	e.q.mu.Lock()
	delete(e.q.deny, "alice")
	e.q.mu.Unlock()

	// A revoked token (through the store): the next statement ends the
	// session with FATAL 28P01.
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM sales_orders").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Update(ctx, func(tx metastore.Tx) error { return tx.RevokeToken(ctx, e.tokID) }); err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, "SELECT count(*) FROM sales_orders")
	if code := pgCode(err); code != "28P01" || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("after the token was revoked: %v, want 28P01", err)
	}
	if err := conn.Ping(ctx); err == nil {
		t.Error("the session is still open after its token was revoked")
	}
	// New sessions with it fail at login.
	if _, err := pgx.Connect(ctx, e.url("disable")); pgCode(err) != "28P01" {
		t.Errorf("login with a revoked token: %v, want 28P01", err)
	}
}

func TestBadPassword(t *testing.T) {
	e := newEnv(t)
	_, err := pgx.Connect(context.Background(), strings.Replace(e.url("disable"), e.token, "rhz_wrong", 1))
	if pgCode(err) != "28P01" {
		t.Fatalf("wrong token: %v, want 28P01", err)
	}
}

func TestTLS(t *testing.T) {
	cert := selfSigned(t)
	e := newEnv(t, func(s *Server) { s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}} })
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.url("require"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if !isTLS(conn) {
		t.Error("the connection is not encrypted")
	}
	var n int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM sales_orders").Scan(&n); err != nil || n != 2 {
		t.Fatalf("count = %d, %v", n, err)
	}
	// Without TLS the endpoint refuses the session.
	_, err = pgx.Connect(ctx, e.url("disable"))
	if code := pgCode(err); code != "28000" {
		t.Fatalf("plain connection: %v, want 28000", err)
	}
	// psql over TLS.
	out, err := exec.Command(psqlPath(t), e.url("require"), "-XAtc", "select count(*) from sales_orders").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "2" {
		t.Fatalf("psql over TLS: %v\n%s", err, out)
	}
}

func isTLS(c *pgx.Conn) bool {
	_, ok := c.PgConn().Conn().(*tls.Conn)
	return ok
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// psqlPath finds psql: the tests need it (Debian's postgresql-client).
func psqlPath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("psql")
	if err != nil {
		t.Fatalf("psql is not installed (apt-get install postgresql-client): %v", err)
	}
	return p
}

func TestPsql(t *testing.T) {
	e := newEnv(t)
	psql := psqlPath(t)
	run := func(args ...string) (string, error) {
		out, err := exec.Command(psql, append([]string{e.url("disable"), "-X"}, args...)...).CombinedOutput()
		return string(out), err
	}
	out, err := run("-Atc", "select id, customer, amount, qty, tags, note from sales_orders order by id")
	if err != nil {
		t.Fatalf("psql: %v\n%s", err, out)
	}
	want := "1|o'brien|19.99|{1,2,NULL}|{a,NULL}|\n2|zoë|-0.50|{}||7\n"
	if out != want {
		t.Errorf("psql output:\n%s\nwant:\n%s", out, want)
	}
	out, err = run("-c", `\dt`)
	if err != nil {
		t.Fatalf(`psql \dt: %v`+"\n%s", err, out)
	}
	if !strings.Contains(out, "sales_orders") {
		t.Errorf(`\dt does not list sales_orders:`+"\n%s", out)
	}
	out, err = run("-c", `\l`)
	if err != nil || !strings.Contains(out, "rhizome") || !strings.Contains(out, "UTF8") {
		t.Errorf(`psql \l: %v`+"\n%s", err, out)
	}
	out, err = run("-c", `\dt sales*`)
	if err != nil || !strings.Contains(out, "sales_orders") || strings.Contains(out, "big") {
		t.Errorf(`psql \dt sales*: %v`+"\n%s", err, out)
	}
	out, err = run("-c", `describe sales_orders`)
	if err != nil || !strings.Contains(out, "customer") {
		t.Errorf(`psql describe sales_orders: %v`+"\n%s", err, out)
	}
	// Errors: psql exits 1 and prints the message with its SQLSTATE.
	out, err = run("-v", "VERBOSITY=verbose", "-c", "select * from secret")
	if err == nil || !strings.Contains(out, "42501") || !strings.Contains(out, "may not read sales.secret") {
		t.Errorf("forbidden query through psql: %v\n%s", err, out)
	}
	out, err = run("-c", "copy sales_orders to '/tmp/x.csv'")
	if err == nil {
		t.Errorf("COPY ran through psql:\n%s", out)
	}
}

func TestJSONColumns(t *testing.T) {
	e := newEnv(t)
	conn := e.connect(t, pgx.QueryExecModeCacheStatement)
	var m, nested string
	err := conn.QueryRow(context.Background(), "SELECT map {'k': 1}::VARCHAR AS m0, to_json(map {'k': 1})::VARCHAR, [[1],[2]]::VARCHAR").Scan(&m, &nested, new(string))
	if err != nil {
		t.Fatal(err)
	}
	var raw json.RawMessage
	if err := conn.QueryRow(context.Background(), "SELECT map {'k': 1}").Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if string(raw) != `{"k":1}` {
		t.Errorf("map = %s", raw)
	}
	if err := conn.QueryRow(context.Background(), "SELECT [[1],[2]]").Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if string(raw) != `[[1],[2]]` {
		t.Errorf("nested list = %s", raw)
	}
	for name, mode := range modes {
		c := e.connect(t, mode)
		var decs []pgtype.Numeric
		var ids []pgtype.UUID
		if err := c.QueryRow(context.Background(), "SELECT [1.5::DECIMAL(4,1), NULL, -20.0], ['6f1c2a9e-3b7d-4c1e-9f00-0a1b2c3d4e5f'::UUID]").Scan(&decs, &ids); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		v0, _ := decs[0].Value()
		v2, _ := decs[2].Value()
		u, _ := ids[0].Value()
		if len(decs) != 3 || v0 != "1.5" || decs[1].Valid || v2 != "-20.0" || u != "6f1c2a9e-3b7d-4c1e-9f00-0a1b2c3d4e5f" {
			t.Errorf("%s: decimal[] = %v %v %v, uuid[] = %v", name, v0, decs[1], v2, u)
		}
	}
}

// A client that goes away mid-result stops its statement; the server
// goes on serving and closes promptly.
func TestClientGoesAway(t *testing.T) {
	e := newEnv(t)
	conn := e.connect(t, pgx.QueryExecModeSimpleProtocol)
	rows, err := conn.Query(context.Background(), "SELECT * FROM big, range(100)")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10 && rows.Next(); i++ {
	}
	_ = conn.PgConn().Conn().Close() // no Terminate: the socket just closes
	other := e.connect(t, pgx.QueryExecModeCacheStatement)
	var n int64
	if err := other.QueryRow(context.Background(), "SELECT count(*) FROM sales_orders").Scan(&n); err != nil || n != 2 {
		t.Fatalf("another session: %d, %v", n, err)
	}
	start := time.Now()
	if err := e.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 6*time.Second {
		t.Errorf("Close took %s", d)
	}
}
