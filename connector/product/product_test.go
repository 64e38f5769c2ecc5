package product_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/connector"
	_ "github.com/rhizome-mesh/rhizome/connector/product"
)

// published is a ProductReader over real files in a directory per version.
type published struct{ dir string }

func (p published) Files(_ context.Context, id, version string) ([]string, string, error) {
	if version == "" {
		version = "current"
	}
	files, _ := filepath.Glob(filepath.Join(p.dir, id, version, "*.parquet"))
	if files == nil {
		return nil, "", rhizome.Errorf(rhizome.ENotFound, "no version %s", version)
	}
	return files, "parquet", nil
}

func TestStage(t *testing.T) {
	root := t.TempDir()
	v := filepath.Join(root, "dp.sales.product-catalog", "1.0.0")
	if err := os.MkdirAll(v, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"part-0.parquet", "part-1.parquet"} {
		if err := os.WriteFile(filepath.Join(v, f), []byte("PAR1...PAR1"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, err := connector.Open("product", map[string]any{"product": "dp.sales.product-catalog", "version": "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	env := connector.Env{StageDir: t.TempDir(), Products: published{root}}
	st, err := c.Stage(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	if st.Format != "parquet" || !slices.Equal(st.Files, []string{"0000-part-0.parquet", "0001-part-1.parquet"}) || st.Bytes != 22 {
		t.Errorf("Staged = %+v", st)
	}
	if _, err := os.Stat(filepath.Join(env.StageDir, st.Files[1])); err != nil {
		t.Error(err)
	}

	c, _ = connector.Open("product", map[string]any{"product": "dp.sales.product-catalog", "version": "9.9.9"})
	_, err = c.Stage(context.Background(), connector.Env{StageDir: t.TempDir(), Products: published{root}})
	if rhizome.Code(err) != rhizome.ENotFound || err.Error() != "product dp.sales.product-catalog@9.9.9: no version 9.9.9" {
		t.Errorf("unknown version: %v", err)
	}
	if _, err := connector.Open("product", map[string]any{}); rhizome.Code(err) != rhizome.EInvalid {
		t.Errorf("no product: %v", err)
	}
}
