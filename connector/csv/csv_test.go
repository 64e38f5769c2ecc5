package csv_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/connector"
	_ "github.com/rhizome-mesh/rhizome/connector/csv"
)

func stage(t *testing.T, cfg map[string]any) (*connector.Staged, string, error) {
	t.Helper()
	c, err := connector.Open("csv", cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st, err := c.Stage(context.Background(), connector.Env{StageDir: dir, BaseDir: "testdata"})
	return st, dir, err
}

func read(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestGlobLinksFiles(t *testing.T) {
	st, dir, err := stage(t, map[string]any{"path": "*/orders.csv",
		"columns": []any{map[string]any{"name": "id", "type": "bigint", "required": true}}})
	if err != nil {
		t.Fatal(err)
	}
	if st.Format != "csv" || !slices.Equal(st.Files, []string{"0000-orders.csv", "0001-orders.csv"}) || st.Rows != -1 {
		t.Fatalf("Staged = %+v", st)
	}
	a, b := read(t, dir, st.Files[0]), read(t, dir, st.Files[1])
	want, _ := os.ReadFile("testdata/a/orders.csv")
	if a != string(want) || !strings.HasPrefix(b, "id,name,amount\n4,Bob") {
		t.Errorf("staged files differ from the sources: %q %q", a, b)
	}
	if st.Bytes != int64(len(a)+len(b)) {
		t.Errorf("Bytes = %d, want %d", st.Bytes, len(a)+len(b))
	}
	if !slices.Equal(st.Columns, []connector.Column{{Name: "id", Type: "BIGINT", Required: true}}) {
		t.Errorf("Columns = %v", st.Columns)
	}
}

func TestRewritesOtherDialects(t *testing.T) {
	st, dir, err := stage(t, map[string]any{"path": "semicolon.csv", "delimiter": ";", "header": false,
		"columns": []any{map[string]any{"name": "id", "type": "int"}, map[string]any{"name": "name", "type": "varchar"}}})
	if err != nil {
		t.Fatal(err)
	}
	got := read(t, dir, st.Files[0])
	want := "id,name,column2\n1,Ada,\"10,5\"\n2,Semi;colon,3\n"
	if got != want || st.Rows != 2 || st.Bytes != int64(len(want)) {
		t.Errorf("staged %q (rows %d, bytes %d), want %q", got, st.Rows, st.Bytes, want)
	}
}

func TestErrors(t *testing.T) {
	_, _, err := stage(t, map[string]any{"path": "nothing/*.csv"})
	if rhizome.Code(err) != rhizome.ENotFound || !strings.Contains(err.Error(), "nothing/*.csv") ||
		!strings.Contains(err.Error(), filepath.Join("testdata", "nothing")) {
		t.Errorf("no match: %v", err)
	}
	_, _, err = stage(t, map[string]any{"path": "semicolon.csv", "delimiter": ",", "header": false})
	if rhizome.Code(err) != rhizome.EInvalid || !strings.Contains(err.Error(), "semicolon.csv") {
		t.Errorf("ragged file: %v", err)
	}
	for _, cfg := range []map[string]any{
		{"path": "x.csv", "quote": "'"},
		{"path": "x.csv", "delimiter": ";;"},
		{"path": "x.csv", "delimter": ";"},
	} {
		if _, err := connector.Open("csv", cfg); rhizome.Code(err) != rhizome.EInvalid {
			t.Errorf("Open(%v) = %v, want invalid", cfg, err)
		}
	}
}
