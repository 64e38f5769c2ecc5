package quality

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/spec"
)

func problemsText(ps []rhizome.Problem) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return strings.Join(s, "\n")
}

func TestFromInfraSeed(t *testing.T) {
	checks, probs := FromInfra([]rhizome.InfraCheck{
		{Name: "row_count", Threshold: "> 1000"},
		{Name: "null_percentage", Column: "customer_id", Threshold: "< 1%"},
		{Name: "freshness", Threshold: "< 24 hours"},
		{Name: "null_percentage", Column: "email", Threshold: "< 5%", Severity: "warn", Where: "country = 'ES'"},
	})
	if len(probs) > 0 {
		t.Fatal(problemsText(probs))
	}
	var names []string
	for _, c := range checks {
		names = append(names, c.Name)
		if c.Source != SourceInfrastructure || !strings.HasPrefix(c.Path, "spec.quality.checks[") {
			t.Errorf("%s: source %q path %q", c.Name, c.Source, c.Path)
		}
	}
	if got := strings.Join(names, ","); got != "row_count,null_percentage.customer_id,freshness,null_percentage.email" {
		t.Errorf("names %s", got)
	}
	if !checks[1].Threshold.Percent || checks[2].Threshold.Duration.Hours() != 24 {
		t.Errorf("thresholds %+v %+v", checks[1].Threshold, checks[2].Threshold)
	}
}

func TestFromInfraProblems(t *testing.T) {
	_, probs := FromInfra([]rhizome.InfraCheck{
		{Name: "null_percentage", Column: "customer_id", Threshold: "< 1 %"},
		{Name: "null_percentage", Threshold: "< 1%"},
		{Name: "rowcount", Threshold: "> 1"},
		{Name: "freshness", Threshold: "> 10"},
		{Name: "row_count", Threshold: "> 1", Severity: "fatal"},
		{Name: "row_count", Threshold: "> 1", Where: "1=1; DROP TABLE x"},
	})
	got := problemsText(probs)
	for _, want := range []string{
		`spec.quality.checks[0].threshold: "< 1 %" is not a threshold (hint: want e.g. "< 1%")`,
		"spec.quality.checks[1].column: check type null_percentage needs `column`",
		`spec.quality.checks[2].type: unknown check type "rowcount"`,
		"spec.quality.checks[3].threshold: a freshness threshold is a duration",
		`spec.quality.checks[4].severity: "fatal" is not a severity`,
		"spec.quality.checks[5].where: only one statement is allowed",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems do not mention %q:\n%s", want, got)
		}
	}
}

func TestFromSpecSeedSyntax(t *testing.T) {
	var m map[string]any
	if err := yaml.Unmarshal([]byte(`
row_count: "> 1000"
null_percentage: {column: customer_id, threshold: "< 1%"}
freshness: "< 24 hours"
accepted_values:
  - {column: status, values: [open, closed], severity: warn}
  - {column: region, values: [EMEA, AMER], where: "country <> 'XX'"}
unique_order: {type: duplicate_count, columns: [order_id, line]}
schema: {columns: [{name: id, type: BIGINT}, name], strict: true}
`), &m); err != nil {
		t.Fatal(err)
	}
	checks, probs := FromSpec(m)
	if len(probs) > 0 {
		t.Fatal(problemsText(probs))
	}
	byName := map[string]Check{}
	for _, c := range checks {
		byName[c.Name] = c
	}
	if c := byName["schema"]; len(c.Args["columns"].([]any)) != 2 || c.Args["strict"] != true {
		t.Errorf("schema: %+v", c)
	}
	if len(checks) != 7 {
		t.Fatalf("%d checks: %v", len(checks), byName)
	}
	if c := byName["accepted_values.status"]; c.Severity != "warn" || c.Path != "accepted_values[0]" {
		t.Errorf("%+v", c)
	}
	if c := byName["unique_order"]; len(c.Columns) != 2 || c.Type != "duplicate_count" || c.ThresholdText != "== 0" || c.Severity != SeverityError {
		t.Errorf("%+v", c)
	}
	_, probs = FromSpec(map[string]any{"row_count": "> lots", "freshness": 24, "null_count": map[string]any{"threshold": "== 0"}})
	got := problemsText(probs)
	for _, want := range []string{`row_count: "> lots" is not a threshold`, "freshness: want a threshold string", "null_count.column"} {
		if !strings.Contains(got, want) {
			t.Errorf("problems do not mention %q:\n%s", want, got)
		}
	}
}

func contractJSON(t *testing.T, path string) json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestFromContractExamples(t *testing.T) {
	files, _ := filepath.Glob("../examples/mesh/contracts/*.yaml")
	if len(files) == 0 {
		t.Skip("no example contracts")
	}
	for _, f := range files {
		checks, probs := FromContract(contractJSON(t, f))
		if len(probs) > 0 {
			t.Errorf("%s:\n%s", f, problemsText(probs))
		}
		if len(checks) == 0 {
			t.Errorf("%s: no checks", f)
		}
	}
}

