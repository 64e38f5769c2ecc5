package examples_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/examples"
	"github.com/rhizome-mesh/rhizome/spec"
)

// TestMeshIsValid applies spec's whole validation to the example mesh: it
// must have no problem at all.
func TestMeshIsValid(t *testing.T) {
	files, err := spec.Load("mesh")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := spec.Validate(nil, files...)
	reportProblems(t, err)
	if len(docs) == 0 {
		t.Fatal("no manifests in examples/mesh")
	}
}

// TestEmbeddedMeshIsValid checks what `rhizome up --demo` applies: the
// embedded copy, named as MeshFiles names it.
func TestEmbeddedMeshIsValid(t *testing.T) {
	mesh, err := examples.MeshFiles()
	if err != nil {
		t.Fatal(err)
	}
	onDisk, err := spec.Load("mesh")
	if err != nil {
		t.Fatal(err)
	}
	if len(mesh) != len(onDisk) {
		t.Fatalf("MeshFiles has %d files, examples/mesh %d", len(mesh), len(onDisk))
	}
	var files []spec.File
	for i, f := range mesh {
		if !strings.HasPrefix(f.Name, examples.Prefix+"mesh/") {
			t.Errorf("MeshFiles name %q does not start with %q", f.Name, examples.Prefix+"mesh/")
		}
		if i > 0 && mesh[i-1].Name >= f.Name {
			t.Errorf("MeshFiles not sorted: %q before %q", mesh[i-1].Name, f.Name)
		}
		files = append(files, spec.File{Name: f.Name, Data: f.Data})
	}
	_, err = spec.Validate(nil, files...)
	reportProblems(t, err)

	byName, err := examples.Mesh()
	if err != nil {
		t.Fatal(err)
	}
	if len(byName) != len(mesh) {
		t.Errorf("Mesh has %d files, MeshFiles %d", len(byName), len(mesh))
	}
}

func reportProblems(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var e *rhizome.Error
	if !errors.As(err, &e) {
		t.Fatal(err)
	}
	for _, p := range e.Problems {
		t.Error(p)
	}
	t.Fatal(e.Message)
}

// TestMeshContents pins what the README, tests and benchmarks rely on.
func TestMeshContents(t *testing.T) {
	files, err := spec.Load("mesh")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := spec.Validate(nil, files...)
	reportProblems(t, err)

	count := map[rhizome.Kind]int{}
	products := map[string]*rhizome.DataProduct{}
	contracts := map[string]*rhizome.Contract{}
	sensitivities := map[string]bool{}
	portTypes := map[string]bool{}
	for _, d := range docs {
		count[d.Kind]++
		switch v := d.Value.(type) {
		case *rhizome.DataProduct:
			products[v.ID] = v
			sensitivities[v.SensitivityLevel] = true
			for _, p := range v.OutputPorts {
				portTypes[p.Type] = true
			}
		case *rhizome.Contract:
			contracts[v.ID] = v
		}
	}
	if count[rhizome.KindDataProduct] < 6 {
		t.Errorf("%d data products; want at least 6", count[rhizome.KindDataProduct])
	}
	if count[rhizome.KindPolicy] != 10 {
		t.Errorf("%d policies; want the guide's 6 global and 2 domain policies and the 2 masking policies", count[rhizome.KindPolicy])
	}
	for _, s := range rhizome.SensitivityLevels() {
		if !sensitivities[s] {
			t.Errorf("no product is %s", s)
		}
	}
	for _, pt := range rhizome.OutputPortTypes() {
		if !portTypes[pt] {
			t.Errorf("no output port of type %s", pt)
		}
	}

	// Every product names a contract that describes it, at its version.
	for id, p := range products {
		c := contracts[p.Contract]
		if c == nil {
			t.Errorf("%s: no contract %q", id, p.Contract)
			continue
		}
		if c.DataProduct != id || c.Domain != p.Domain || c.Version != p.CurrentVersion {
			t.Errorf("%s: contract %s is for %s/%s v%s; want %s/%s v%s", id, c.ID, c.Domain, c.DataProduct, c.Version, p.Domain, id, p.CurrentVersion)
		}
		for _, in := range p.InputPorts {
			if in.Connector == "csv" {
				path, _ := in.Config["path"].(string)
				if _, err := examples.FS.Open(path); err != nil {
					t.Errorf("%s: input port %s reads %q, which is not in examples.FS: %v", id, in.Name, path, err)
				}
			}
		}
	}

	// The guide's example product, exactly.
	c360 := products["dp.customer.360"]
	if c360 == nil {
		t.Fatal("no dp.customer.360")
	}
	want := rhizome.DataProduct{
		ID: "dp.customer.360", Name: "Customer 360 View", OwnerTeam: "customer-domain-team", Domain: "customer",
		Description:      "Unified customer profile combining all touchpoints",
		Tags:             []string{"customer", "360", "unified", "profile"},
		DocumentationURL: "https://docs.company.com/data-products/customer-360",
		SLA:              rhizome.SLA{Freshness: "15min", Availability: "99.95%", Accuracy: "99.5%"},
		QualityMetrics:   map[string]float64{"completeness": 0.98, "freshness": 0.99, "accuracy": 0.995},
		CurrentVersion:   "2.1.0", PreviousVersions: []string{"2.0.0", "1.9.0"},
		SensitivityLevel: "confidential", RetentionPeriodDays: 730,
	}
	got := *c360
	if got.ID != want.ID || got.Name != want.Name || got.OwnerTeam != want.OwnerTeam || got.Domain != want.Domain ||
		got.Description != want.Description || !slices.Equal(got.Tags, want.Tags) || got.DocumentationURL != want.DocumentationURL ||
		got.SLA != want.SLA || len(got.QualityMetrics) != len(want.QualityMetrics) || got.CurrentVersion != want.CurrentVersion ||
		!slices.Equal(got.PreviousVersions, want.PreviousVersions) || got.SensitivityLevel != want.SensitivityLevel ||
		got.RetentionPeriodDays != want.RetentionPeriodDays {
		t.Errorf("dp.customer.360 differs from the guide:\n got %+v\nwant %+v", got, want)
	}
	for k, v := range want.QualityMetrics {
		if got.QualityMetrics[k] != v {
			t.Errorf("dp.customer.360 quality_metrics.%s = %v; want %v", k, got.QualityMetrics[k], v)
		}
	}
}

