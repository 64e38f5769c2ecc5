package quality

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestMarkdownGolden(t *testing.T) {
	got := Markdown()
	for _, ty := range Types() {
		if !strings.Contains(got, "\n## "+ty.Name+"\n") {
			t.Errorf("catalogue lacks %s", ty.Name)
		}
	}
	path := filepath.Join("testdata", "checks.md")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if got != string(want) {
		t.Errorf("Markdown() differs from %s; run go test ./quality -run Markdown -update and review the diff", path)
	}
}

func TestRegistry(t *testing.T) {
	want := []string{"accepted_values", "anomaly", "custom_sql", "drift", "duplicate_count", "duplicate_percentage", "format", "freshness",
		"length", "max", "min", "null_count", "null_percentage", "range", "referential_integrity", "regex", "row_count", "schema"}
	if got := strings.Join(typeNames(), ","); got != strings.Join(want, ",") {
		t.Errorf("types %s", got)
	}
	for _, ty := range Types() {
		if ty.Summary == "" {
			t.Errorf("%s has no summary", ty.Name)
		}
	}
	if ty, ok := Lookup("missing_percentage"); !ok || ty.Name != "null_percentage" {
		t.Error("alias missing_percentage")
	}
	defer func() {
		if recover() == nil {
			t.Error("duplicate Register did not panic")
		}
	}()
	Register(Type{Name: "row_count", Kind: KindAggregate, Compile: func(Check, string) (Plan, error) { return Plan{}, nil }})
}
