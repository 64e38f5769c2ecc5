package quality

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func TestOneScanForAggregateChecks(t *testing.T) {
	s := newSession(t)
	exec(t, s, `CREATE TABLE t AS SELECT i AS id, i % 7 AS k, CASE WHEN i % 10 = 0 THEN NULL ELSE 'x' || i END AS name,
		TIMESTAMP '2026-11-25 10:00:00' - INTERVAL (i) MINUTE AS ts, i * 1.5 AS amount FROM range(1000) r(i)`)
	checks := []Check{
		chk(t, "row_count", "", "== 1000", nil),
		chk(t, "null_count", "name", "== 100", nil),
		chk(t, "null_percentage", "name", "<= 10%", nil),
		chk(t, "duplicate_count", "id", "", nil),
		chk(t, "duplicate_percentage", "id", "", nil),
		chk(t, "min", "amount", ">= 0", nil),
		chk(t, "max", "amount", "< 1500", nil),
		chk(t, "freshness", "ts", "< 3 hours", nil),
		chk(t, "accepted_values", "k", "", map[string]any{"values": []any{0, 1, 2, 3, 4, 5, 6}}),
		chk(t, "range", "amount", "", map[string]any{"min": 0, "max": 1498.5}),
		chk(t, "length", "name", "", map[string]any{"min": 2, "max": 4}),
		chk(t, "regex", "name", "", map[string]any{"pattern": `^x\d+$`}),
		{Type: "row_count", Where: "k = 0", Threshold: th(t, "== 143")},
		{Type: "null_percentage", Column: "name", Where: "id < 10", Threshold: th(t, "== 10%")},
	}
	for i := range checks {
		checks[i].Name = fmt.Sprintf("c%d", i)
	}
	q := &counting{Querier: s}
	rep, err := Run(context.Background(), q, "t", checks, RunOptions{Now: now, SampleRows: 5})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if !r.Passed {
			t.Errorf("%s (%s) failed: metric %v threshold %s error %q", r.Check.Name, r.Check.Type, r.Metric, r.Threshold, r.Error)
		}
	}
	if got := q.scans(); len(got) != 1 {
		t.Fatalf("%d scan queries for %d checks, want 1:\n%s", len(got), len(checks), strings.Join(got, "\n"))
	}
	if !strings.Contains(q.scans()[0], "bitstring_agg") || strings.Contains(q.scans()[0], "DISTINCT") {
		t.Errorf("uniqueness of an integer key is not counted with a bitmap: %s", q.scans()[0])
	}
	if !strings.Contains(q.scans()[0], "FILTER (WHERE (k = 0))") {
		t.Errorf("where is not a FILTER clause: %s", q.scans()[0])
	}
	if len(q.queries) != 3 {
		t.Errorf("%d queries, want DESCRIBE + the key probe + one scan", len(q.queries))
	}
	if !rep.Passed || rep.Gate() != GatePublish {
		t.Errorf("report passed=%v gate=%s", rep.Passed, rep.Gate())
	}
}

