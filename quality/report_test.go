package quality

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rhizome-mesh/rhizome"
)

// minimal returns a valid check of each registered type.
func minimal(t *testing.T, typ string) Check {
	args := map[string]map[string]any{
		"accepted_values":       {"values": []any{1}},
		"anomaly":               {"check": "rows"},
		"custom_sql":            {"query": "SELECT count(*) FROM {object}"},
		"format":                {"format": "email"},
		"length":                {"max": 3},
		"range":                 {"min": 0},
		"regex":                 {"pattern": "^a"},
		"referential_integrity": {"product": "dp.customer.360"},
		"schema":                {"columns": []any{"id"}},
	}
	th := map[string]string{"max": "< 10", "min": "> 0", "freshness": "< 1 hour"}[typ]
	col := "id"
	if typ == "row_count" || typ == "custom_sql" || typ == "anomaly" || typ == "schema" || typ == "schema_change" {
		col = ""
	}
	return chk(t, typ, col, th, args[typ])
}

// Every type takes a severity and a threshold, and a where filter unless
// it reads no rows (then it says so, naming the field).
func TestEveryTypeTakesWhereSeverityThreshold(t *testing.T) {
	refusesWhere := []string{"anomaly", "schema", "schema_change"}
	for _, ty := range Types() {
		c := minimal(t, ty.Name)
		c.Severity = "warn"
		c.Where = "id > 0"
		c.Path = "q[0]"
		probs := Validate([]Check{c}, []string{"id"})
		if slices.Contains(refusesWhere, ty.Name) {
			if len(probs) != 1 || probs[0].Path != "q[0].where" {
				t.Errorf("%s: want one problem at q[0].where, got %v", ty.Name, probs)
			}
			continue
		}
		if len(probs) > 0 {
			t.Errorf("%s with where: %v", ty.Name, probs)
		}
		c.Where = ""
		c.Threshold, c.ThresholdText = th(t, "!= 12345"), "!= 12345"
		if ty.Name == "freshness" {
			c.Threshold, c.ThresholdText = th(t, "< 2 hours"), "< 2 hours"
		}
		if ps := Validate([]Check{c}, []string{"id"}); len(ps) > 0 {
			t.Errorf("%s with a threshold: %v", ty.Name, ps)
		}
		c.Severity = "fatal"
		if ps := Validate([]Check{c}, []string{"id"}); len(ps) != 1 || ps[0].Path != "q[0].severity" {
			t.Errorf("%s with a bad severity: %v", ty.Name, ps)
		}
	}
	// the freshness of the last publish reads no rows either
	f := Check{Name: "f", Type: "freshness", Where: "id > 0", Threshold: th(t, "< 1 hour"), Path: "q[1]"}
	if ps := Validate([]Check{f}, nil); len(ps) != 1 || ps[0].Path != "q[1].where" {
		t.Errorf("publish freshness with where: %v", ps)
	}
}

func TestValidateBadInput(t *testing.T) {
	checks := []Check{
		{Name: "a", Type: "null_count", Column: "custmer_id", Path: "spec.quality.checks[0]"},
		{Name: "b", Type: "duplicate_count", Columns: []string{"id", "nope"}, Path: "spec.quality.checks[1]"},
		{Name: "c", Type: "custom_sql", Args: map[string]any{"query": "SELECT * FROM read_parquet('s3://bucket/x.parquet')"}, Path: "q[2]"},
		{Name: "d", Type: "custom_sql", Args: map[string]any{"query": "SELECT count(*) FROM 'https://evil.example/x.csv'"}, Path: "q[3]"},
		{Name: "e", Type: "row_count", Where: "id IN (SELECT 1)", Path: "q[4]"},
		{Name: "f", Type: "drift", Column: "id", Args: map[string]any{"bins": 1}, Path: "q[5]"},
		{Name: "g", Type: "freshness", Column: "ts", ThresholdText: "< 1 fortnight", Path: "q[6]"},
		{Name: "h", Type: "referential_integrity", Column: "id", Path: "q[7]"},
		{Name: "i", Type: "custom_sql", Args: map[string]any{"query": "SELECT $$'$$, * FROM t"}, Path: "q[8]"},
		{Name: "j", Type: "row_count", Where: "E'\\'' = x", Path: "q[9]"},
		{Name: "k", Type: "nul_count", Path: "q[10]"},
	}
	got := problemsText(Validate(checks, []string{"id", "customer_id", "ts"}))
	for _, want := range []string{
		"spec.quality.checks[0].column: unknown column \"custmer_id\" (hint: did you mean `customer_id`?)",
		"spec.quality.checks[1].columns[1]: unknown column \"nope\"",
		"q[2].args.query: READ_PARQUET is not allowed",
		"q[3].args.query: reading a file by name is not allowed",
		"q[4].where:",
		"q[5].args.bins:",
		"q[6].threshold:",
		"q[7].args.product:",
		"q[8].args.query: $ is not allowed",
		"q[9].where: escape strings",
		"q[10].type: unknown check type \"nul_count\" (hint: did you mean `null_count`?)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems do not mention %q:\n%s", want, got)
		}
	}
}