// The customer-360 contract, run on data built to pass and then to fail.
func TestFromContractCustomer360(t *testing.T) {
	checks, probs := FromContract(contractJSON(t, "../examples/mesh/contracts/customer-360.yaml"))
	if len(probs) > 0 {
		t.Fatal(problemsText(probs))
	}
	byName := map[string]Check{}
	for _, c := range checks {
		byName[c.Name] = c
	}
	for name, typ := range map[string]string{
		"customer_360.customer_id.nullValues":      "null_count",
		"customer_360.customer_id.duplicateValues": "duplicate_count",
		"customer_360.email.nullValues":            "null_percentage",
		"customer_360.rowCount":                    "row_count",
		"customer_360.sql":                         "custom_sql",
		"customer_360.sql#2":                       "custom_sql",
		"customer_360.schema":                      "schema",
		"customer_360.full_name.required":          "null_count",
		"customer_360.customer_id.unique":          "duplicate_count",
	} {
		if byName[name].Type != typ {
			t.Errorf("%s: type %q, want %s (have %d checks)", name, byName[name].Type, typ, len(checks))
		}
	}
	if c := byName["customer_360.email.nullValues"]; c.Severity != SeverityWarn || !c.Threshold.Percent || c.Threshold.Op != "<" {
		t.Errorf("email rule: %+v", c)
	}
	s := newSession(t)
	exec(t, s, `CREATE TABLE customer_360 AS SELECT
		'CUST-' || i AS customer_id,
		CASE WHEN i % 100 = 0 THEN NULL ELSE 'c' || i || '@example.org' END AS email,
		'Name ' || i AS full_name, 'ES' AS country, 'EMEA' AS region, 'consumer' AS segment,
		DATE '2021-01-01' AS signup_date, true AS marketing_opt_in,
		CASE WHEN i % 2 = 0 THEN DATE '2022-01-01' END AS first_order_date, CASE WHEN i % 2 = 0 THEN DATE '2024-01-01' END AS last_order_date,
		(CASE WHEN i % 2 = 0 THEN 3 ELSE 0 END)::BIGINT AS order_count, (i * 1.25)::DECIMAL(14,2) AS lifetime_value_usd,
		2::BIGINT AS campaign_touches, NULL::TIMESTAMP AS last_touch_at, 0::BIGINT AS open_tickets, 4.5::DECIMAL(3,2) AS avg_csat
		FROM range(1500) r(i)`)
	q := &counting{Querier: s}
	rep, err := Run(context.Background(), q, "customer_360", ForObject(checks, "customer_360"), RunOptions{SampleRows: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if !r.Passed {
			t.Errorf("%s failed: metric %v %s %s %v", r.Check.Name, r.Metric, r.Threshold, r.Error, r.Samples)
		}
	}
	if rep.Gate() != GatePublish {
		t.Errorf("gate %s", rep.Gate())
	}
	// DESCRIBE, the scan, two custom SQL rules.
	if n := len(q.scans()); n != 3 {
		t.Errorf("%d queries besides DESCRIBE, want 3: %q", n, q.scans())
	}

	exec(t, s, `UPDATE customer_360 SET lifetime_value_usd = -1 WHERE customer_id = 'CUST-7'`,
		`UPDATE customer_360 SET email = NULL WHERE customer_id < 'CUST-2'`)
	rep, err = Run(context.Background(), s, "customer_360", checks, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	failed := map[string]bool{}
	for _, r := range rep.Results {
		if !r.Passed {
			failed[r.Check.Name] = true
		}
	}
	if len(failed) != 2 || !failed["customer_360.sql"] || !failed["customer_360.email.nullValues"] {
		t.Errorf("failed %v, want the negative-value rule and the email rule", failed)
	}
	if rep.Gate() != GateQuarantine || rep.Warnings != 1 || rep.Failures != 1 {
		t.Errorf("gate %s warnings %d failures %d", rep.Gate(), rep.Warnings, rep.Failures)
	}
}

func TestFromContractRules(t *testing.T) {
	doc := `{"schema":[{"name":"orders","physicalName":"orders_v2","properties":[
	  {"name":"status","physicalType":"VARCHAR","quality":[
	    {"metric":"invalidValues","arguments":{"validValues":["a","b"],"pattern":"^[a-z]$"},"mustBeLessThan":10,"unit":"percent"},
	    {"metric":"missingValues","arguments":{"missingValues":[null,"","n/a"]},"mustBeLessOrEqualTo":5,"severity":"warning"},
	    {"metric":"nullValues","mustBeBetween":[0,3]},
	    {"type":"sql","query":"SELECT count(*) FROM {object} WHERE {property} = 'x'","mustNotBe":7},
	    {"type":"text","description":"nothing to run"}]}],
	 "quality":[
	    {"metric":"rowCount","mustBeGreaterOrEqualTo":1,"name":"enough"},
	    {"metric":"duplicateValues","arguments":{"properties":["status","id"]},"mustBe":0},
	    {"metric":"rowCount","mustBe":1,"mustBeLessThan":3},
	    {"metric":"rowCount","mustBeBetween":[5,1]},
	    {"metric":"bogus"},
	    {"type":"sql","mustBe":0}]}]}`
	checks, probs := FromContract(json.RawMessage(doc))
	got := problemsText(probs)
	for _, want := range []string{"schema[0].quality[2]: the rule has 2 thresholds", "schema[0].quality[3].mustBeBetween", `schema[0].quality[4].metric: metric "bogus" is not supported`, "schema[0].quality[5].query"} {
		if !strings.Contains(got, want) {
			t.Errorf("problems do not mention %q:\n%s", want, got)
		}
	}
	if len(probs) != 4 {
		t.Errorf("%d problems:\n%s", len(probs), got)
	}
	byName := map[string]Check{}
	for _, c := range checks {
		byName[c.Name] = c
		if c.Object != "orders_v2" {
			t.Errorf("%s: object %q", c.Name, c.Object)
		}
	}
	if c := byName["orders.status.invalidValues"]; c.Type != "accepted_values" || !c.Threshold.Percent {
		t.Errorf("%+v", c)
	}
	if c := byName["orders.status.invalidValues.pattern"]; c.Type != "regex" || c.Args["pattern"] != "^[a-z]$" {
		t.Errorf("%+v", c)
	}
	if c := byName["orders.status.missingValues"]; c.Type != "null_count" || c.Severity != SeverityWarn || len(c.Args["missing_values"].([]any)) != 2 {
		t.Errorf("%+v", c)
	}
	if c := byName["orders.status.nullValues"]; c.Between == nil || c.Between.Max != 3 {
		t.Errorf("%+v", c)
	}
	if c := byName["orders.status.sql"]; !strings.Contains(c.Args["query"].(string), "{property}") || c.Threshold.Op != "!=" {
		t.Errorf("%+v", c)
	}
	if c := byName["orders.enough"]; c.Type != "row_count" || c.Threshold.Op != ">=" {
		t.Errorf("%+v", c)
	}
	if c := byName["orders.duplicateValues"]; strings.Join(c.Columns, ",") != "status,id" {
		t.Errorf("%+v", c)
	}

	s := newSession(t)
	exec(t, s, `CREATE TABLE orders_v2 AS SELECT * FROM (VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, ''), (5, NULL)) v(id, status)`)
	rep, err := Run(context.Background(), s, "orders_v2", checks, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		"orders.status.invalidValues":         false, // 'c' and '' of 5 rows: 40%
		"orders.status.invalidValues.pattern": false, // '' fails the pattern: 20%
		"orders.status.missingValues":         true,  // 2 missing <= 5
		"orders.status.nullValues":            true,  // 1 in [0, 3]
		"orders.status.sql":                   true,  // 0 != 7
		"orders.enough":                       true,
		"orders.duplicateValues":              true,
		"orders.schema":                       true,
	}
	for _, r := range rep.Results {
		if w, ok := want[r.Check.Name]; ok && r.Passed != w {
			t.Errorf("%s: passed %v, want %v (metric %v, %s, %s)", r.Check.Name, r.Passed, w, r.Metric, r.Threshold, r.Error)
		}
	}
}

// TestFromInfraSettings: an infrastructure check carries its type's
// settings (values, min, max, pattern, query...) as written in YAML, and
// the names it takes are exactly the registered check types.
func TestFromInfraSettings(t *testing.T) {
	const doc = `apiVersion: platform/v1
kind: DataProductInfrastructure
metadata: {name: i}
spec:
  quality:
    checks:
      - name: accepted_values
        column: status
        values: [open, closed]
      - name: range
        column: amount
        min: 0
        max: 100
        severity: warn
      - name: duplicate_count
        columns: [order_id, line]
        threshold: "== 0"
`
	objs, err := spec.Parse(spec.File{Name: "i.yaml", Data: []byte(doc)})
	if err != nil {
		t.Fatal(err)
	}
	inf := objs[0].Value.(*rhizome.Infrastructure)
	checks, probs := FromInfra(inf.Spec.Quality.Checks)
	if len(probs) > 0 {
		t.Fatal(problemsText(probs))
	}
	if ps := Validate(checks, []string{"status", "amount", "order_id", "line"}); len(ps) > 0 {
		t.Fatal(problemsText(ps))
	}
	if v, _ := argList(checks[0], "values"); len(v) != 2 || checks[1].Args["max"] != float64(100) || len(checks[2].Columns) != 2 {
		t.Errorf("settings lost: %+v", checks)
	}
	// Re-encoding keeps the settings.
	b, err := json.Marshal(inf.Spec.Quality.Checks[0])
	if err != nil || !strings.Contains(string(b), `"values":["open","closed"]`) {
		t.Errorf("MarshalJSON = %s, %v", b, err)
	}

	names := map[string]bool{}
	for _, ty := range Types() {
		names[ty.Name] = true
	}
	for n := range names {
		if !spec.InfraCheckNames[n] {
			t.Errorf("check type %s is not accepted in spec.quality.checks (spec.InfraCheckNames and schemas/infrastructure.json)", n)
		}
	}
	for n := range spec.InfraCheckNames {
		if !names[n] {
			t.Errorf("spec.InfraCheckNames has %s, which is no check type", n)
		}
	}
}
