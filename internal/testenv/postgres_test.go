package testenv

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"
)

var adminDSN string

func TestMain(m *testing.M) {
	dsn, stop, err := Postgres()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	adminDSN = dsn
	dir := pg.dir
	code := m.Run()
	stop()
	if _, err := os.Stat(dir); code == 0 && !os.IsNotExist(err) {
		fmt.Fprintf(os.Stderr, "stop left %s behind (%v)\n", dir, err)
		code = 1
	}
	if err := goleak.Find(); code == 0 && err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

func query(t *testing.T, dsn, sql string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func TestServerIsEphemeral(t *testing.T) {
	if !strings.HasPrefix(adminDSN, "postgres://postgres@127.0.0.1:") {
		t.Errorf("admin DSN %q is not on loopback", adminDSN)
	}
	dataDir := query(t, adminDSN, "SHOW data_directory")
	if !strings.HasPrefix(dataDir, os.TempDir()) || !strings.Contains(dataDir, "rhizome-pg-") {
		t.Errorf("data_directory = %s, want a fresh temporary directory", dataDir)
	}
	if sock := query(t, adminDSN, "SHOW unix_socket_directories"); !strings.Contains(sock, "rhizome-pg-") {
		t.Errorf("unix_socket_directories = %s, want the temporary directory", sock)
	}
	if os.Geteuid() == 0 {
		if u := query(t, adminDSN, "SELECT current_setting('data_directory') || ' ' || current_user"); !strings.HasSuffix(u, " postgres") {
			t.Errorf("server user: %s", u)
		}
	}
}

func TestNewDatabaseIsFreshAndIsolated(t *testing.T) {
	a, b := NewDatabase(t), NewDatabase(t)
	if a == b {
		t.Fatalf("two NewDatabase calls returned %s", a)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE x (id int)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if n := query(t, b, "SELECT count(*)::text FROM pg_tables WHERE tablename = 'x'"); n != "0" {
		t.Errorf("a table created in one database is visible in another")
	}

	var name string
	t.Run("dropped at cleanup", func(t *testing.T) {
		dsn := NewDatabase(t)
		name = query(t, dsn, "SELECT current_database()")
	})
	if n := query(t, adminDSN, "SELECT count(*)::text FROM pg_database WHERE datname = '"+name+"'"); n != "0" {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

func TestPostgresIsShared(t *testing.T) {
	dsn, stop, err := Postgres()
	if err != nil {
		t.Fatal(err)
	}
	stop()
	stop() // idempotent
	if dsn != adminDSN {
		t.Errorf("second Postgres() = %s, want the running server %s", dsn, adminDSN)
	}
	// The TestMain reference keeps it running.
	query(t, adminDSN, "SELECT 'still up'")
}

func TestBinDir(t *testing.T) {
	dir, err := PostgresBinDir()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"initdb", "pg_ctl", "postgres"} {
		if !isExec(dir + "/" + p) {
			t.Errorf("%s/%s is not executable", dir, p)
		}
	}
}
