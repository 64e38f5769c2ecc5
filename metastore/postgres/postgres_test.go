package postgres_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/internal/testenv"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/metastore/metastoretest"
	"github.com/rhizome-mesh/rhizome/metastore/postgres"
	"github.com/rhizome-mesh/rhizome/metastore/sqlstore"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, true)) }

func open(t testing.TB, dsn string, opt metastore.Options) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn, opt)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	metastoretest.Run(t, func(t *testing.T, opt metastore.Options) metastore.Store {
		return open(t, testenv.NewDatabase(t), opt)
	})
}

func TestMigrations(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.NewDatabase(t)
	want, err := sqlstore.Migrations("postgres")
	if err != nil {
		t.Fatal(err)
	}
	// Two processes opening an empty database at once: the advisory lock
	// makes one migrate and the other find the work done.
	var wg sync.WaitGroup
	stores := make([]*postgres.Store, 2)
	errs := make([]error, 2)
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = postgres.Open(ctx, dsn, metastore.Options{})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Open %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	s := stores[0]
	if v, err := s.SchemaVersion(ctx); err != nil || v != len(want) {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, len(want))
	}
	if err := s.Update(ctx, func(tx metastore.Tx) error {
		_, err := tx.Put(ctx, &rhizome.Object{Kind: rhizome.KindTeam, ID: "t", Body: []byte(`{}`)}, 0, "a", "")
		return err
	}); err != nil {
		t.Fatal(err)
	}

	// Re-open: nothing applied again, data kept.
	s2 := open(t, dsn, metastore.Options{})
	if _, err := s2.Get(ctx, rhizome.KindTeam, "t"); err != nil {
		t.Errorf("after re-open: %v", err)
	}
	var rows int
	if err := s2.DB().QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&rows); err != nil || rows != len(want) {
		t.Errorf("schema_migrations has %d rows (%v), want %d", rows, err, len(want))
	}
	if _, err := s2.DB().Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, '0999_future.sql', now())`); err != nil {
		t.Fatal(err)
	}
	s2.Close()
	if _, err := postgres.Open(ctx, dsn, metastore.Options{}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open of a newer schema: %v, want an error saying it is newer", err)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	_, err := postgres.Open(ctx, "postgres://u:secret@127.0.0.1:bad/db", metastore.Options{})
	if rhizome.Code(err) != rhizome.EInvalid || strings.Contains(err.Error(), "secret") {
		t.Errorf("bad URL: %v; want invalid, without the password", err)
	}
	// A closed port on loopback: unavailable, quickly.
	_, err = postgres.Open(ctx, "postgres://u:secret@127.0.0.1:1/db?connect_timeout=2", metastore.Options{})
	if rhizome.Code(err) != rhizome.EUnavailable || strings.Contains(err.Error(), "secret") {
		t.Errorf("unreachable server: %v; want unavailable, without the password", err)
	}
}

// TestConcurrentRelabel has writers update different objects that share
// index pages, which Postgres's serializable checks may report as
// conflicts: the retries must absorb them, so every writer succeeds.
func TestConcurrentRelabel(t *testing.T) {
	ctx := context.Background()
	s := open(t, testenv.NewDatabase(t), metastore.Options{})
	defer s.Close()
	const writers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := fmt.Sprintf("dp.%d", w)
				err := s.Update(ctx, func(tx metastore.Tx) error {
					_, err := tx.Put(ctx, &rhizome.Object{Kind: rhizome.KindDataProduct, ID: id, Body: []byte(`{}`),
						Labels: rhizome.Labels{Domain: "d", Tags: []string{fmt.Sprint("t", i)}}}, metastore.AnyRevision, "w", "")
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
		t.Errorf("writer: %v", err)
	}
	p, err := s.List(ctx, metastore.ListOptions{Kind: rhizome.KindDataProduct, Tag: fmt.Sprint("t", each-1)})
	if err != nil || len(p.Items) != writers {
		t.Errorf("List by the last tag: %v, %v; want %d items", p, err, writers)
	}
}
