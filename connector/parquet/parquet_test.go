package parquet_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/connector"
	_ "github.com/rhizome-mesh/rhizome/connector/parquet"
)

// testdata/v0.7.1.parquet is a small file from the Apache Arrow Go
// repository (Apache License 2.0).

func stage(t *testing.T, path string) (*connector.Staged, string, error) {
	t.Helper()
	c, err := connector.Open("parquet", map[string]any{"path": path})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st, err := c.Stage(context.Background(), connector.Env{StageDir: dir, BaseDir: "testdata"})
	return st, dir, err
}

func TestStage(t *testing.T) {
	st, dir, err := stage(t, "v0.7.1.parquet")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, st.Files[0]))
	want, _ := os.ReadFile("testdata/v0.7.1.parquet")
	if !bytes.Equal(got, want) || st.Format != "parquet" || st.Bytes != int64(len(want)) || st.Rows != -1 {
		t.Errorf("staged %+v", st)
	}
}

func TestNotParquet(t *testing.T) {
	_, _, err := stage(t, "not-parquet.parquet")
	if rhizome.Code(err) != rhizome.EInvalid || !strings.Contains(err.Error(), "not-parquet.parquet: not a Parquet file") {
		t.Errorf("err = %v", err)
	}
	_, _, err = stage(t, "*.pq")
	if rhizome.Code(err) != rhizome.ENotFound {
		t.Errorf("no match: %v", err)
	}
}
