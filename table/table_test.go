package table

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	icetable "github.com/apache/iceberg-go/table"

	"github.com/rhizome-mesh/rhizome"
)

func TestRefFor(t *testing.T) {
	for _, tc := range []struct {
		id, version string
		want        Ref
	}{
		{"dp.customer.360", "2.1.0", Ref{"customer", "c360_v2"}},
		{"dp.sales.orders", "1.0.0", Ref{"sales", "orders_v1"}},
		{"dp.marketing.campaign-performance", "v3.0.1", Ref{"marketing", "campaign_performance_v3"}},
		{"dp.Sales.Order.Items", "10.2", Ref{"sales", "order_items_v10"}},
	} {
		if got := RefFor(tc.id, tc.version); got != tc.want {
			t.Errorf("RefFor(%q, %q) = %v, want %v", tc.id, tc.version, got, tc.want)
		}
	}
}

func TestOpenInvalid(t *testing.T) {
	e := newEnv(t, backend{"sqlite", "file"})
	for name, opt := range map[string]Options{
		"no db":        {Dialect: "sqlite", Warehouse: e.warehouse},
		"dialect":      {DB: e.opt.DB, Dialect: "mysql", Warehouse: e.warehouse},
		"no warehouse": {DB: e.opt.DB, Dialect: "sqlite"},
		"relative":     {DB: e.opt.DB, Dialect: "sqlite", Warehouse: "file://./lake"},
		"scheme":       {DB: e.opt.DB, Dialect: "sqlite", Warehouse: "gs://bucket/lake"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Open(context.Background(), opt)
			wantCode(t, err, rhizome.EInvalid)
		})
	}
}

// TestPublish publishes replace, append, replace on every metastore and
// storage, and reads each version back through iceberg-go and as files.
func TestPublish(t *testing.T) {
	for _, b := range backends {
		t.Run(b.String(), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e := newEnv(t, b)
			ref := RefFor("dp.customer.360", "2.0.0")

			_, err := e.cat.Current(ctx, ref)
			wantCode(t, err, rhizome.ENotFound)

			s1 := e.publish(t, ref, Replace, map[string]string{"run_id": "r1", "product_version": "2.0.0"}, people(0, 3))
			s2 := e.publish(t, ref, Append, map[string]string{"run_id": "r2"}, people(3, 1), people(4, 1))
			s3 := e.publish(t, ref, Replace, map[string]string{"run_id": "r3"}, people(10, 4))

			for _, c := range []struct {
				s           *Snapshot
				rows, files int64
				op, run     string
				parent      int64
			}{
				{s1, 3, 1, "append", "r1", 0},
				{s2, 5, 3, "append", "r2", s1.ID},
				{s3, 4, 1, "overwrite", "r3", s2.ID},
			} {
				if c.s.Rows != c.rows || c.s.Files != c.files || c.s.Operation != c.op || c.s.Properties["run_id"] != c.run || c.s.ParentID != c.parent {
					t.Errorf("snapshot %+v: want rows %d files %d op %s run %s parent %d", *c.s, c.rows, c.files, c.op, c.run, c.parent)
				}
				if c.s.Bytes <= 0 {
					t.Errorf("snapshot %d: bytes %d", c.s.ID, c.s.Bytes)
				}
			}
			if got := s1.Properties; !maps.Equal(got, map[string]string{"run_id": "r1", "product_version": "2.0.0"}) {
				t.Errorf("properties %v", got)
			}
			if cols := s3.Schema; len(cols) != 2 || cols[0].Name != "id" || cols[0].Type != "long" || cols[1].Name != "name" || cols[1].Type != "string" {
				t.Errorf("schema %+v", cols)
			}

			cur, err := e.cat.Current(ctx, ref)
			if err != nil || cur.ID != s3.ID {
				t.Fatalf("current = %+v, %v; want %d", cur, err, s3.ID)
			}
			all, err := e.cat.Snapshots(ctx, ref)
			if err != nil {
				t.Fatal(err)
			}
			if ids := []int64{all[0].ID, all[1].ID, all[2].ID}; len(all) != 3 || !slices.Equal(ids, []int64{s1.ID, s2.ID, s3.ID}) {
				t.Fatalf("snapshots %+v", all)
			}

			// Any Iceberg engine: iceberg-go reads the current table and
			// every snapshot.
			for _, c := range []struct {
				opt  icetable.ScanOption
				want int64
			}{
				{icetable.WithSnapshotID(s3.ID), 4},
				{icetable.WithSnapshotID(s1.ID), 3},
				{icetable.WithSnapshotID(s2.ID), 5},
				{icetable.WithSnapshotAsOf(s2.Time.UnixMilli()), 5},
			} {
				if n, _ := e.icebergRows(t, ref, c.opt); n != c.want {
					t.Errorf("iceberg-go scan: %d rows, want %d", n, c.want)
				}
			}
			if n, _ := e.icebergRows(t, ref); n != 4 {
				t.Errorf("iceberg-go scan of the current snapshot: %d rows, want 4", n)
			}

			// Time travel through DataFiles, by id and by time; the files
			// are readable locally (after Fetch for s3).
			for _, c := range []struct {
				at    AsOf
				files int
				rows  int64
			}{
				{AsOf{}, 1, 4},
				{AsOf{SnapshotID: s2.ID}, 3, 5},
				{AsOf{Time: s1.Time}, 1, 3},
				{AsOf{Time: s2.Time.Add(time.Millisecond)}, 3, 5},
				{AsOf{Time: time.Now()}, 1, 4},
			} {
				files, cols, err := e.cat.DataFiles(ctx, ref, c.at)
				if err != nil {
					t.Fatal(err)
				}
				if len(files) != c.files || len(cols) != 2 {
					t.Fatalf("DataFiles(%+v) = %v, %v", c.at, files, cols)
				}
				var rows int64
				for _, f := range files {
					if b.storage == "file" && !filepath.IsAbs(f) {
						t.Errorf("DataFiles returned %q, want a local path", f)
					}
					if b.storage == "s3" && !strings.HasPrefix(f, "s3://") {
						t.Errorf("DataFiles returned %q, want an s3:// URI", f)
					}
					local, err := e.cat.Fetch(ctx, f, t.TempDir())
					if err != nil {
						t.Fatal(err)
					}
					rows += parquetRows(t, local)
				}
				if rows != c.rows {
					t.Errorf("DataFiles(%+v): %d rows, want %d", c.at, rows, c.rows)
				}
			}
			_, _, err = e.cat.DataFiles(ctx, ref, AsOf{Time: s1.Time.Add(-time.Hour)})
			wantCode(t, err, rhizome.ENotFound)
			_, _, err = e.cat.DataFiles(ctx, ref, AsOf{SnapshotID: 42})
			wantCode(t, err, rhizome.ENotFound)
		})
	}
}

