// Package testenv owns the throwaway services that tests need and no
// test may share with anything else. Today that is Postgres.
//
// # Postgres
//
// Postgres starts an ephemeral server for the test binary: initdb into a
// fresh temporary directory, then pg_ctl start on a free loopback port,
// with its unix socket in that directory too, so no system cluster is ever
// touched. The binaries come from /usr/lib/postgresql/<newest>/bin (Debian's
// layout), else from $PATH. When the tests run as root (as in CI), initdb,
// pg_ctl and postgres run as the "postgres" OS user, who owns the
// directory. The server is shared by the test binary; NewDatabase gives
// each test its own fresh database (CREATE DATABASE t_<n>), dropped when
// the test ends. Call Postgres from TestMain and stop the server there:
//
//	func TestMain(m *testing.M) {
//		_, stop, err := testenv.Postgres()
//		if err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			os.Exit(1)
//		}
//		code := m.Run()
//		stop() // pg_ctl stop -m immediate, then remove the directory
//		os.Exit(code)
//	}
//
// When the binaries are missing, Postgres returns an error that says to
// run `make test` (which installs postgresql): the tests fail, they never
// skip, so a green run always includes Postgres.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"
)

// pgServer is one running ephemeral server.
type pgServer struct {
	dir   string // temporary root: data/, the socket, logs
	bin   string // directory of initdb, pg_ctl, postgres
	port  int
	cred  *syscall.Credential // run as postgres when we are root
	admin string              // DSN of the postgres database
}

var (
	pgMu   sync.Mutex
	pg     *pgServer
	pgRefs int
	dbSeq  atomic.Int64
)

// Postgres starts the test binary's Postgres server, or returns the one
// already started, with the DSN of its "postgres" database (superuser
// "postgres", trust auth, loopback only). stop stops the server once every
// caller has called it, removing its directory.
func Postgres() (dsn string, stop func(), err error) {
	pgMu.Lock()
	defer pgMu.Unlock()
	if pg == nil {
		s, err := startPostgres()
		if err != nil {
			return "", nil, err
		}
		pg = s
	}
	pgRefs++
	var once sync.Once
	stop = func() {
		once.Do(func() {
			pgMu.Lock()
			defer pgMu.Unlock()
			pgRefs--
			if pgRefs == 0 && pg != nil {
				pg.stop()
				pg = nil
			}
		})
	}
	return pg.admin, stop, nil
}

// NewDatabase creates an empty database on the server that Postgres
// started and returns its DSN; the database is dropped when tb ends.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	pgMu.Lock()
	s := pg
	pgMu.Unlock()
	if s == nil {
		tb.Fatal("testenv: no Postgres server in this test binary: call testenv.Postgres from TestMain (see the package doc)")
	}
	name := fmt.Sprintf("t_%d", dbSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("testenv: %v", err)
		}
	})
	return s.dsn(name)
}

func (s *pgServer) dsn(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// exec runs one statement in the postgres database.
func (s *pgServer) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.admin)
	if err != nil {
		return fmt.Errorf("connect to the test server: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

// PostgresBinDir returns the directory holding initdb and pg_ctl: the
// newest /usr/lib/postgresql/*/bin, else the one on $PATH.
func PostgresBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Newest major version first: 16 before 15 before 9.6.
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		d := filepath.Dir(p)
		if isExec(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	return "", errors.New("testenv: the PostgreSQL server binaries (initdb, pg_ctl) are not installed: " +
		"looked in /usr/lib/postgresql/*/bin and $PATH. Run `make test`, which installs postgresql " +
		"(or: apt-get install -y postgresql). The Postgres tests do not skip without it")
}

func pgMajor(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

func startPostgres() (*pgServer, error) {
	bin, err := PostgresBinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "rhizome-pg-")
	if err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	s := &pgServer{dir: dir, bin: bin}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()
	if os.Geteuid() == 0 {
		// initdb refuses to run as root; the server runs as postgres.
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("testenv: running as root needs the postgres OS user (the postgresql package creates it): %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, fmt.Errorf("testenv: %w", err)
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := s.run("initdb", "-D", data, "-U", "postgres", "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync"); err != nil {
		return nil, fmt.Errorf("testenv: initdb: %w\n%s", err, out)
	}
	// A free port can be taken between choosing and binding: try a few.
	var lastErr error
	for range 3 {
		if s.port, err = freePort(); err != nil {
			return nil, fmt.Errorf("testenv: %w", err)
		}
		opts := fmt.Sprintf("-p %d -k '%s' -c listen_addresses=127.0.0.1 -c fsync=off "+
			"-c synchronous_commit=off -c full_page_writes=off -c max_connections=200", s.port, dir)
		out, err := s.run("pg_ctl", "start", "-w", "-t", "60", "-D", data, "-l", filepath.Join(dir, "postgres.log"), "-o", opts)
		if err == nil {
			lastErr = nil
			break
		}
		log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
		lastErr = fmt.Errorf("testenv: pg_ctl start on port %d: %w\n%s\n%s", s.port, err, out, tail(string(log), 2000))
	}
	if lastErr != nil {
		return nil, lastErr
	}
	s.admin = s.dsn("postgres")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.exec(ctx, "SELECT 1"); err != nil {
		s.stop()
		return nil, fmt.Errorf("testenv: the test server started but does not answer: %w", err)
	}
	ok = true
	return s, nil
}

func (s *pgServer) stop() {
	_, _ = s.run("pg_ctl", "stop", "-D", filepath.Join(s.dir, "data"), "-m", "immediate", "-w", "-t", "30")
	_ = os.RemoveAll(s.dir)
}

// run runs a Postgres program (as postgres when we are root) and returns
// its output. The output goes through a file, not a pipe: pg_ctl start
// leaves a server running, and a pipe it inherited would keep Wait
// waiting.
func (s *pgServer) run(name string, args ...string) (string, error) {
	out, err := os.CreateTemp("", "rhizome-pg-out-")
	if err != nil {
		return "", err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = pgEnv()
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	err = cmd.Run()
	b, _ := os.ReadFile(out.Name())
	return string(b), err
}

// pgEnv is the environment without PG* variables, which would point the
// programs at another cluster.
func pgEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return append(env, "LC_ALL=C")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// Main is a TestMain for packages whose tests need Postgres: it starts the
// server, runs the tests, stops it, and (with leaks) fails the run when a
// goroutine outlives the tests. Use: func TestMain(m *testing.M) {
// os.Exit(testenv.Main(m, true)) }.
func Main(m *testing.M, leaks bool) int {
	_, stop, err := Postgres()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	stop()
	if leaks && code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	return code
}