// TestBoundaries runs each type on data built to pass and to fail: at the
// threshold, empty table, all nulls, NaN, unicode.
func TestBoundaries(t *testing.T) {
	tables := []string{
		`CREATE TABLE nums AS SELECT * FROM (VALUES (1, 1.0::DOUBLE, 'a'), (2, 2.0, 'b'), (3, 3.0, NULL), (3, 4.0, NULL)) v(id, x, s)`,
		`CREATE TABLE empty (id INTEGER, x DOUBLE, s VARCHAR, ts TIMESTAMP)`,
		`CREATE TABLE nulls AS SELECT NULL::INTEGER AS id, NULL::DOUBLE AS x, NULL::VARCHAR AS s, NULL::TIMESTAMP AS ts FROM range(4)`,
		`CREATE TABLE nan AS SELECT * FROM (VALUES (1.0::DOUBLE), ('NaN'::DOUBLE), (3.0)) v(x)`,
		`CREATE TABLE uni AS SELECT * FROM (VALUES ('héllo'), ('日本語'), ('👍🏽'), ('abc')) v(s)`,
		`CREATE TABLE fmt AS SELECT * FROM (VALUES ('a@b.io', '123e4567-e89b-12d3-a456-426614174000', '2024-02-29'),
			('not-an-email', 'nope', '2024-02-30'), ('ü@exämple.de', '123E4567-E89B-12D3-A456-426614174000', '2024-13-01')) v(email, id, d)`,
		`CREATE TABLE ts AS SELECT * FROM (VALUES (TIMESTAMP '2026-11-24 12:00:00', TIMESTAMPTZ '2026-11-24 12:00:00+00', DATE '2026-11-24')) v(ts, tstz, d)`,
		`CREATE TABLE pairs AS SELECT * FROM (VALUES (1, 'a'), (1, 'b'), (1, 'a'), (NULL, 'a'), (NULL, 'a')) v(a, b)`,
	}
	type tc struct {
		name   string
		table  string
		check  Check
		passed bool
		metric float64 // checked unless NaN
		note   bool
	}
	nan := math.NaN()
	cases := []tc{
		{"row_count at threshold", "nums", chk(t, "row_count", "", ">= 4", nil), true, 4, false},
		{"row_count just above", "nums", chk(t, "row_count", "", "> 4", nil), false, 4, false},
		{"row_count empty", "empty", chk(t, "row_count", "", "", nil), false, 0, false},
		{"row_count where", "nums", Check{Name: "w", Type: "row_count", Where: "id = 3", Threshold: th(t, "== 2")}, true, 2, false},
		{"null_count", "nums", chk(t, "null_count", "s", "<= 2", nil), true, 2, false},
		{"null_count fails", "nums", chk(t, "null_count", "s", "", nil), false, 2, false},
		{"null_count missing values", "nums", chk(t, "null_count", "s", "== 3", map[string]any{"missing_values": []any{"b"}}), true, 3, false},
		{"null_percentage at threshold", "nums", chk(t, "null_percentage", "s", "<= 50%", nil), true, 50, false},
		{"null_percentage below fails", "nums", chk(t, "null_percentage", "s", "< 50%", nil), false, 50, false},
		{"null_percentage empty is 0", "empty", chk(t, "null_percentage", "s", "< 1%", nil), true, 0, false},
		{"null_percentage all nulls", "nulls", chk(t, "null_percentage", "s", "< 100%", nil), false, 100, false},
		{"duplicate_count", "nums", chk(t, "duplicate_count", "id", "", nil), false, 1, false},
		{"duplicate_count at threshold", "nums", chk(t, "duplicate_count", "id", "<= 1", nil), true, 1, false},
		{"duplicate_percentage", "nums", chk(t, "duplicate_percentage", "id", "== 25%", nil), true, 25, false},
		{"duplicate_count all nulls", "nulls", chk(t, "duplicate_count", "id", "", nil), true, 0, false},
		{"duplicate_percentage empty", "empty", chk(t, "duplicate_percentage", "id", "", nil), true, 0, false},
		{"duplicate_count two columns", "pairs", Check{Name: "p", Type: "duplicate_count", Columns: []string{"a", "b"}, Threshold: th(t, "== 1")}, true, 1, false},
		{"min at threshold", "nums", chk(t, "min", "x", ">= 1", nil), true, 1, false},
		{"min fails", "nums", chk(t, "min", "x", "> 1", nil), false, 1, false},
		{"max at threshold", "nums", chk(t, "max", "x", "<= 4", nil), true, 4, false},
		{"max NaN fails", "nan", chk(t, "max", "x", "<= 100", nil), false, nan, false},
		{"min NaN fails", "nan", chk(t, "min", "x", ">= 0", nil), false, nan, false},
		{"min empty passes with note", "empty", chk(t, "min", "x", ">= 0", nil), true, 0, true},
		{"max all nulls passes with note", "nulls", chk(t, "max", "x", "<= 0", nil), true, 0, true},
		{"range inclusive bounds", "nums", chk(t, "range", "x", "", map[string]any{"min": 1, "max": 4}), true, 0, false},
		{"range just inside fails", "nums", chk(t, "range", "x", "", map[string]any{"min": 1.5, "max": 4}), false, 1, false},
		{"range NaN is invalid", "nan", chk(t, "range", "x", "", map[string]any{"min": 0, "max": 10}), false, 1, false},
		{"range percent", "nan", chk(t, "range", "x", "< 34%", map[string]any{"min": 0}), true, 100.0 / 3, false},
		{"range all nulls", "nulls", chk(t, "range", "x", "", map[string]any{"max": 0}), true, 0, false},
		{"accepted_values", "nums", chk(t, "accepted_values", "s", "", map[string]any{"values": []any{"a"}}), false, 1, false},
		{"accepted_values nulls ok", "nums", chk(t, "accepted_values", "s", "", map[string]any{"values": []any{"a", "b"}}), true, 0, false},
		{"length unicode code points", "uni", chk(t, "length", "s", "", map[string]any{"min": 3, "max": 5}), false, 1, false},
		{"length unicode pass", "uni", chk(t, "length", "s", "", map[string]any{"min": 2, "max": 5}), true, 0, false},
		{"regex unicode", "uni", chk(t, "regex", "s", "", map[string]any{"pattern": `^\p{L}+$`}), false, 1, false},
		{"regex partial match", "uni", chk(t, "regex", "s", "", map[string]any{"pattern": `[a-z]`}), false, 2, false},
		{"format email", "fmt", chk(t, "format", "email", "", map[string]any{"format": "email"}), false, 1, false},
		{"format uuid", "fmt", chk(t, "format", "id", "", map[string]any{"format": "uuid"}), false, 1, false},
		{"format date", "fmt", chk(t, "format", "d", "== 2", map[string]any{"format": "date"}), true, 2, false},
		{"freshness at threshold", "ts", chk(t, "freshness", "ts", "<= 24 hours", nil), true, 86400, false},
		{"freshness fails", "ts", chk(t, "freshness", "ts", "< 24 hours", nil), false, 86400, false},
		{"freshness timestamptz", "ts", chk(t, "freshness", "tstz", "<= 24 hours", nil), true, 86400, false},
		{"freshness date is its midnight", "ts", chk(t, "freshness", "d", "<= 36 hours", nil), true, 129600, false},
		{"freshness empty fails", "empty", chk(t, "freshness", "ts", "< 1000 days", nil), false, math.Inf(1), false},
		{"freshness all nulls fails", "nulls", chk(t, "freshness", "ts", "< 1000 days", nil), false, math.Inf(1), false},
		{"mustBeBetween", "nums", Check{Name: "b", Type: "row_count", Between: &Bounds{Min: 4, Max: 5}}, true, 4, false},
		{"mustNotBeBetween", "nums", Check{Name: "b", Type: "row_count", Between: &Bounds{Min: 4, Max: 5, Not: true}}, false, 4, false},
	}
	s := newSession(t)
	exec(t, s, tables...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep, err := Run(context.Background(), s, c.table, []Check{c.check}, RunOptions{Now: now})
			if err != nil {
				t.Fatal(err)
			}
			r := rep.Results[0]
			if r.Error != "" {
				t.Fatalf("error: %s", r.Error)
			}
			if r.Passed != c.passed {
				t.Errorf("passed = %v, want %v (metric %v, threshold %s)", r.Passed, c.passed, r.Metric, r.Threshold)
			}
			switch {
			case math.IsNaN(c.metric):
				if !math.IsNaN(r.Metric) {
					t.Errorf("metric = %v, want NaN", r.Metric)
				}
			case math.Abs(r.Metric-c.metric) > 1e-9 && !(math.IsInf(c.metric, 1) && math.IsInf(r.Metric, 1)):
				t.Errorf("metric = %v, want %v", r.Metric, c.metric)
			}
			if (r.Note != "") != c.note {
				t.Errorf("note = %q, want note: %v", r.Note, c.note)
			}
		})
	}
}

