package quality

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/spec"
)

var update = flag.Bool("update", false, "rewrite docs/quality-checks.md from the registry")

const docsPage = "../docs/quality-checks.md"

// TestDocs keeps docs/quality-checks.md equal to what Markdown renders.
func TestDocs(t *testing.T) {
	got := Markdown()
	for _, ty := range Types() {
		if !strings.Contains(got, "\n### "+ty.Name+"\n") {
			t.Errorf("catalogue lacks %s", ty.Name)
		}
	}
	if *update {
		if err := os.WriteFile(docsPage, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(docsPage)
	if err != nil {
		t.Fatalf("%v (run: go test ./quality -run TestDocs -update)", err)
	}
	if got != string(want) {
		t.Errorf("docs/quality-checks.md is stale: run go test ./quality -run TestDocs -update and review the diff")
	}
}

func TestRegistry(t *testing.T) {
	want := []string{"accepted_values", "anomaly", "custom_sql", "drift", "duplicate_count", "duplicate_percentage", "format", "freshness",
		"length", "max", "min", "null_count", "null_percentage", "range", "referential_integrity", "regex", "row_count", "schema", "schema_change"}
	if got := strings.Join(typeNames(), ","); got != strings.Join(want, ",") {
		t.Errorf("types %s", got)
	}
	for _, ty := range Types() {
		if ty.Summary == "" {
			t.Errorf("%s has no summary", ty.Name)
		}
		for _, f := range ty.Fields {
			if f.Doc == "" {
				t.Errorf("%s.%s has no doc", ty.Name, f.Name)
			}
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

// TestDocsExamples reads the three example blocks of the guide through
// FromSpec, FromInfra and FromContract: the docs show what works.
func TestDocsExamples(t *testing.T) {
	var blocks []string
	for i, part := range strings.Split(guide, "```yaml\n") {
		if i > 0 {
			blocks = append(blocks, strings.SplitN(part, "```", 2)[0])
		}
	}
	if len(blocks) < 3 {
		t.Fatalf("%d yaml blocks in guide.md", len(blocks))
	}
	var manifest struct {
		Quality map[string]any `json:"quality"`
	}
	if err := yaml.Unmarshal([]byte(blocks[0]), &manifest); err != nil {
		t.Fatal(err)
	}
	checks, probs := FromSpec(manifest.Quality)
	if len(probs) > 0 || len(checks) != 8 {
		t.Errorf("manifest example: %d checks\n%s", len(checks), problemsText(probs))
	}
	if got := ReferencedProducts(checks); len(got) != 1 || got[0] != "dp.customer.360" {
		t.Errorf("referenced products %v", got)
	}
	// As the server reads manifests: YAML to JSON, then the typed value
	// (which keeps each check's settings).
	var infra rhizome.Infrastructure
	jb, err := yaml.YAMLToJSON([]byte(blocks[1]))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(jb, &infra); err != nil {
		t.Fatal(err)
	}
	checks, probs = FromInfra(infra.Spec.Quality.Checks)
	if len(probs) > 0 || len(checks) != 5 {
		t.Errorf("infrastructure example: %d checks\n%s", len(checks), problemsText(probs))
	}
	// The contract example is a valid ODCS document, as `rhizome validate`
	// reads it.
	head := "apiVersion: v3.1.0\nkind: DataContract\nid: orders-contract\nversion: 1.0.0\nstatus: active\n"
	if _, err := spec.DecodeOne("contract.yaml", []byte(head+blocks[2])); err != nil {
		t.Errorf("contract example: %v\n%s", err, problemsText(rhizome.ProblemsOf(err)))
	}
	j, err := yaml.YAMLToJSON([]byte(blocks[2]))
	if err != nil {
		t.Fatal(err)
	}
	checks, probs = FromContract(j)
	types := map[string]int{}
	for _, c := range checks {
		types[c.Type]++
	}
	want := map[string]int{"null_count": 1, "duplicate_count": 2, "null_percentage": 1, "regex": 1, "accepted_values": 1, "row_count": 1, "custom_sql": 1, "schema": 1}
	if len(probs) > 0 || fmt.Sprint(types) != fmt.Sprint(want) {
		t.Errorf("contract example: %v, want %v\n%s", types, want, problemsText(probs))
	}
	if len(blocks) > 3 {
		var p rhizome.DataProduct
		if err := yaml.Unmarshal([]byte(blocks[3]), &p); err != nil || p.SLA.Freshness != "15min" || p.QualityMetrics["completeness"] != 0.98 {
			t.Errorf("sla example: %+v %v", p, err)
		}
	}
}
