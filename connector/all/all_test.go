package all_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/connector"
	_ "github.com/rhizome-mesh/rhizome/connector/all"
)

var update = flag.Bool("update", false, "rewrite docs/connectors.md from the registry")

const docs = "../../docs/connectors.md"

func TestRegistered(t *testing.T) {
	want := []string{"csv", "http", "json", "parquet", "postgres", "product", "stream"}
	if got := connector.Names(); !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
	for _, s := range connector.Specs() {
		if s.Summary == "" {
			t.Errorf("%s: no summary", s.Name)
		}
		for _, f := range s.Fields {
			if f.Doc == "" {
				t.Errorf("%s.%s: no doc", s.Name, f.Name)
			}
			if f.Default != nil {
				for _, p := range s.Validate(map[string]any{f.Name: f.Default}) {
					if p.Path == "config."+f.Name {
						t.Errorf("%s.%s: the default %v does not validate: %v", s.Name, f.Name, f.Default, p)
					}
				}
			}
		}
	}
}

// TestDocs keeps docs/connectors.md equal to what the registry renders.
func TestDocs(t *testing.T) {
	got := connector.Markdown()
	if *update {
		if err := os.WriteFile(docs, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(docs)
	if err != nil {
		t.Fatalf("%v (run: go test ./connector/all -run TestDocs -update)", err)
	}
	if string(want) != got {
		t.Errorf("docs/connectors.md is stale: run go test ./connector/all -run TestDocs -update")
	}
}

// TestExampleMesh stages every connector input port of the demo mesh from
// the real example files, and checks that every upstream-product port makes
// a valid product config.
func TestExampleMesh(t *testing.T) {
	files, err := filepath.Glob("../../examples/mesh/products/*/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example products: %v", err)
	}
	staged := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var p struct {
			InputPorts []rhizome.InputPort `yaml:"input_ports"`
		}
		if err := yaml.Unmarshal(b, &p); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, port := range p.InputPorts {
			name, cfg := port.Connector, port.Config
			if port.Product != "" {
				name, cfg = "product", map[string]any{"product": port.Product, "version": port.Version}
			}
			c, err := connector.Open(name, cfg)
			if err != nil {
				t.Errorf("%s: input port %s: %v", f, port.Name, err)
				continue
			}
			if name == "product" {
				continue
			}
			st, err := c.Stage(context.Background(), connector.Env{StageDir: t.TempDir(), BaseDir: "../../examples"})
			if err != nil || len(st.Files) == 0 || st.Bytes == 0 {
				t.Errorf("%s: input port %s: %+v, %v", f, port.Name, st, err)
			}
			staged++
		}
	}
	if staged == 0 {
		t.Error("no input port staged")
	}
}
