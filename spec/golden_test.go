package spec

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rhizome-mesh/rhizome"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// catalog is a Resolver over a fixed set of objects, standing in for the
// store in tests.
type catalog map[rhizome.Kind][]string

func (c catalog) Exists(k rhizome.Kind, id string) bool {
	for _, x := range c[k] {
		if x == id {
			return true
		}
	}
	return false
}

func (c catalog) IDs(k rhizome.Kind) []string { return c[k] }

// testCatalog holds what the bad inputs refer to, so each case shows only
// the problem it is about.
var testCatalog = catalog{
	rhizome.KindDomain:         {"customer", "marketing", "sales"},
	rhizome.KindTeam:           {"customer-domain-team", "marketing-team"},
	rhizome.KindDataProduct:    {"dp.customer.360"},
	rhizome.KindDataContract:   {"campaign-performance"},
	rhizome.KindInfrastructure: {"marketing-campaign-data"},
}

// TestGolden validates every input under testdata/bad (a file or a
// directory) and compares the whole error text with testdata/golden.
func TestGolden(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join("testdata", "bad"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), filepath.Ext(e.Name()))
		t.Run(name, func(t *testing.T) {
			files, err := Load(filepath.Join("testdata", "bad", e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Validate(testCatalog, files...)
			if err == nil {
				t.Fatal("no error")
			}
			if rhizome.Code(err) != rhizome.EInvalid {
				t.Fatalf("code %s, want invalid", rhizome.Code(err))
			}
			got := err.Error() + "\n"
			golden := filepath.Join("testdata", "golden", name+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update)", err)
			}
			if got != string(want) {
				t.Errorf("error text differs from %s:\n got:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}
