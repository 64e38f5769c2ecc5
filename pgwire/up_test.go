package pgwire_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/rhizome-mesh/rhizome/access"
	"github.com/rhizome-mesh/rhizome/client"
	"github.com/rhizome-mesh/rhizome/server"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var readyLine = regexp.MustCompile(`SQL endpoint ready at (postgres://\S+)`)
var restLine = regexp.MustCompile(`ready at (http://\S+)`)

// TestUp runs the endpoint as `rhizome up` does (server.Serve with
// PGListen): the admin token logs in, serve answers, a token revoked
// through the REST API ends its open session, and the endpoint stops
// with the server.
func TestUp(t *testing.T) {
	psql, err := exec.LookPath("psql")
	if err != nil {
		t.Fatalf("psql is not installed (apt-get install postgresql-client): %v", err)
	}
	dir := t.TempDir()
	out := &syncBuffer{}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- server.Serve(ctx, server.Config{DataDir: dir, Listen: "127.0.0.1:0", PGListen: "127.0.0.1:0", Stdout: out, Version: "test"})
	}()
	defer func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("the server did not stop")
		}
	}()
	var pgURL, restURL string
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if m := readyLine.FindStringSubmatch(out.String()); m != nil {
			pgURL = m[1]
			restURL = restLine.FindStringSubmatch(out.String())[1]
			break
		}
		select {
		case err := <-done:
			t.Fatalf("Serve: %v\n%s", err, out)
		default:
		}
	}
	if pgURL == "" {
		t.Fatalf("no SQL endpoint line:\n%s", out)
	}
	adminTok, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	admin := strings.TrimSpace(string(adminTok))
	dsn := func(tok string) string {
		return strings.Replace(pgURL, "postgres://", "postgres://admin:"+tok+"@", 1) + "/rhizome?sslmode=disable"
	}
	res, err := exec.Command(psql, dsn(admin), "-XAtc", "select 40 + 2").CombinedOutput()
	if err != nil || strings.TrimSpace(string(res)) != "42" {
		t.Fatalf("psql through rhizome up: %v\n%s", err, res)
	}
	res, err = exec.Command(psql, dsn(admin), "-Xc", `\dt`).CombinedOutput()
	if err != nil {
		t.Fatalf(`psql \dt: %v`+"\n%s", err, res)
	}

	// A token of bob's, revoked through the REST API while his session
	// is open.
	api := client.New(restURL, admin, http.DefaultClient)
	bob, err := api.CreateToken(context.Background(), client.TokenRequest{Principal: "bob", Name: "sql"})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(context.Background(), dsn(bob.Secret))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT 1").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if err := api.RevokeToken(context.Background(), bob.Token.ID); err != nil {
		t.Fatal(err)
	}
	err = conn.QueryRow(context.Background(), "SELECT 1").Scan(&n)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "28P01" || pe.Severity != "FATAL" {
		t.Fatalf("a statement after the token was revoked: %v, want FATAL 28P01", err)
	}
}