func TestSamplesMasked(t *testing.T) {
	s := newSession(t)
	exec(t, s, `CREATE TABLE people AS SELECT i AS id, 'p' || i || '@x.io' AS email, CASE WHEN i < 3 THEN 'bad' ELSE 'ok' END AS status FROM range(10) r(i)`)
	c := chk(t, "accepted_values", "status", "", map[string]any{"values": []any{"ok"}})
	q := &counting{Querier: s}
	rep, err := Run(context.Background(), q, "people", []Check{c}, RunOptions{SampleRows: 2, Masked: []string{"EMAIL"}})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Results[0]
	if r.Passed || r.Metric != 3 || len(r.Samples) != 2 {
		t.Fatalf("passed=%v metric=%v samples=%v", r.Passed, r.Metric, r.Samples)
	}
	for _, row := range r.Samples {
		if row["email"] != "***" || row["status"] != "bad" {
			t.Errorf("sample %v: want email masked and status bad", row)
		}
	}
	if len(q.scans()) != 2 {
		t.Errorf("want the scan plus one sample query, got %q", q.scans())
	}
	if rep.Gate() != GateQuarantine || rep.Failures != 1 {
		t.Errorf("gate %s failures %d", rep.Gate(), rep.Failures)
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Errorf("report does not encode: %v", err)
	}
}

