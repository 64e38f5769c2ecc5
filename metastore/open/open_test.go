package open_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/internal/testenv"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/metastore/open"
	"github.com/rhizome-mesh/rhizome/metastore/postgres"
	"github.com/rhizome-mesh/rhizome/metastore/sqlite"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, true)) }

func TestSQLiteForms(t *testing.T) {
	ctx := context.Background()
	dataDir := t.TempDir()
	abs := filepath.Join(t.TempDir(), "abs.db")
	work := t.TempDir()
	t.Chdir(work)
	for _, tc := range []struct{ url, file string }{
		{"", filepath.Join(dataDir, "metastore.db")},
		{"  ", filepath.Join(dataDir, "metastore.db")},
		{"sqlite://" + abs, abs},
		{"sqlite:rel/x.db", filepath.Join(work, "rel", "x.db")},
		{"sqlite:./y.db", filepath.Join(work, "y.db")},
	} {
		s, err := open.Open(ctx, tc.url, dataDir, metastore.Options{})
		if err != nil {
			t.Errorf("Open(%q): %v", tc.url, err)
			continue
		}
		st, ok := s.(*sqlite.Store)
		if !ok {
			t.Errorf("Open(%q) = %T, want *sqlite.Store", tc.url, s)
		}
		if err := s.Ping(ctx); err != nil {
			t.Errorf("Open(%q): Ping: %v", tc.url, err)
		}
		s.Close()
		if _, err := os.Stat(tc.file); err != nil {
			t.Errorf("Open(%q) made no %s (store at %s): %v", tc.url, tc.file, st.Path(), err)
		}
	}
}

func TestPostgresForms(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.NewDatabase(t)
	for _, url := range []string{dsn, "postgresql://" + strings.TrimPrefix(dsn, "postgres://")} {
		s, err := open.Open(ctx, url, t.TempDir(), metastore.Options{})
		if err != nil {
			t.Fatalf("Open(%q): %v", url, err)
		}
		if _, ok := s.(*postgres.Store); !ok {
			t.Errorf("Open(%q) = %T, want *postgres.Store", url, s)
		}
		if err := s.Ping(ctx); err != nil {
			t.Errorf("Ping: %v", err)
		}
		s.Close()
	}
}

func TestInvalid(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ url, dataDir, want string }{
		{"mysql://root:hunter2@db/x", "d", "postgres://"},
		{"/var/lib/rhizome.db", "d", "sqlite:///abs/path.db"},
		{"sqlite://host/x.db", "d", "three slashes"},
		{"sqlite:", "d", "no usable file path"},
		{"sqlite:x.db?mode=ro", "d", "without query parameters"},
		{"", "", "data directory"},
	} {
		_, err := open.Open(ctx, tc.url, tc.dataDir, metastore.Options{})
		if rhizome.Code(err) != rhizome.EInvalid {
			t.Errorf("Open(%q): %v, want invalid", tc.url, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q): %q does not mention %q", tc.url, err, tc.want)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%q): the error shows the password: %v", tc.url, err)
		}
	}
}
