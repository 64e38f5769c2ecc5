package spec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rhizome-mesh/rhizome"
)

// seedFile is the guide's infrastructure manifest from the shared seed, or
// the verbatim copy in testdata when the seed is not beside the repo.
func seedFile(t *testing.T) File {
	t.Helper()
	for _, p := range []string{
		filepath.Join("..", "..", "shared", "seed", "infrastructure-example.yaml"),
		filepath.Join("testdata", "seed-infrastructure.yaml"),
	} {
		if data, err := os.ReadFile(p); err == nil {
			return File{Name: p, Data: data}
		}
	}
	t.Fatal("no seed infrastructure manifest")
	return File{}
}

func TestSeedInfrastructureValidatesAsWritten(t *testing.T) {
	f := seedFile(t)
	docs, err := Parse(f)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(docs) != 1 {
		t.Fatalf("got %d documents, want 1", len(docs))
	}
	d := docs[0]
	if d.Kind != rhizome.KindInfrastructure || d.ID != "marketing-campaign-data" {
		t.Errorf("got %s/%s", d.Kind, d.ID)
	}
	if d.Pos.Line != 3 || d.Pos.Col != 1 {
		t.Errorf("document starts at %s, want line 3 (after the comments)", d.Pos)
	}
	want := &rhizome.Infrastructure{
		APIVersion: "platform/v1", Kind: "DataProductInfrastructure",
		Metadata: rhizome.InfraMetadata{Name: "marketing-campaign-data", Namespace: "marketing"},
		Spec: rhizome.InfrastructureSpec{
			Storage:       &rhizome.InfraStorage{Type: "data-lake", Format: "delta-lake", Location: "s3://company-datalake/marketing/", Retention: "90 days", Encryption: "AES-256"},
			Processing:    &rhizome.InfraProcessing{Engine: "spark", Version: "3.4", AutoScaling: true, MinWorkers: 2, MaxWorkers: 20},
			Orchestration: &rhizome.InfraOrchestration{Tool: "airflow", Schedule: "0 */6 * * *", Timeout: "4 hours"},
			Quality: &rhizome.InfraQuality{Framework: "great-expectations", Checks: []rhizome.InfraCheck{
				{Name: "row_count", Threshold: "> 1000"},
				{Name: "null_percentage", Column: "customer_id", Threshold: "< 1%"},
				{Name: "freshness", Threshold: "< 24 hours"},
			}},
			Discovery: &rhizome.InfraDiscovery{Catalog: "amundsen", PublishSchema: true, GenerateDocs: true},
			Security:  &rhizome.InfraSecurity{AccessControl: "rbac", EncryptionAtRest: true, AuditLogging: true},
		},
	}
	if !reflect.DeepEqual(d.Value, want) {
		t.Errorf("Value:\n got %+v\nwant %+v", d.Value, want)
	}
	if !strings.HasPrefix(string(d.Body), `{"apiVersion":"platform/v1","kind":"DataProductInfrastructure","metadata":{"name":"marketing-campaign-data","namespace":"marketing"},"spec":{"storage":{"type":"data-lake"`) {
		t.Errorf("Body lost the author's key order: %s", d.Body)
	}
	for path, want := range map[string]rhizome.Pos{
		"spec.quality.checks[1].threshold": {File: f.Name, Line: 36, Col: 20},
		"spec.quality.checks[1]":           {File: f.Name, Line: 34, Col: 9},
		"spec.quality.checks":              {File: f.Name, Line: 31, Col: 5},
		"spec.orchestration.schedule":      {File: f.Name, Line: 26, Col: 15},
		"spec.quality.checks[1].nosuch":    {File: f.Name, Line: 34, Col: 9},
		"nosuch.field":                     d.Pos,
		"":                                 d.Pos,
	} {
		if got := d.PosOf(path); got != want {
			t.Errorf("PosOf(%q) = %s, want %s", path, got, want)
		}
	}
	if got := LabelsOf(d); !reflect.DeepEqual(got, rhizome.Labels{Domain: "marketing"}) {
		t.Errorf("labels %+v", got)
	}
	// The namespace is a Domain: known to the catalog, the seed is whole.
	if _, err := Validate(catalog{rhizome.KindDomain: {"marketing"}}, f); err != nil {
		t.Errorf("Validate: %v", err)
	}
	// Without it, the one problem is the reference.
	_, err = Validate(nil, f)
	ps := rhizome.ProblemsOf(err)
	if len(ps) != 1 || ps[0].Path != "metadata.namespace" || ps[0].Line != 7 || ps[0].Col != 14 {
		t.Errorf("Validate(nil) = %v", err)
	}
}