func TestPublishInvalid(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, backend{"sqlite", "file"})
	good := e.parquetFile(t, people(0, 1))
	other := e.parquetFile(t, rows{schema: idOnly, json: []string{`{"id": 1}`}})
	ref := Ref{"customer", "c360_v1"}
	for name, c := range map[string]struct {
		req  PublishRequest
		code rhizome.ErrorCode
	}{
		"no files":      {PublishRequest{Ref: ref, Mode: Replace}, rhizome.EInvalid},
		"mode":          {PublishRequest{Ref: ref, Mode: "upsert", Files: []string{good}}, rhizome.EInvalid},
		"ref":           {PublishRequest{Ref: Ref{"a.b", "c"}, Mode: Replace, Files: []string{good}}, rhizome.EInvalid},
		"missing file":  {PublishRequest{Ref: ref, Mode: Replace, Files: []string{filepath.Join(e.dir, "nope.parquet")}}, rhizome.ENotFound},
		"mixed columns": {PublishRequest{Ref: ref, Mode: Replace, Files: []string{good, other}}, rhizome.EInvalid},
		"bad location":  {PublishRequest{Ref: ref, Mode: Replace, Files: []string{good}, Location: "ftp://x/y"}, rhizome.EInvalid},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := e.cat.Publish(ctx, c.req)
			wantCode(t, err, c.code)
		})
	}
	if got := e.files(t); len(got) != 0 {
		t.Errorf("invalid publishes left files: %v", got)
	}
}

// TestPublishLocation puts a table where the request says, not in the
// warehouse.
func TestPublishLocation(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, backend{"sqlite", "file"})
	dir := t.TempDir()
	ref := Ref{"marketing", "touches_v1"}
	s, err := e.cat.Publish(ctx, PublishRequest{Ref: ref, Mode: Replace, Location: dir + "/touches", Files: []string{e.parquetFile(t, people(0, 2))}})
	if err != nil {
		t.Fatal(err)
	}
	files, _, err := e.cat.DataFiles(ctx, ref, AsOf{SnapshotID: s.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || !strings.HasPrefix(files[0], filepath.Join(dir, "touches", "data")+string(os.PathSeparator)) {
		t.Errorf("files %v, want them under %s", files, dir)
	}
}
