package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/metastore/metastoretest"
	"github.com/rhizome-mesh/rhizome/metastore/sqlite"
	"github.com/rhizome-mesh/rhizome/metastore/sqlstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func open(t testing.TB, path string, opt metastore.Options) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path, opt)
	if err != nil {
		t.Fatalf("Open %s: %v", path, err)
	}
	return s
}

func TestConformance(t *testing.T) {
	metastoretest.Run(t, func(t *testing.T, opt metastore.Options) metastore.Store {
		return open(t, filepath.Join(t.TempDir(), "metastore.db"), opt)
	})
}

func TestMigrations(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub", "dir", "metastore.db")
	s := open(t, path, metastore.Options{})
	want, err := sqlstore.Migrations("sqlite")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.SchemaVersion(ctx); err != nil || v != len(want) {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, len(want))
	}
	if err := s.Update(ctx, func(tx metastore.Tx) error {
		_, err := tx.Put(ctx, &rhizome.Object{Kind: rhizome.KindTeam, ID: "t", Body: []byte(`{}`)}, 0, "a", "")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Re-open: nothing to apply, data kept, no duplicate migration rows.
	s = open(t, path, metastore.Options{})
	if _, err := s.Get(ctx, rhizome.KindTeam, "t"); err != nil {
		t.Errorf("after re-open: %v", err)
	}
	var rows int
	if err := s.DB().QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&rows); err != nil || rows != len(want) {
		t.Errorf("schema_migrations has %d rows (%v), want %d", rows, err, len(want))
	}

	// A database from a newer binary is refused, not downgraded.
	if _, err := s.DB().Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, '0999_future.sql', '2030-01-01T00:00:00.000000Z')`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := sqlite.Open(ctx, path, metastore.Options{}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open of a newer schema: %v, want an error saying it is newer", err)
	}
}

func TestFileMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "metastore.db")
	s := open(t, path, metastore.Options{})
	defer s.Close()
	ctx := context.Background()
	if err := s.Update(ctx, func(tx metastore.Tx) error {
		return tx.PutPrincipal(ctx, &rhizome.Principal{ID: "a", Kind: rhizome.PrincipalUser})
	}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s has mode %o, want 600", filepath.Base(p), m)
		}
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode: %v, %v; want 700", fi.Mode().Perm(), err)
	}
	var mode string
	if err := s.DB().QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v", mode, err)
	}
	var fk int
	if err := s.DB().QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
		t.Errorf("foreign_keys = %d, %v", fk, err)
	}
}

// TestWritersFromTwoStores opens the same file twice (as two processes
// would) and writes from both at once: busy_timeout and BEGIN IMMEDIATE
// must keep SQLITE_BUSY from surfacing.
func TestWritersFromTwoStores(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "metastore.db")
	stores := []*sqlite.Store{open(t, path, metastore.Options{}), open(t, path, metastore.Options{})}
	defer stores[0].Close()
	defer stores[1].Close()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[g%2]
			for i := range 20 {
				err := s.Update(ctx, func(tx metastore.Tx) error {
					// Read first, then write: the pattern that deadlocks
					// with deferred transactions.
					id := fmt.Sprintf("dp.%d.%d", g, i)
					if _, err := tx.Get(ctx, rhizome.KindDataProduct, id); rhizome.Code(err) != rhizome.ENotFound {
						return fmt.Errorf("get before create: %v", err)
					}
					_, err := tx.Put(ctx, &rhizome.Object{Kind: rhizome.KindDataProduct, ID: id, Body: []byte(`{}`)}, 0, "w", "")
					return err
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent writer: %v", err)
	}
	p, err := stores[0].List(ctx, metastore.ListOptions{Kind: rhizome.KindDataProduct, Limit: 1000})
	if err != nil || len(p.Items) != 160 {
		t.Errorf("List after concurrent writes: %d items, %v; want 160", len(p.Items), err)
	}
}

// TestListPlans checks that a List with one filter and a cursor is an
// index range scan in id order: no table scan, no sort.
func TestListPlans(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "metastore.db"), metastore.Options{})
	defer s.Close()
	for _, tc := range []struct {
		opt   metastore.ListOptions
		index string
	}{
		{metastore.ListOptions{Domain: "d", After: "x"}, "objects_by_domain"},
		{metastore.ListOptions{OwnerTeam: "t", After: "x"}, "objects_by_owner_team"},
		{metastore.ListOptions{Sensitivity: "s", After: "x"}, "objects_by_sensitivity"},
		{metastore.ListOptions{Tag: "t", After: "x"}, "PRIMARY KEY"},
		{metastore.ListOptions{Member: "m", After: "x"}, "PRIMARY KEY"},
		{metastore.ListOptions{After: "x"}, "sqlite_autoindex_objects_1"},
	} {
		tc.opt.Kind = rhizome.KindDataProduct
		q, args := sqlstore.ListQuery(tc.opt, 101)
		rows, err := s.DB().Query("EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		text := strings.Join(plan, "; ")
		if !strings.Contains(text, tc.index) || strings.Contains(text, "TEMP B-TREE") || strings.HasPrefix(text, "SCAN") {
			t.Errorf("List(%+v) plan: %s\nwant a range scan of %s without a sort", tc.opt, text, tc.index)
		}
		t.Logf("%+v: %s", tc.opt, text)
	}
}