func TestNonFiniteMetricJSON(t *testing.T) {
	b, err := json.Marshal(Result{Check: Check{Name: "m"}, Metric: math.NaN()})
	if err != nil || !strings.Contains(string(b), `"metric":"NaN"`) {
		t.Errorf("%s %v", b, err)
	}
	b, err = json.Marshal(Result{Metric: 2.5})
	if err != nil || !strings.Contains(string(b), `"metric":2.5`) {
		t.Errorf("%s %v", b, err)
	}
	// An encoder without HTML escaping (the CLI's) prints "> 1" as is.
	var buf strings.Builder
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(Result{Threshold: "> 1"}); err != nil || !strings.Contains(buf.String(), `"threshold":"> 1"`) {
		t.Errorf("%s %v", buf.String(), err)
	}
	// Stored results read back, non-finite metrics included.
	for _, x := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), 0, 2.5} {
		in := Result{Check: Check{Name: "m", ThresholdText: "< 1 hour"}, Metric: x, Threshold: "< 1 hour", Severity: SeverityWarn}
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var out Result
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		same := out.Metric == x || (math.IsNaN(x) && math.IsNaN(out.Metric))
		if !same || out.Check.Name != "m" || out.Threshold != "< 1 hour" || out.Severity != SeverityWarn {
			t.Errorf("%s read back as %+v", b, out)
		}
	}
	if err := json.Unmarshal([]byte(`{"metric":"lots"}`), new(Result)); err == nil {
		t.Error("a non-number metric was accepted")
	}
}

func TestValidate(t *testing.T) {
	checks := []Check{
		{Name: "a", Type: "null_count", Column: "id", Path: "q[0]"},
		{Name: "a", Type: "row_count", Path: "q[1]"},
		{Name: "b", Type: "null_count", Column: "nope", Path: "q[2]"},
		{Name: "c", Type: "regex", Column: "id", Args: map[string]any{"pattern": "("}, Path: "q[3]"},
		{Name: "d", Type: "custom_sql", Args: map[string]any{"query": "SELECT * FROM read_csv('/etc/passwd')"}, Path: "q[4]"},
	}
	got := problemsText(Validate(checks, []string{"id"}))
	for _, want := range []string{`q[1].name: check name "a" is used twice`, `q[2].column: unknown column "nope"`, "q[3].args.pattern", "q[4].args.query: READ_CSV is not allowed"} {
		if !strings.Contains(got, want) {
			t.Errorf("problems do not mention %q:\n%s", want, got)
		}
	}
}

