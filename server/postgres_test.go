package server_test

import (
	"context"
	"os"
	"testing"

	"github.com/rhizome-mesh/rhizome/internal/testenv"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/metastore/postgres"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, false)) }

// TestAPIPostgres runs the API suite on the Postgres metastore.
func TestAPIPostgres(t *testing.T) {
	runAPI(t, func(t *testing.T) *env {
		store, err := postgres.Open(context.Background(), testenv.NewDatabase(t), metastore.Options{Clock: testClock})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		return newEnv(t, store)
	})
}
