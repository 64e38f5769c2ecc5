package server_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/rhizome-mesh/rhizome/internal/testenv"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/metastore/postgres"
)

func TestMain(m *testing.M) {
	_, stop, err := testenv.Postgres()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	stop()
	os.Exit(code)
}

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
