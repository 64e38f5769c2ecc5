package pipeline_test

import (
	"os"
	"testing"

	"github.com/rhizome-mesh/rhizome/internal/testenv"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/metastore/postgres"
	"github.com/rhizome-mesh/rhizome/table"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, false)) }

// postgresS3 is the scale-out deployment: the Postgres metastore (which
// also holds the Iceberg catalog) and tables on S3-compatible storage.
var postgresS3 = backend{"postgres+s3", func(t *testing.T, dir string) (metastore.Store, *table.Catalog, string) {
	store, err := postgres.Open(ctx, testenv.NewDatabase(t), metastore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	_, bucket, props := testenv.S3(t)
	wh := "s3://" + bucket + "/lake"
	tables, err := table.Open(ctx, table.Options{DB: store.DB(), Dialect: "postgres", Warehouse: wh, Props: props, Keys: keyring(t, dir)})
	if err != nil {
		t.Fatal(err)
	}
	return store, tables, wh
}}
