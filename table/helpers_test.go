package table

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	iceio "github.com/apache/iceberg-go/io"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/internal/testenv"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/metastore/postgres"
	"github.com/rhizome-mesh/rhizome/metastore/sqlite"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, false)) }

// env is one Catalog under test with where its data goes.
type env struct {
	cat       *Catalog
	opt       Options
	warehouse string
	storage   string // "file" or "s3"
	dir       string // scratch directory for fixtures
}

type backend struct{ db, storage string }

var backends = []backend{{"sqlite", "file"}, {"postgres", "file"}, {"sqlite", "s3"}, {"postgres", "s3"}}

func (b backend) String() string { return b.db + "_" + b.storage }

// newEnv opens a metastore of the kind b.db (real SQLite file or a fresh
// Postgres database), and a Catalog on its DB writing to b.storage.
func newEnv(t *testing.T, b backend) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{storage: b.storage, dir: t.TempDir()}
	switch b.db {
	case "sqlite":
		st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "metastore.db"), metastore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		e.opt = Options{DB: st.DB(), Dialect: "sqlite"}
	case "postgres":
		st, err := postgres.Open(ctx, testenv.NewDatabase(t), metastore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		e.opt = Options{DB: st.DB(), Dialect: "postgres"}
	}
	switch b.storage {
	case "file":
		e.warehouse = "file://" + filepath.ToSlash(t.TempDir())
	case "s3":
		_, bucket, props := testenv.S3(t)
		e.warehouse = "s3://" + bucket + "/lake"
		e.opt.Props = props
	}
	e.opt.Warehouse = e.warehouse
	e.cat = e.open(t)
	return e
}

func (e *env) open(t *testing.T) *Catalog {
	t.Helper()
	c, err := Open(context.Background(), e.opt)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var fixtureSeq atomic.Int64

// rows is a Parquet fixture: an Arrow schema and rows as JSON objects.
type rows struct {
	schema *arrow.Schema
	json   []string
}

var (
	idName      = arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true}, {Name: "name", Type: arrow.BinaryTypes.String, Nullable: true}}, nil)
	idNameScore = arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true}, {Name: "name", Type: arrow.BinaryTypes.String, Nullable: true}, {Name: "score", Type: arrow.PrimitiveTypes.Float64, Nullable: true}}, nil)
	idOnly      = arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil)
	idAsString  = arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.BinaryTypes.String, Nullable: true}, {Name: "name", Type: arrow.BinaryTypes.String, Nullable: true}}, nil)
)

// people returns n rows of (id, name) starting at id from.
func people(from, n int) rows {
	r := rows{schema: idName}
	for i := from; i < from+n; i++ {
		r.json = append(r.json, fmt.Sprintf(`{"id": %d, "name": "p%d"}`, i, i))
	}
	return r
}

// parquetFile writes r as a Parquet file the way DuckDB does: no field
// ids, no stored Arrow schema.
func (e *env) parquetFile(t *testing.T, r rows) string {
	t.Helper()
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, r.schema, strings.NewReader("["+strings.Join(r.json, ",")+"]"))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	p := filepath.Join(e.dir, fmt.Sprintf("part-%d.parquet", fixtureSeq.Add(1)))
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := pqarrow.NewFileWriter(r.schema, f, parquet.NewWriterProperties(), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// Like DuckDB's files, the fixtures carry no Parquet field ids: the
	// table finds their columns by name (Iceberg's name mapping).
	pf, err := file.OpenParquetFile(p, false)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	root := pf.MetaData().Schema.Root()
	for i := range root.NumFields() {
		if id := root.Field(i).FieldID(); id != -1 {
			t.Fatalf("fixture %s: column %s has field id %d", p, root.Field(i).Name(), id)
		}
	}
	return p
}

func (e *env) publish(t *testing.T, ref Ref, mode Mode, props map[string]string, files ...rows) *Snapshot {
	t.Helper()
	var paths []string
	for _, r := range files {
		paths = append(paths, e.parquetFile(t, r))
	}
	// Snapshot times have millisecond precision: keep them apart so time
	// travel by time is unambiguous.
	time.Sleep(3 * time.Millisecond)
	s, err := e.cat.Publish(context.Background(), PublishRequest{Ref: ref, Files: paths, Mode: mode, Properties: props})
	if err != nil {
		t.Fatalf("publish %s %s: %v", ref, mode, err)
	}
	time.Sleep(3 * time.Millisecond)
	return s
}

// icebergRows reads the table through a separate iceberg-go SQL catalog
// on the same database, as any Iceberg engine would, and counts rows.
func (e *env) icebergRows(t *testing.T, ref Ref, opts ...icetable.ScanOption) (int64, *arrow.Schema) {
	t.Helper()
	ctx := context.Background()
	props := iceberg.Properties{"warehouse": e.warehouse}
	for k, v := range e.opt.Props {
		props[k] = v
	}
	cat, err := sqlcat.NewCatalog(CatalogName, e.opt.DB, sqlcat.SupportedDialect(e.opt.Dialect), props)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := cat.LoadTable(ctx, icetable.Identifier{ref.Namespace, ref.Name})
	if err != nil {
		t.Fatal(err)
	}
	at, err := tbl.Scan(opts...).ToArrowTable(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer at.Release()
	return at.NumRows(), at.Schema()
}

// files lists every file under the warehouse, sorted.
func (e *env) files(t *testing.T) []string {
	t.Helper()
	fsys, err := iceio.LoadFS(context.Background(), e.cat.props, e.warehouse)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	err = fsys.(iceio.ListableIO).WalkDir(e.warehouse, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// parquetRows counts the rows of a local Parquet file.
func parquetRows(t *testing.T, p string) int64 {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tbl, err := pqarrow.ReadTable(context.Background(), f, nil, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	return tbl.NumRows()
}

func wantCode(t *testing.T, err error, code rhizome.ErrorCode) {
	t.Helper()
	if rhizome.Code(err) != code {
		t.Fatalf("got error %v (code %q), want code %q", err, rhizome.Code(err), code)
	}
}