// TestUpDemo reads the demo mesh's products through `rhizome up`'s
// endpoint with serve's real decisions: types of a real product, a
// product bob may not read (42501), a grant that opens it during his
// session and its revocation, which closes it again at the next statement.
func TestUpDemo(t *testing.T) {
	dir := t.TempDir()
	out := &syncBuffer{}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- server.Serve(ctx, server.Config{DataDir: dir, Listen: "127.0.0.1:0", PGListen: "127.0.0.1:0", Stdout: out, Version: "test", Demo: true})
	}()
	defer func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("the server did not stop")
		}
	}()
	var pgURL, restURL string
	for deadline := time.Now().Add(60 * time.Second); pgURL == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if m := readyLine.FindStringSubmatch(out.String()); m != nil {
			pgURL, restURL = m[1], restLine.FindStringSubmatch(out.String())[1]
		}
	}
	if pgURL == "" {
		t.Fatalf("no SQL endpoint line:\n%s", out)
	}
	adminTok, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	dsn := func(user, tok string) string {
		return strings.Replace(pgURL, "postgres://", "postgres://"+user+":"+tok+"@", 1) + "/rhizome?sslmode=disable"
	}
	bg := context.Background()
	admin, err := pgx.Connect(bg, dsn("admin", strings.TrimSpace(string(adminTok))))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(bg)
	// The demo's pipelines publish sales.orders within seconds.
	var n int64
	for deadline := time.Now().Add(120 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		err = admin.QueryRow(bg, "SELECT count(*) FROM sales.orders").Scan(&n)
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || n != 20000 {
		t.Fatalf("sales.orders: %d rows, %v", n, err)
	}
	var (
		id     string
		date   time.Time
		amount pgtype.Numeric
	)
	if err := admin.QueryRow(bg, "SELECT order_id, order_date, amount FROM sales.orders WHERE order_id = $1", "ORD-000002").Scan(&id, &date, &amount); err != nil {
		t.Fatal(err)
	}
	if v, _ := amount.Value(); id != "ORD-000002" || v != "487.28" || !date.Equal(time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("ORD-000002 = %s %v %v", id, date, v)
	}

	api := client.New(restURL, strings.TrimSpace(string(adminTok)), http.DefaultClient)
	tok, err := api.CreateToken(bg, client.TokenRequest{Principal: "zed", Name: "sql"})
	if err != nil {
		t.Fatal(err)
	}
	zed, err := pgx.Connect(bg, dsn("zed", tok.Secret))
	if err != nil {
		t.Fatal(err)
	}
	defer zed.Close(bg)
	if err := zed.QueryRow(bg, "SELECT count(*) FROM sales.product_catalog").Scan(&n); err != nil {
		t.Fatalf("a public product: %v", err)
	}
	_, err = zed.Exec(bg, "SELECT count(*) FROM sales.orders")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "42501" {
		t.Fatalf("zed reads a confidential product: %v, want 42501", err)
	}
	// A typo in a product domain is 42P01 (product ids are public); a
	// relation outside the products' domains stays 42501.
	_, err = zed.Exec(bg, "SELECT * FROM sales.ordres")
	if !errors.As(err, &pe) || pe.Code != "42P01" {
		t.Errorf("an unknown product: %v, want 42P01", err)
	}
	_, err = zed.Exec(bg, "SELECT * FROM main.ordres")
	if !errors.As(err, &pe) || pe.Code != "42501" {
		t.Errorf("a relation in schema main: %v, want 42501", err)
	}
	// SHOW TABLES lists the products zed reads, qualified.
	rows, err := zed.Query(bg, "SHOW TABLES")
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || !slices.Contains(names, "sales.product_catalog") || slices.Contains(names, "sales.orders") {
		t.Errorf("SHOW TABLES = %v, %v; want sales.product_catalog, not sales.orders", names, err)
	}
	// psql's \d TABLE, \d+ TABLE and \dn describe what zed reads.
	psql, err := exec.LookPath("psql")
	if err != nil {
		t.Fatalf("psql is not installed: %v", err)
	}
	for _, meta := range []string{`\d sales.product_catalog`, `\d+ sales.product_catalog`, `\dn`} {
		res, err := exec.Command(psql, dsn("zed", tok.Secret), "-Xc", meta).CombinedOutput()
		want := "list_price"
		if meta == `\dn` {
			want = "sales"
		}
		if err != nil || !strings.Contains(string(res), want) {
			t.Errorf("psql %s: %v\n%s", meta, err, res)
		}
	}
	// The other SHOW forms through the extended protocol too.
	for _, q := range []string{"SHOW ALL TABLES", "DESCRIBE sales.product_catalog", "SUMMARIZE sales.product_catalog"} {
		rows, err := zed.Query(bg, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		n := 0
		for rows.Next() {
			if _, err := rows.Values(); err != nil {
				t.Errorf("%s: %v", q, err)
			}
			n++
		}
		rows.Close()
		if rows.Err() != nil || n == 0 {
			t.Errorf("%s: %d rows, %v", q, n, rows.Err())
		}
	}
	req, err := client.New(restURL, tok.Secret, http.DefaultClient).RequestAccess(bg, access.NewRequest{ProductID: "dp.sales.orders", Purpose: "pgwire test", Duration: "30d"})
	if err != nil {
		t.Fatal(err)
	}
	_, grant, err := api.ApproveAccess(bg, req.ID, access.Approval{})
	if err != nil {
		t.Fatal(err)
	}
	if err := zed.QueryRow(bg, "SELECT count(*) FROM sales.orders").Scan(&n); err != nil || n != 20000 {
		t.Fatalf("with a grant: %d rows, %v", n, err)
	}
	if _, err := api.RevokeGrant(bg, grant.ID, "test"); err != nil {
		t.Fatal(err)
	}
	_, err = zed.Exec(bg, "SELECT count(*) FROM sales.orders")
	if !errors.As(err, &pe) || pe.Code != "42501" {
		t.Fatalf("after the grant was revoked: %v, want 42501", err)
	}
}