func TestGuideCustomer360(t *testing.T) {
	files, err := Load(filepath.Join("testdata", "mesh", "products", "customer-360.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	docs, err := Parse(files...)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := &rhizome.DataProduct{
		APIVersion: "rhizome/v1", Kind: "DataProduct",
		ID: "dp.customer.360", Name: "Customer 360 View", OwnerTeam: "customer-domain-team", Domain: "customer",
		Description:      "Unified customer profile combining all touchpoints",
		Tags:             []string{"customer", "360", "unified", "profile"},
		DocumentationURL: "https://docs.company.com/data-products/customer-360",
		SLA:              rhizome.SLA{Freshness: "15min", Availability: "99.95%", Accuracy: "99.5%"},
		QualityMetrics:   map[string]float64{"completeness": 0.98, "freshness": 0.99, "accuracy": 0.995},
		CurrentVersion:   "2.1.0", PreviousVersions: []string{"2.0.0", "1.9.0"},
		SensitivityLevel: "confidential", RetentionPeriodDays: 730,
	}
	if len(docs) != 1 || !reflect.DeepEqual(docs[0].Value, want) {
		t.Fatalf("got %+v", docs[0].Value)
	}
	l := LabelsOf(docs[0])
	wantL := rhizome.Labels{Domain: "customer", OwnerTeam: "customer-domain-team", Sensitivity: "confidential",
		Tags: []string{"360", "customer", "profile", "unified"}}
	if !reflect.DeepEqual(l, wantL) {
		t.Errorf("labels %+v, want %+v", l, wantL)
	}
}

func TestMeshValidates(t *testing.T) {
	files, err := Load(filepath.Join("testdata", "mesh"), seedFile(t).Name)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := Validate(nil, files...)
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	count := map[rhizome.Kind]int{}
	byID := map[string]*Document{}
	for _, d := range docs {
		count[d.Kind]++
		byID[string(d.Kind)+"/"+d.ID] = d
	}
	// The seed and its copy in the mesh are the same infrastructure.
	wantCount := map[rhizome.Kind]int{rhizome.KindDomain: 3, rhizome.KindTeam: 3, rhizome.KindPolicy: 8,
		rhizome.KindDataContract: 1, rhizome.KindInfrastructure: 1, rhizome.KindDataProduct: 2}
	if !reflect.DeepEqual(count, wantCount) {
		t.Errorf("kinds %v, want %v", count, wantCount)
	}
	team := byID["Team/marketing-team"].Value.(*rhizome.Team)
	if !reflect.DeepEqual(team.EscalationPath, []string{"dave@example.com"}) {
		t.Errorf("a single escalation_path is not normalised to a list: %q", team.EscalationPath)
	}
	if !strings.Contains(string(byID["Team/marketing-team"].Body), `"escalation_path":"dave@example.com"`) {
		t.Errorf("Body should keep what the author wrote: %s", byID["Team/marketing-team"].Body)
	}
	if got := LabelsOf(byID["Team/customer-domain-team"]); !reflect.DeepEqual(got.Members, []string{"alice@example.com", "bob@example.com", "carol@example.com"}) || got.Domain != "customer" {
		t.Errorf("team labels %+v", got)
	}
	if got := LabelsOf(byID["Domain/marketing"]); got.Domain != "marketing" || !reflect.DeepEqual(got.Owners, []string{"marketing-team"}) {
		t.Errorf("domain labels %+v", got)
	}
	c := byID["DataContract/campaign-performance"]
	if got := LabelsOf(c); got.Domain != "marketing" || !reflect.DeepEqual(got.Tags, []string{"marketing"}) {
		t.Errorf("contract labels %+v", got)
	}
	if v := c.Value.(*rhizome.Contract); v.Version != "1.0.0" || v.Status != "active" || len(v.Schema) == 0 {
		t.Errorf("contract %+v", v)
	}
	if got := LabelsOf(byID["Policy/sales-quota-alignment"]); got.Domain != "sales" {
		t.Errorf("policy labels %+v", got)
	}
	// Split across files, the mesh resolves the same through a catalog.
	var products []File
	for _, f := range files {
		if strings.Contains(f.Name, "products") {
			products = append(products, f)
		}
	}
	if _, err := Validate(nil, products...); err == nil {
		t.Error("products alone should have dangling references")
	}
	cat := catalog{}
	for _, d := range docs {
		if d.Kind != rhizome.KindDataProduct {
			cat[d.Kind] = append(cat[d.Kind], d.ID)
		}
	}
	if _, err := Validate(cat, products...); err != nil {
		t.Errorf("products with a catalog: %v", err)
	}
}

// want is one expected problem: exact position, path and hint, and a part
// of the message.
type want struct {
	file      string
	line, col int
	path      string
	msg       string
	hint      string
}

func TestProblems(t *testing.T) {
	bad := func(name string) string { return filepath.Join("testdata", "bad", name) }
	tests := []struct {
		input string
		want  []want
	}{
		{"malformed.yaml", []want{
			{bad("malformed.yaml"), 5, 1, "", "malformed YAML: ',' or ']' must be specified", "close the flow list or mapping with `]` or `}`"},
		}},
		{"unknown-kind.yaml", []want{
			{bad("unknown-kind.yaml"), 2, 7, "kind", "unknown kind `DataProdcut`",
				"did you mean `DataProduct`? (kinds: Domain, Team, Policy, DataContract, DataProductInfrastructure, DataProduct)"},
		}},
		{"misspelt-field.yaml", []want{
			{bad("misspelt-field.yaml"), 5, 1, "owner_tem", "unknown field `owner_tem`", "did you mean `owner_team`?"},
		}},
		{"wrong-types.yaml", []want{
			{bad("wrong-types.yaml"), 7, 7, "tags", "want a list, got a string", `write a list: ["customer"]`},
			{bad("wrong-types.yaml"), 10, 24, "retention_period_days", "want an integer, got a string", "write the number without quotes: 730"},
			{bad("wrong-types.yaml"), 12, 17, "quality_metrics.completeness", "want a number, got a string", "A score between 0 and 1."},
		}},
		{"duplicate-ids.yaml", []want{
			{bad("duplicate-ids.yaml"), 3, 7, "name", "Team `customer-domain-team` is defined more than once; also at " + bad("duplicate-ids.yaml") + ":9:7",
				"ids are unique per kind: rename one or remove the copy"},
			{bad("duplicate-ids.yaml"), 9, 7, "name", "Team `customer-domain-team` is defined more than once; also at " + bad("duplicate-ids.yaml") + ":3:7",
				"ids are unique per kind: rename one or remove the copy"},
		}},
		{"dangling-refs.yaml", []want{
			{bad("dangling-refs.yaml"), 5, 13, "owner_team", "no Team `customer-domian-team` in the input or the catalog", "did you mean `customer-domain-team`?"},
			{bad("dangling-refs.yaml"), 11, 14, "input_ports[0].product", "no DataProduct `dp.customer.306`", "did you mean `dp.customer.360`?"},
			{bad("dangling-refs.yaml"), 12, 11, "contract", "no DataContract `churn-contract`", "define a DataContract named `churn-contract`, or apply it first"},
			{bad("dangling-refs.yaml"), 17, 9, "domain", "no Domain `custmer`", "did you mean `customer`?"},
		}},
		{"odcs-invalid.yaml", []want{
			{bad("odcs-invalid.yaml"), 1, 1, "status", "missing required field `status`", "add `status:`: Current status of the dataset."},
			{bad("odcs-invalid.yaml"), 9, 22, "schema[0].properties[0].logicalType", "`strin` is not one of `string`, `date`", "did you mean `string`?"},
			{bad("odcs-invalid.yaml"), 10, 21, "schema[0].properties[0].primaryKey", "want a boolean, got a string", "write true or false without quotes"},
			{bad("odcs-invalid.yaml"), 11, 5, "schema[0].qualty", "unknown field `qualty`", "did you mean `quality`?"},
		}},
		{"bad-threshold.yaml", []want{
			{bad("bad-threshold.yaml"), 13, 20, "spec.quality.checks[1].threshold", `"< 1 %" is not a threshold`, `want e.g. "< 1%"`},
		}},
		{"bad-duration.yaml", []want{
			{bad("bad-duration.yaml"), 8, 16, "spec.storage.retention", `"90 dais" is not a duration`, `want e.g. "90 days"`},
			{bad("bad-duration.yaml"), 10, 14, "spec.orchestration.timeout", `"4" is not a duration`, `want e.g. "4 hours"`},
		}},
		{"bad-cron.yaml", []want{
			{bad("bad-cron.yaml"), 9, 15, "spec.orchestration.schedule", `"0 */6 * *" is not a cron schedule: expected exactly 5 fields, found 4`,
				`want 5 fields (minute hour day-of-month month day-of-week), e.g. "0 */6 * * *" for every 6 hours`},
		}},
		{"bad-semver.yaml", []want{
			{bad("bad-semver.yaml"), 7, 18, "current_version", `"2.1" is not a semantic version`, `want e.g. "2.1.0"`},
			{bad("bad-semver.yaml"), 8, 30, "previous_versions[1]", `"v1.9" is not a semantic version`, `want e.g. "1.9.0"`},
		}},
		{"id-domain-mismatch.yaml", []want{
			{bad("id-domain-mismatch.yaml"), 3, 5, "id", "id `dp.sales.360` is not in domain `customer`",
				"a product id is dp.<domain>.<name>: `dp.customer.360`, or set `domain: sales`"},
		}},
		{"overlapping-domains.yaml", []want{
			{bad("overlapping-domains.yaml"), 14, 24, "bounded_context.entities[1]", "entity `Customer` is claimed by two domains: `customer` and `marketing`",
				"an entity belongs to one domain's bounded context (`customer` claims it at " + bad("overlapping-domains.yaml") +
					":7:14); keep it there and let `marketing` consume that domain's data product"},
		}},
		{"many", []want{
			{bad("many/domains.yaml"), 4, 1, "owner_teams", "must list at least one item", "The Teams that own the domain: their members may change it and its data products."},
			{bad("many/policies.json"), 6, 12, "domain", "a global policy has no `domain`", "remove `domain`, or set `scope: domain`"},
			{bad("many/policies.json"), 7, 2, "enforcment", "unknown field `enforcment`", "did you mean `enforcement`?"},
			{bad("many/products/broken.yml"), 3, 1, "", `malformed YAML: found character '\t' that cannot start any token`, "indent with spaces; YAML does not allow tabs for indentation"},
			{bad("many/products/churn.yaml"), 8, 21, "previous_versions[0]", "1.0.0 is the current version", "list only earlier versions in previous_versions"},
			{bad("many/products/churn.yaml"), 8, 28, "previous_versions[1]", "1.1.0 is newer than current_version 1.0.0",
				"previous versions are lower than current_version; did you mean to set `current_version: 1.1.0`?"},
			{bad("many/products/churn.yaml"), 9, 20, "sensitivity_level", "`secret` is not one of `public`, `internal`, `confidential`, `restricted`",
				"How sensitive the data is, from least to most protected."},
			{bad("many/products/churn.yaml"), 11, 14, "sla.freshness", `"1 fortnight" is not a duration`, `want e.g. "15min"`},
			{bad("many/products/churn.yaml"), 12, 17, "sla.availability", `"101%" is not a percentage: must lie between 0% and 100%`, `want e.g. "99.9%"`},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.input, func(t *testing.T) {
			files, err := Load(bad(tt.input))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Validate(testCatalog, files...)
			assertProblems(t, err, tt.want)
		})
	}
}

func assertProblems(t *testing.T, err error, wants []want) {
	t.Helper()
	ps := rhizome.ProblemsOf(err)
	if len(ps) != len(wants) {
		t.Fatalf("got %d problems, want %d:\n%v", len(ps), len(wants), err)
	}
	for i, w := range wants {
		p := ps[i]
		if p.File != w.file || p.Line != w.line || p.Col != w.col || p.Path != w.path || p.Hint != w.hint || !strings.Contains(p.Message, w.msg) {
			t.Errorf("problem %d:\n got %s:%d:%d %q %q hint %q\nwant %s:%d:%d %q %q hint %q",
				i, p.File, p.Line, p.Col, p.Path, p.Message, p.Hint, w.file, w.line, w.col, w.path, w.msg, w.hint)
		}
	}
}

func TestErrorSummary(t *testing.T) {
	files, err := Load(filepath.Join("testdata", "bad", "many"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 4 {
		t.Errorf("Load picked %d files, want the 4 manifests (not notes.txt)", len(files))
	}
	docs, err := Validate(testCatalog, files...)
	var e *rhizome.Error
	if !asError(err, &e) || e.Code != rhizome.EInvalid || e.Message != "9 problems in 4 files" {
		t.Fatalf("got %#v", err)
	}
	if len(docs) != 0 {
		t.Errorf("no document in many/ is valid, got %d", len(docs))
	}
	// The valid second document of a file whose first is malformed comes
	// back alongside the error.
	files, _ = Load(filepath.Join("testdata", "bad", "malformed.yaml"))
	docs, err = Parse(files...)
	if err == nil || len(docs) != 1 || docs[0].ID != "support" {
		t.Errorf("got %d docs, %v", len(docs), err)
	}
}

func asError(err error, e **rhizome.Error) bool {
	x, ok := err.(*rhizome.Error)
	*e = x
	return ok
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{
		"b.yaml": "x", "a.yml": "x", "sub/c.json": "x", "sub/readme.md": "x", ".git/d.yaml": "x", "sub/.hidden/e.yaml": "x",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files, err := Load(dir, filepath.Join(dir, "b.yaml"), filepath.Join(dir, "sub", "readme.md"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		rel, _ := filepath.Rel(dir, f.Name)
		names = append(names, filepath.ToSlash(rel))
	}
	if want := []string{"a.yml", "b.yaml", "sub/c.json", "sub/readme.md"}; !reflect.DeepEqual(names, want) {
		t.Errorf("Load = %q, want %q", names, want)
	}

	missing := filepath.Join(dir, "nope.yaml")
	files, err = Load(filepath.Join(dir, "a.yml"), missing)
	if rhizome.Code(err) != rhizome.EInvalid || len(files) != 1 {
		t.Fatalf("got %d files, %v", len(files), err)
	}
	ps := rhizome.ProblemsOf(err)
	if len(ps) != 1 || ps[0].File != missing || ps[0].Message != "no such file or directory" {
		t.Errorf("problems %+v", ps)
	}
	if !strings.Contains(err.Error(), missing) {
		t.Errorf("error does not name the path: %v", err)
	}
}

func TestDecodeOne(t *testing.T) {
	d, err := DecodeOne("d.yaml", []byte("apiVersion: rhizome/v1\nkind: Domain\nname: customer\nowner_teams: [t]\n"))
	if err != nil || d.ID != "customer" || d.Kind != rhizome.KindDomain {
		t.Fatalf("got %+v, %v", d, err)
	}
	for name, data := range map[string]string{
		"none": "# nothing\n",
		"two":  "apiVersion: rhizome/v1\nkind: Domain\nname: a\nowner_teams: [t]\n---\napiVersion: rhizome/v1\nkind: Domain\nname: b\nowner_teams: [t]\n",
		"bad":  "kind: Domain\n",
	} {
		if _, err := DecodeOne(name, []byte(data)); rhizome.Code(err) != rhizome.EInvalid {
			t.Errorf("%s: got %v, want an invalid error", name, err)
		}
	}
}

func TestToYAMLRoundTrip(t *testing.T) {
	files, err := Load(filepath.Join("testdata", "mesh"), seedFile(t).Name)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := Parse(files...)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		y, err := ToYAML(d.Body)
		if err != nil {
			t.Fatalf("%s: %v", d.ID, err)
		}
		back, err := DecodeOne("back.yaml", y)
		if err != nil {
			t.Fatalf("%s: %v\n%s", d.ID, err, y)
		}
		if string(back.Body) != string(d.Body) {
			t.Errorf("%s: round trip changed the body:\n got %s\nwant %s\nyaml:\n%s", d.ID, back.Body, d.Body, y)
		}
	}
	y, err := ToYAML(json.RawMessage(`{"b":"yes","a":["1",1,true,null,"multi\nline"],"c":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(y), "b: ") {
		t.Errorf("key order lost:\n%s", y)
	}
	if _, err := ToYAML(json.RawMessage(`{"a":`)); rhizome.Code(err) != rhizome.EInvalid {
		t.Errorf("bad JSON: %v", err)
	}
}

func TestSchemas(t *testing.T) {
	if got := SchemaKinds(); !reflect.DeepEqual(got, rhizome.Kinds()) {
		t.Errorf("SchemaKinds = %v", got)
	}
	all, err := compiled()
	if err != nil {
		t.Fatalf("embedded schemas do not compile: %v", err)
	}
	for _, k := range SchemaKinds() {
		b, ok := Schema(k)
		if !ok || !json.Valid(b) || all[k] == nil {
			t.Errorf("%s: no valid schema", k)
		}
		var s struct {
			Schema      string `json:"$schema"`
			Description string `json:"description"`
		}
		_ = json.Unmarshal(b, &s)
		if s.Description == "" {
			t.Errorf("%s: schema has no description", k)
		}
		if k != rhizome.KindDataContract && s.Schema != "https://json-schema.org/draft/2020-12/schema" {
			t.Errorf("%s: $schema %q", k, s.Schema)
		}
	}
	if b, ok := Schema("products"); !ok || !strings.Contains(string(b), "dp.customer.360") {
		t.Error("Schema does not accept a plural")
	}
	if _, ok := Schema("Nope"); ok {
		t.Error("Schema(Nope) found something")
	}
	odcs, _ := Schema(rhizome.KindDataContract)
	if len([]rune(string(odcs))) != 86885 {
		t.Errorf("the ODCS schema is not the verbatim v3.1.0 text: %d characters", len([]rune(string(odcs))))
	}
}

func TestLabelsOfEmpty(t *testing.T) {
	if l := LabelsOf(&Document{}); !reflect.DeepEqual(l, rhizome.Labels{}) {
		t.Errorf("labels of nothing: %+v", l)
	}
	p := &Document{Value: &rhizome.Policy{Domain: "sales"}}
	if l := LabelsOf(p); l.Domain != "sales" {
		t.Errorf("policy labels %+v", l)
	}
}

func TestCheckDirect(t *testing.T) {
	a, err := DecodeOne("a.yaml", []byte("apiVersion: rhizome/v1\nkind: Domain\nname: customer\nowner_teams: [t]\nupstream_domains: [customer]\n"))
	if err == nil {
		t.Fatalf("a domain upstream of itself should be refused, got %+v", a)
	}
	if ps := rhizome.ProblemsOf(err); len(ps) != 1 || ps[0].Path != "upstream_domains[0]" {
		t.Errorf("got %v", err)
	}
	d1, _ := DecodeOne("a.yaml", []byte("apiVersion: rhizome/v1\nkind: Domain\nname: customer\nowner_teams: [t]\n"))
	d2, _ := DecodeOne("b.yaml", []byte("apiVersion: rhizome/v1\nkind: Team\nname: t\ndomain: customer\nmembers: [{principal: a}]\n"))
	if err := Check([]*Document{d1, d2}, nil); err != nil {
		t.Errorf("Check: %v", err)
	}
	err = Check([]*Document{d1}, nil)
	assertProblems(t, err, []want{{"a.yaml", 4, 15, "owner_teams[0]", "no Team `t` in the input", "define a Team named `t`, or apply it first"}})
	if err := Check([]*Document{d1}, catalog{rhizome.KindTeam: {"t"}}); err != nil {
		t.Errorf("Check with catalog: %v", err)
	}
	if err := Check(nil, nil); err != nil {
		t.Errorf("Check(nil): %v", err)
	}
}