// TestGuideInfrastructureVerbatim: the guide's manifest must apply exactly
// as written, so the example carries it byte for byte (spec keeps its own
// copy of the seed as testdata).
func TestGuideInfrastructureVerbatim(t *testing.T) {
	ours, err := os.ReadFile("mesh/infrastructure/marketing-campaign-data.yaml")
	if err != nil {
		t.Fatal(err)
	}
	seed, err := os.ReadFile("../spec/testdata/seed-infrastructure.yaml")
	if err != nil {
		t.Skip("no copy of the seed in spec/testdata:", err)
	}
	if !bytes.Equal(ours, seed) {
		t.Error("mesh/infrastructure/marketing-campaign-data.yaml differs from the guide's infrastructure-example.yaml")
	}
}

// TestMeshShowsGovernance pins what the README's tour relies on: checks in
// product manifests (one of them a warn check), mask policies, an
// auto-approval rule, and the retention and erasure properties.
func TestMeshShowsGovernance(t *testing.T) {
	files, err := spec.Load("mesh")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := spec.Validate(nil, files...)
	reportProblems(t, err)

	var withQuality, subjects []string
	warn, autoApprove, maskPolicies := false, false, 0
	for _, d := range docs {
		var body struct {
			Quality map[string]any `json:"quality"`
			Access  struct {
				AutoApprove []map[string]any `json:"auto_approve"`
			} `json:"access"`
			Masks            []map[string]any `json:"masks"`
			CustomProperties map[string]any   `json:"custom_properties"`
		}
		if err := json.Unmarshal(d.Body, &body); err != nil {
			t.Fatal(err)
		}
		switch d.Kind {
		case rhizome.KindDataProduct:
			if len(body.Quality) > 0 {
				withQuality = append(withQuality, d.ID)
				if strings.Contains(string(d.Body), `"severity":"warn"`) {
					warn = true
				}
			}
			if len(body.Access.AutoApprove) > 0 {
				autoApprove = true
			}
			if body.CustomProperties["subject_key"] == "customer_id" {
				subjects = append(subjects, d.ID)
			}
		case rhizome.KindPolicy:
			if len(body.Masks) > 0 {
				maskPolicies++
			}
		}
	}
	if len(withQuality) < 3 || !warn {
		t.Errorf("products with quality checks: %v (a warn check: %v); want at least 3 and a warn check", withQuality, warn)
	}
	if !autoApprove {
		t.Error("no product has access.auto_approve")
	}
	if maskPolicies != 2 {
		t.Errorf("%d policies with masks; want data-classification and customer-name-initials", maskPolicies)
	}
	if len(subjects) != 5 {
		t.Errorf("products with subject_key customer_id: %v; want the 5 that hold customer rows", subjects)
	}
}
