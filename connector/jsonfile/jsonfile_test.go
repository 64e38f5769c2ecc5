package jsonfile_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/connector"
	_ "github.com/rhizome-mesh/rhizome/connector/jsonfile"
)

func stage(t *testing.T, cfg map[string]any) (*connector.Staged, string, error) {
	t.Helper()
	c, err := connector.Open("json", cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st, err := c.Stage(context.Background(), connector.Env{StageDir: dir, BaseDir: "testdata"})
	return st, dir, err
}

func TestArrayBecomesNDJSON(t *testing.T) {
	for _, format := range []string{"array", "auto"} {
		st, dir, err := stage(t, map[string]any{"path": "array.json", "format": format})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(filepath.Join(dir, st.Files[0]))
		want := `{"id":1,"name":"Ada","amount":10.50}` + "\n" +
			`{"id":2,"name":"Bob","tags":["a","b"],"big":12345678901234567890}` + "\n"
		if string(b) != want || st.Format != "ndjson" || st.Rows != 2 || st.Bytes != int64(len(want)) ||
			st.Files[0] != "0000-array.ndjson" {
			t.Errorf("%s: staged %+v:\n%s", format, st, b)
		}
	}
}

func TestByteOrderMark(t *testing.T) {
	st, dir, err := stage(t, map[string]any{"path": "bom.json"})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, st.Files[0])); string(b) != `{"id":1}`+"\n" {
		t.Errorf("staged %q", b)
	}
}

func TestNDJSONIsLinked(t *testing.T) {
	st, dir, err := stage(t, map[string]any{"path": "*.ndjson"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, st.Files[0]))
	src, _ := os.ReadFile("testdata/lines.ndjson")
	if string(b) != string(src) || st.Rows != -1 {
		t.Errorf("staged %+v: %q", st, b)
	}
}

func TestErrors(t *testing.T) {
	_, _, err := stage(t, map[string]any{"path": "broken-array.json"})
	if rhizome.Code(err) != rhizome.EInvalid || !strings.Contains(err.Error(), "broken-array.json: byte") {
		t.Errorf("broken array: %v", err)
	}
	_, _, err = stage(t, map[string]any{"path": "lines.ndjson", "format": "array"})
	if rhizome.Code(err) != rhizome.EInvalid || !strings.Contains(err.Error(), "format: ndjson") {
		t.Errorf("ndjson read as array: %v", err)
	}
	if _, err := connector.Open("json", map[string]any{"path": "x", "format": "jsonl"}); rhizome.Code(err) != rhizome.EInvalid {
		t.Errorf("bad format: %v", err)
	}
}