func TestSeverityAndGate(t *testing.T) {
	s := newSession(t)
	exec(t, s, `CREATE TABLE t AS SELECT i AS id FROM range(5) r(i)`)
	warn := chk(t, "row_count", "", "> 10", nil)
	warn.Severity = "warning"
	rep, err := Run(context.Background(), s, "t", []Check{warn}, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Passed || rep.Warnings != 1 || rep.Gate() != GatePublishWithWarnings {
		t.Errorf("passed=%v warnings=%d gate=%s", rep.Passed, rep.Warnings, rep.Gate())
	}
	if rep.Results[0].Severity != SeverityWarn {
		t.Errorf("severity %q", rep.Results[0].Severity)
	}
}

// A broken check is reported on its own; the others still run.
func TestBadCheckIsolated(t *testing.T) {
	s := newSession(t)
	exec(t, s, `CREATE TABLE t AS SELECT i AS id, 'x' AS s FROM range(5) r(i)`)
	checks := []Check{
		chk(t, "row_count", "", "== 5", nil),
		{Name: "bad where", Type: "row_count", Where: "s + 1 > 0", Threshold: th(t, "> 0")},
		chk(t, "null_count", "nope", "", nil),
		{Name: "unknown", Type: "frobnicate", Threshold: th(t, "> 0")},
		{Name: "percent count", Type: "null_count", Column: "s", Threshold: th(t, "< 1%"), ThresholdText: "< 1%"},
		{Name: "inject", Type: "row_count", Where: "1=1) FROM t; DROP TABLE t; --", Threshold: th(t, "> 0")},
		{Name: "drift", Type: "drift"},
	}
	rep, err := Run(context.Background(), s, "t", checks, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Results[0].Passed {
		t.Errorf("row_count: %+v", rep.Results[0])
	}
	for _, r := range rep.Results[1:] {
		if r.Passed || r.Error == "" {
			t.Errorf("%s: passed=%v error=%q, want an error", r.Check.Name, r.Passed, r.Error)
		}
	}
	for i, want := range map[int]string{2: `unknown column "nope"`, 3: "unknown check type", 4: "not a percentage", 5: "not allowed", 6: "needs `column`"} {
		if !strings.Contains(rep.Results[i].Error, want) {
			t.Errorf("%s: error %q does not mention %q", rep.Results[i].Check.Name, rep.Results[i].Error, want)
		}
	}
	if rep.Failures != 6 || rep.Gate() != GateQuarantine {
		t.Errorf("failures=%d gate=%s", rep.Failures, rep.Gate())
	}
	if _, err := Run(context.Background(), s, "missing", checks[:1], RunOptions{}); err == nil {
		t.Error("no error for a missing table")
	}
}

func TestCustomSQL(t *testing.T) {
	s := newSession(t)
	exec(t, s, `CREATE TABLE orders AS SELECT i AS id, CASE WHEN i = 3 THEN -5 ELSE i END AS amount, 'c' || i AS customer FROM range(6) r(i)`)
	checks := []Check{
		{Name: "metric", Type: "custom_sql", Args: map[string]any{"query": "SELECT COUNT(*) FROM {object} WHERE amount < 0"}, Threshold: th(t, "== 1")},
		{Name: "rows", Type: "custom_sql", Args: map[string]any{"query": "SELECT * FROM {object} WHERE amount < 0;", "returns": "rows"}},
		{Name: "decimal", Type: "custom_sql", Args: map[string]any{"query": "SELECT avg(amount)::DECIMAL(10,2) FROM {table}"}, Threshold: th(t, "> 1")},
		{Name: "write", Type: "custom_sql", Args: map[string]any{"query": "DELETE FROM orders"}},
		{Name: "two", Type: "custom_sql", Args: map[string]any{"query": "SELECT 1; SELECT 2"}},
		{Name: "file", Type: "custom_sql", Args: map[string]any{"query": "SELECT count(*) FROM read_csv('/etc/passwd')"}},
		{Name: "file2", Type: "custom_sql", Args: map[string]any{"query": "SELECT count(*) FROM '/etc/passwd'"}},
		{Name: "norow", Type: "custom_sql", Args: map[string]any{"query": "SELECT 1 WHERE false"}},
	}
	rep, err := Run(context.Background(), s, "orders", checks, RunOptions{SampleRows: 3, Masked: []string{"customer"}})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Results
	if !r[0].Passed || r[0].Metric != 1 {
		t.Errorf("metric: %+v", r[0])
	}
	if r[1].Passed || r[1].Metric != 1 || len(r[1].Samples) != 1 || r[1].Samples[0]["customer"] != "***" {
		t.Errorf("rows: %+v", r[1])
	}
	if !r[2].Passed || math.Abs(r[2].Metric-1.17) > 1e-9 {
		t.Errorf("decimal: %+v", r[2])
	}
	for _, x := range r[3:] {
		if x.Passed || x.Error == "" {
			t.Errorf("%s: want refused or failed, got %+v", x.Check.Name, x)
		}
	}
	var n int
	rows, err := s.Query(context.Background(), "SELECT count(*) FROM orders")
	if err != nil {
		t.Fatal(err)
	}
	rows.Next()
	rows.Scan(&n)
	rows.Close()
	if n != 6 {
		t.Errorf("orders has %d rows after the checks", n)
	}
}

func TestSchema(t *testing.T) {
	s := newSession(t)
	exec(t, s, `CREATE TABLE c (id VARCHAR NOT NULL, amount DECIMAL(14,2), n BIGINT, extra INTEGER)`)
	c := Check{Name: "schema", Type: "schema", Args: map[string]any{"strict": true, "columns": []any{
		map[string]any{"name": "id", "type": "string"},
		map[string]any{"name": "amount", "type": "DECIMAL(14, 2)"},
		map[string]any{"name": "n", "type": "INTEGER"},
		map[string]any{"name": "gone", "type": "DATE"},
		map[string]any{"name": "optional", "required": false},
	}}}
	q := &counting{Querier: s}
	rep, err := Run(context.Background(), q, "c", []Check{c}, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Results[0]
	if r.Passed || r.Metric != 3 {
		t.Fatalf("%+v", r)
	}
	got := map[string]string{}
	for _, m := range r.Samples {
		got[m["column"].(string)] = m["problem"].(string)
	}
	want := map[string]string{"n": "type", "gone": "missing", "extra": "undeclared"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("mismatches %v, want %v", got, want)
	}
	if len(q.scans()) != 0 {
		t.Errorf("schema check scanned: %q", q.scans())
	}
}

func TestAnomaly(t *testing.T) {
	s := newSession(t)
	exec(t, s, `CREATE TABLE t AS SELECT i FROM range(100) r(i)`)
	checks := []Check{
		{Name: "rows", Type: "row_count", Threshold: th(t, "> 0")},
		{Name: "rows anomaly", Type: "anomaly", Args: map[string]any{"check": "rows"}},
	}
	run := func(h []float64) Result {
		rep, err := Run(context.Background(), s, "t", checks, RunOptions{History: map[string][]float64{"rows": h}})
		if err != nil {
			t.Fatal(err)
		}
		return rep.Results[1]
	}
	if r := run([]float64{98, 101, 99, 102, 100, 97}); !r.Passed || r.Metric > 1 {
		t.Errorf("normal: %+v", r)
	}
	if r := run([]float64{1000, 1010, 990, 1005, 995}); r.Passed || r.Metric < 3.5 {
		t.Errorf("drop: %+v", r)
	}
	if r := run([]float64{100, 100}); !r.Passed || r.Note == "" {
		t.Errorf("short history: %+v", r)
	}
	if r := run([]float64{100, 100, 100, 100, 100}); !r.Passed || r.Metric != 0 {
		t.Errorf("flat, same: %+v", r)
	}
	if r := run([]float64{101, 101, 101, 101, 101}); r.Passed || !math.IsInf(r.Metric, 1) {
		t.Errorf("flat, changed: %+v", r)
	}
	// window: only the last 5 values count
	checks[1].Args["window"] = 5
	if r := run([]float64{1, 1, 1, 1, 1, 1, 99, 100, 101, 100, 99}); !r.Passed {
		t.Errorf("window: %+v", r)
	}
}

func TestFreshnessFromPublish(t *testing.T) {
	s := newSession(t)
	exec(t, s, `CREATE TABLE t (i INTEGER)`)
	c := Check{Name: "f", Type: "freshness", Threshold: th(t, "< 24 hours")}
	rep, err := Run(context.Background(), s, "t", []Check{c}, RunOptions{Now: now, LastPublished: now.Add(-23 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if r := rep.Results[0]; !r.Passed || r.Metric != 23*3600 {
		t.Errorf("%+v", r)
	}
	rep, _ = Run(context.Background(), s, "t", []Check{c}, RunOptions{Now: now})
	if r := rep.Results[0]; r.Passed {
		t.Errorf("never published passed: %+v", r)
	}
}

func TestReferentialIntegrity(t *testing.T) {
	s := newSession(t)
	exec(t, s, `CREATE TABLE customers AS SELECT * FROM (VALUES ('c1'), ('c2'), (NULL)) v(id)`,
		`CREATE TABLE orders AS SELECT * FROM (VALUES (1, 'c1'), (2, 'c2'), (3, 'c9'), (4, NULL)) v(id, customer_id)`)
	checks := []Check{
		{Name: "fk", Type: "referential_integrity", Column: "customer_id", Args: map[string]any{"table": "customers", "ref_column": "id"}},
		{Name: "fk where", Type: "referential_integrity", Column: "customer_id", Where: "id < 3", Args: map[string]any{"table": "customers", "ref_column": "id"}},
		{Name: "rows", Type: "row_count", Threshold: th(t, "== 4")},
	}
	q := &counting{Querier: s}
	rep, err := Run(context.Background(), q, "orders", checks, RunOptions{SampleRows: 5})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Results
	if r[0].Passed || r[0].Metric != 1 || len(r[0].Samples) != 1 || r[0].Samples[0]["customer_id"] != "c9" {
		t.Errorf("fk: %+v", r[0])
	}
	if !r[1].Passed || !r[2].Passed {
		t.Errorf("%+v\n%+v", r[1], r[2])
	}
	if len(q.scans()) != 2 { // the scan and one sample query
		t.Errorf("queries %q", q.scans())
	}
}

// Row checks with a cheap screen (range, length, integer enums) read only
// min and max in the scan; the failing rows are counted in one more query
// only when the screen says some may fail.
func TestScreenedRowChecks(t *testing.T) {
	s := newSession(t)
	exec(t, s, `CREATE TABLE t AS SELECT i AS id, (i % 7)::INTEGER AS k, CASE WHEN i = 5 THEN 'NaN'::DOUBLE ELSE i END AS x,
		repeat('é', (i % 3 + 1)::INTEGER) AS s FROM range(20) r(i)`)
	pass := []Check{
		chk(t, "range", "id", "", map[string]any{"min": 0, "max": 19}),
		chk(t, "length", "s", "", map[string]any{"min": 1, "max": 3}),
		chk(t, "accepted_values", "k", "", map[string]any{"values": []any{0, 1, 2, 3, 4, 5, 6}}),
	}
	for i := range pass {
		pass[i].Name = fmt.Sprint("p", i)
	}
	q := &counting{Querier: s}
	rep, err := Run(context.Background(), q, "t", pass, RunOptions{SampleRows: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Passed || len(q.scans()) != 1 || strings.Contains(q.scans()[0], "NOT IN") || strings.Contains(q.scans()[0], "NOT BETWEEN") {
		t.Fatalf("passed %v, queries:\n%s", rep.Passed, strings.Join(q.scans(), "\n"))
	}
	fail := []Check{
		chk(t, "range", "id", "", map[string]any{"min": 0, "max": 17}),                                  // 18, 19
		chk(t, "range", "x", "", map[string]any{"min": 0}),                                              // NaN
		chk(t, "length", "s", "", map[string]any{"max": 2}),                                             // 'ééé'
		chk(t, "accepted_values", "k", "", map[string]any{"values": []any{0, 1, 2, 3, 4, 5}}),           // k = 6
		chk(t, "accepted_values", "k", "== 0", map[string]any{"values": []any{0, 1, 2, 3, 4, 5, 6, 7}}), // passes
	}
	want := []float64{2, 1, 6, 2, 0}
	for i := range fail {
		fail[i].Name = fmt.Sprint("f", i)
	}
	q = &counting{Querier: s}
	rep, err = Run(context.Background(), q, "t", fail, RunOptions{SampleRows: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rep.Results {
		if r.Error != "" || r.Metric != want[i] || r.Passed != (want[i] == 0) || (want[i] > 0) != (len(r.Samples) == 1) {
			t.Errorf("%s: %+v, want metric %v", r.Check.Name, r, want[i])
		}
	}
	// the scan, one recount for the four, a sample query each
	if n := len(q.scans()); n != 6 {
		t.Errorf("%d queries:\n%s", n, strings.Join(q.scans(), "\n"))
	}
}

// lyingStats answers the statistics read of integer keys with bounds
// narrower than the data, as a buggy engine would.
type lyingStats struct{ Querier }

func (l lyingStats) Query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if strings.HasPrefix(q, "SELECT CAST(stats(") {
		q = "SELECT '[Min: 0, Max: 1][Has Null: false]' FROM range(1)"
	}
	return l.Querier.Query(ctx, q, args...)
}

// TestUniqueBitmapBounds: uniqueness of an integer key is exact whatever
// its bounds come from: the engine's statistics (wider than the data after
// a delete), a probe (a view without statistics), or wrong statistics
// (the bitmap fails and count(DISTINCT) answers).
func TestUniqueBitmapBounds(t *testing.T) {
	s := newSession(t)
	exec(t, s,
		`CREATE TABLE keys AS SELECT (i - 500)::BIGINT AS id, (i % 300)::INTEGER AS g FROM range(1000) r(i)`,
		`DELETE FROM keys WHERE id < -400 OR id > 400`,
		`INSERT INTO keys VALUES (7, 1), (7, 2), (NULL, 3)`,
		`CREATE VIEW odd AS SELECT id * 2 + 1 AS id, g FROM keys`)
	ctx := context.Background()
	dup := chk(t, "duplicate_count", "id", "", nil)
	grp := chk(t, "duplicate_count", "g", "", nil)
	grp.Name = "g"
	filtered := chk(t, "duplicate_count", "id", "", nil)
	filtered.Name, filtered.Where = "filtered", "id NOT IN (7, 15)" // 7 in keys is 15 in odd
	for _, tc := range []struct {
		name  string
		q     Querier
		table string
	}{{"stats", s, "keys"}, {"view", s, "odd"}, {"lying stats", lyingStats{s}, "keys"}} {
		t.Run(tc.name, func(t *testing.T) {
			c := &counting{Querier: tc.q}
			rep, err := Run(ctx, c, tc.table, []Check{dup, grp, filtered}, RunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]float64{"duplicate_count": 2, "g": 804 - 300, "filtered": 0}
			for _, r := range rep.Results {
				if r.Error != "" || r.Metric != want[r.Check.Name] {
					t.Log(strings.Join(c.queries, "\n"))
					t.Errorf("%s: metric %v, error %q, want %v", r.Check.Name, r.Metric, r.Error, want[r.Check.Name])
				}
			}
			bitmap := strings.Contains(strings.Join(c.queries, "\n"), "bitstring_agg")
			if !bitmap {
				t.Errorf("no bitmap used:\n%s", strings.Join(c.queries, "\n"))
			}
		})
	}
}