func TestReferencedProducts(t *testing.T) {
	checks := []Check{
		{Type: "referential_integrity", Column: "c", Args: map[string]any{"product": "dp.b"}},
		{Type: "referential_integrity", Column: "c", Args: map[string]any{"product": "dp.a", "table": "a_main"}},
		{Type: "referential_integrity", Column: "c", Args: map[string]any{"table": "plain"}},
		{Type: "referential_integrity", Column: "d", Args: map[string]any{"product": "dp.b"}},
		{Type: "row_count", Args: map[string]any{"product": "dp.not"}},
	}
	if got := ReferencedProducts(checks); !slices.Equal(got, []string{"dp.a", "dp.b"}) {
		t.Errorf("ReferencedProducts = %v", got)
	}
}

func suiteReport(t *testing.T) *Report {
	t.Helper()
	s := newSession(t)
	exec(t, s, `CREATE TABLE t AS SELECT i AS id, CASE WHEN i % 4 = 0 THEN NULL ELSE 'x' END AS name,
		CASE WHEN i < 10 THEN 'bad' ELSE 'ok' END AS status, 'secret' || i AS email FROM range(100) r(i)`)
	checks := []Check{
		{Name: "rows", Type: "row_count", Threshold: th(t, "> 0")},
		{Name: "name nulls", Type: "null_count", Column: "name", Threshold: th(t, "<= 25")},                      // 25 of 100 missing
		{Name: "id nulls", Type: "null_percentage", Column: "id", Threshold: th(t, "== 0%")},                     // 0 of 100
		{Name: "status", Type: "accepted_values", Column: "status", Args: map[string]any{"values": []any{"ok"}}}, // 90% valid, fails
		{Name: "status warn", Type: "accepted_values", Column: "status", Severity: "warn", Threshold: th(t, "< 5%"), Args: map[string]any{"values": []any{"ok"}}},
		{Name: "schema", Type: "schema", Args: map[string]any{"columns": []any{"id", "gone"}}}, // fails: 0
		{Name: "broken", Type: "custom_sql", Args: map[string]any{"query": "SELECT nosuch FROM {object}"}},
		{Name: "first", Type: "schema_change"}, // note: not measured
	}
	rep, err := Run(context.Background(), s, "t", checks, RunOptions{Now: now, SampleRows: 2, Masked: []string{"email"}})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestMetrics(t *testing.T) {
	rep := suiteReport(t)
	m := Metrics(rep, now.Add(-90*time.Minute), now)
	// completeness: (25 + 0) missing of 200 rows
	if math.Abs(m.Completeness-87.5) > 1e-9 || m.CompletenessChecks != 2 {
		t.Errorf("completeness %v over %d checks", m.Completeness, m.CompletenessChecks)
	}
	// accuracy: status 0.9, status warn 0.9, schema 0, broken 0 (not evaluated); first left out
	if math.Abs(m.Accuracy-45) > 1e-9 || m.AccuracyChecks != 4 {
		t.Errorf("accuracy %v over %d checks", m.Accuracy, m.AccuracyChecks)
	}
	if !m.Published || m.Freshness != 90*time.Minute || m.FreshnessHours != 1.5 {
		t.Errorf("freshness %+v", m)
	}
	empty := Metrics(&Report{}, time.Time{}, now)
	if empty.Completeness != 100 || empty.Accuracy != 100 || empty.Published || empty.Freshness != 0 {
		t.Errorf("no checks: %+v", empty)
	}

	res := CompareSLA(m, rhizome.SLA{Freshness: "1 hour", Availability: "99.9%", Accuracy: "40%"},
		map[string]float64{"completeness": 0.98, "accuracy": 45, "freshness": 0.99})
	got := map[string]bool{}
	for _, r := range res {
		got[r.Source] = r.Met
	}
	want := map[string]bool{"sla.freshness": false, "sla.accuracy": true, "quality_metrics.completeness": false,
		"quality_metrics.accuracy": true, "quality_metrics.freshness": true}
	if len(got) != len(want) {
		t.Errorf("CompareSLA: %+v", res)
	}
	for k, v := range want {
		if met, ok := got[k]; !ok || met != v {
			t.Errorf("%s: met %v (present %v), want %v; %+v", k, met, ok, v, res)
		}
	}
	never := CompareSLA(Metrics(rep, time.Time{}, now), rhizome.SLA{Freshness: "15min"}, nil)
	if len(never) != 1 || never[0].Met || never[0].Note == "" {
		t.Errorf("never published: %+v", never)
	}
}

func TestJUnit(t *testing.T) {
	rep := suiteReport(t)
	b, err := rep.JUnit("dp.test")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Suites []struct {
			Name     string `xml:"name,attr"`
			Tests    int    `xml:"tests,attr"`
			Failures int    `xml:"failures,attr"`
			Errors   int    `xml:"errors,attr"`
			Skipped  int    `xml:"skipped,attr"`
			Cases    []struct {
				Name    string `xml:"name,attr"`
				Class   string `xml:"classname,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
					Text    string `xml:",chardata"`
				} `xml:"failure"`
				Error *struct {
					Message string `xml:"message,attr"`
				} `xml:"error"`
				Skipped *struct {
					Message string `xml:"message,attr"`
				} `xml:"skipped"`
				Out string `xml:"system-out"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if len(doc.Suites) != 1 {
		t.Fatalf("%s", b)
	}
	s := doc.Suites[0]
	if s.Name != "dp.test" || s.Tests != 8 || s.Failures != 2 || s.Errors != 1 || s.Skipped != 1 {
		t.Errorf("suite %s tests %d failures %d errors %d skipped %d", s.Name, s.Tests, s.Failures, s.Errors, s.Skipped)
	}
	byName := map[string]int{}
	for i, c := range s.Cases {
		byName[c.Name] = i
	}
	st := s.Cases[byName["status"]]
	if st.Failure == nil || !strings.Contains(st.Failure.Message, "metric 10") || !strings.Contains(st.Failure.Text, `"email":"***"`) ||
		!strings.Contains(st.Failure.Text, "threshold: == 0") || st.Class != "dp.test.accepted_values" {
		t.Errorf("status case: %+v", st)
	}
	if c := s.Cases[byName["status warn"]]; c.Failure != nil || !strings.HasPrefix(c.Out, "warning:") {
		t.Errorf("warn case: %+v", c)
	}
	if c := s.Cases[byName["broken"]]; c.Error == nil || !strings.Contains(c.Error.Message, "nosuch") {
		t.Errorf("broken case: %+v", c)
	}
	if c := s.Cases[byName["first"]]; c.Skipped == nil || c.Skipped.Message == "" {
		t.Errorf("first case: %+v", c)
	}
	if c := s.Cases[byName["rows"]]; c.Failure != nil || c.Error != nil || c.Skipped != nil {
		t.Errorf("rows case: %+v", c)
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Error(err)
	}
}

// Drift samples list the bins; a masked column's labels are masked.
func TestDriftSamplesMasked(t *testing.T) {
	s := newSession(t)
	exec(t, s, `CREATE TABLE prev AS SELECT ['x', 'y'][i % 2 + 1] AS c, i AS n FROM range(100) r(i)`,
		`CREATE TABLE cur AS SELECT 'x' AS c, i + 1000 AS n FROM range(100) r(i)`)
	checks := []Check{{Name: "c", Type: "drift", Column: "c"}, {Name: "n", Type: "drift", Column: "n"}}
	rep, err := Run(context.Background(), s, "cur", checks, RunOptions{Baseline: "prev", SampleRows: 10, Masked: []string{"C"}})
	if err != nil {
		t.Fatal(err)
	}
	c, n := rep.Results[0], rep.Results[1]
	if c.Passed || len(c.Samples) != 2 {
		t.Fatalf("c: %+v", c)
	}
	for _, b := range c.Samples {
		if l := b["bin"].(string); !strings.HasPrefix(l, "***") {
			t.Errorf("label %q not masked", l)
		}
	}
	if n.Passed || len(n.Samples) < 2 {
		t.Fatalf("n: %+v", n)
	}
	last := n.Samples[len(n.Samples)-1]
	if !strings.HasSuffix(last["bin"].(string), "+inf)") || last["current_pct"] != 100.0 {
		t.Errorf("last bin %v", last)
	}
}
