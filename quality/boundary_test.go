package quality

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"
)

// boundaryCase runs one check on one table and states the outcome.
type boundaryCase struct {
	name   string
	table  string
	check  Check
	opt    RunOptions
	passed bool
	metric float64 // checked unless NaN
	note   bool
	errHas string // the check could not be evaluated, saying this
}

var boundaryTables = []string{
	`CREATE TABLE nums AS SELECT * FROM (VALUES (1, 1.0::DOUBLE, 'a'), (2, 2.0, 'b'), (3, 3.0, NULL), (3, 4.0, NULL)) v(id, x, s)`,
	`CREATE TABLE empty (id INTEGER, x DOUBLE, s VARCHAR, ts TIMESTAMP)`,
	`CREATE TABLE nulls AS SELECT NULL::INTEGER AS id, NULL::DOUBLE AS x, NULL::VARCHAR AS s, NULL::TIMESTAMP AS ts FROM range(4)`,
	`CREATE TABLE nan AS SELECT * FROM (VALUES (1, 1.0::DOUBLE), (2, 'NaN'::DOUBLE), (3, 'NaN'::DOUBLE), (4, 3.0)) v(id, x)`,
	`CREATE TABLE uni AS SELECT * FROM (VALUES (1, 'héllo'), (2, '日本語'), (3, '👍🏽'), (4, 'abc'), (5, '日本語')) v(id, s)`,
	`CREATE TABLE "ünï" AS SELECT * FROM (VALUES (1, 'ß')) v("größe", "名前")`,
	`CREATE TABLE refs AS SELECT * FROM (VALUES ('a'), ('b'), ('日本語'), ('héllo'), (NULL)) v(s)`,
	`CREATE TABLE refnums AS SELECT * FROM (VALUES (1.0::DOUBLE), ('NaN'::DOUBLE)) v(x)`,
	// drift: a previous snapshot and current data built from it
	`CREATE TABLE prev AS SELECT i AS n, i::DOUBLE AS d, ['a', 'b', '日本', '👍'][i % 4 + 1] AS cat, DATE '2026-01-01' + (i % 30)::INTEGER AS day FROM range(1000) r(i)`,
	`CREATE TABLE same AS SELECT * FROM prev`,
	`CREATE TABLE shifted AS SELECT i + 500 AS n, (i + 500)::DOUBLE AS d, CASE WHEN i % 2 = 0 THEN 'a' ELSE 'ß' END AS cat, DATE '2026-03-01' + (i % 30)::INTEGER AS day FROM range(1000) r(i)`,
	`CREATE TABLE slight AS SELECT i + 5 AS n, (i + 5)::DOUBLE AS d, ['a', 'b', '日本', '👍'][(i + 1) % 4 + 1] AS cat, DATE '2026-01-01' + (i % 30)::INTEGER AS day FROM range(1000) r(i)`,
	`CREATE TABLE driftnan AS SELECT i AS n, CASE WHEN i % 5 = 0 THEN 'NaN'::DOUBLE ELSE i::DOUBLE END AS d, 'a' AS cat, DATE '2026-01-01' AS day FROM range(1000) r(i)`,
	`CREATE TABLE driftnulls AS SELECT NULL::BIGINT AS n, NULL::DOUBLE AS d, NULL::VARCHAR AS cat, NULL::DATE AS day FROM range(10)`,
	`CREATE TABLE driftempty (n BIGINT, d DOUBLE, cat VARCHAR, day DATE)`,
	`CREATE TABLE older AS SELECT i AS n FROM range(10) r(i)`,
}

// TestBoundaryCatalogue covers every type in the catalogue at the
// boundaries the issue names: exactly at the threshold, an empty table,
// all nulls, NaN and unicode (TestBoundaries in run_test.go has more).
func TestBoundaryCatalogue(t *testing.T) {
	nan := math.NaN()
	inf := math.Inf(1)
	av := func(col, th string, vals ...any) Check {
		return chk(t, "accepted_values", col, th, map[string]any{"values": vals})
	}
	ref := func(table, col, refCol, th string) Check {
		return chk(t, "referential_integrity", col, th, map[string]any{"table": table, "ref_column": refCol})
	}
	sqlc := func(q, th string) Check { return chk(t, "custom_sql", "", th, map[string]any{"query": q}) }
	drift := func(col, th string) Check { return chk(t, "drift", col, th, nil) }
	base := RunOptions{Baseline: "prev", SampleRows: 5}
	withWhere := func(c Check, w string) Check { c.Where = w; return c }
	cases := []boundaryCase{
		// row_count / null / duplicate on unicode and NaN
		{name: "row_count unicode where", table: "uni", check: withWhere(chk(t, "row_count", "", "== 2", nil), "s = '日本語'"), passed: true, metric: 2},
		{name: "row_count all nulls", table: "nulls", check: chk(t, "row_count", "", "== 4", nil), passed: true, metric: 4},
		{name: "null_count NaN is not null", table: "nan", check: chk(t, "null_count", "x", "", nil), passed: true, metric: 0},
		{name: "null_count empty", table: "empty", check: chk(t, "null_count", "x", "", nil), passed: true, metric: 0},
		{name: "null_count unicode column", table: "ünï", check: chk(t, "null_count", "größe", "", nil), passed: true, metric: 0},
		{name: "null_percentage at threshold", table: "nums", check: chk(t, "null_percentage", "s", "<= 50%", nil), passed: true, metric: 50},
		{name: "duplicate NaN equals NaN", table: "nan", check: chk(t, "duplicate_count", "x", "", nil), passed: false, metric: 1},
		{name: "duplicate unicode", table: "uni", check: chk(t, "duplicate_count", "s", "<= 1", nil), passed: true, metric: 1},
		{name: "duplicate unicode fails", table: "uni", check: chk(t, "duplicate_count", "s", "< 1", nil), passed: false, metric: 1},
		{name: "duplicate_percentage all nulls", table: "nulls", check: chk(t, "duplicate_percentage", "s", "", nil), passed: true, metric: 0},
		{name: "duplicate integer key bitmap", table: "nums", check: chk(t, "duplicate_count", "id", "== 1", nil), passed: true, metric: 1},
		{name: "duplicate integer key where", table: "nums", check: withWhere(chk(t, "duplicate_count", "id", "", nil), "id < 3"), passed: true, metric: 0},
		{name: "duplicate integer key empty", table: "empty", check: chk(t, "duplicate_count", "id", "", nil), passed: true, metric: 0},
		{name: "duplicate integer key all nulls", table: "nulls", check: chk(t, "duplicate_count", "id", "", nil), passed: true, metric: 0},
		// min / max
		{name: "min unicode where", table: "uni", check: withWhere(chk(t, "min", "id", ">= 2", nil), "s = '日本語'"), passed: true, metric: 2},
		{name: "max where excludes NaN", table: "nan", check: withWhere(chk(t, "max", "x", "<= 3", nil), "NOT isnan(x)"), passed: true, metric: 3},
		// accepted_values
		{name: "accepted_values unicode", table: "uni", check: av("s", "", "héllo", "日本語", "👍🏽", "abc"), passed: true, metric: 0},
		{name: "accepted_values unicode normal form differs", table: "uni", check: av("s", "== 1", "he\u0301llo", "日本語", "👍🏽", "abc"), passed: true, metric: 1},
		{name: "accepted_values at threshold", table: "uni", check: av("s", "<= 2", "héllo", "abc"), passed: false, metric: 3},
		{name: "accepted_values percent at threshold", table: "uni", check: av("s", "<= 60%", "héllo", "abc"), passed: true, metric: 60},
		{name: "accepted_values empty", table: "empty", check: av("s", "", "a"), passed: true, metric: 0},
		{name: "accepted_values all nulls", table: "nulls", check: av("s", "", "a"), passed: true, metric: 0},
		{name: "accepted_values NaN", table: "nan", check: av("x", "== 2", 1, 3), passed: true, metric: 2},
		// length / regex / format
		{name: "length at threshold", table: "uni", check: chk(t, "length", "s", "", map[string]any{"min": 2, "max": 5}), passed: true, metric: 0},
		{name: "length empty", table: "empty", check: chk(t, "length", "s", "", map[string]any{"max": 1}), passed: true, metric: 0},
		{name: "length all nulls", table: "nulls", check: chk(t, "length", "s", "", map[string]any{"max": 1}), passed: true, metric: 0},
		{name: "length where", table: "uni", check: withWhere(chk(t, "length", "s", "", map[string]any{"max": 3}), "id > 1"), passed: true, metric: 0},
		{name: "regex empty", table: "empty", check: chk(t, "regex", "s", "", map[string]any{"pattern": "^a$"}), passed: true, metric: 0},
		{name: "regex all nulls", table: "nulls", check: chk(t, "regex", "s", "", map[string]any{"pattern": "^a$"}), passed: true, metric: 0},
		{name: "regex NaN as text", table: "nan", check: chk(t, "regex", "x", "== 2", map[string]any{"pattern": "^[0-9.]+$"}), passed: true, metric: 2},
		{name: "format email empty", table: "empty", check: chk(t, "format", "s", "", map[string]any{"format": "email"}), passed: true, metric: 0},
		{name: "format uuid all nulls", table: "nulls", check: chk(t, "format", "s", "", map[string]any{"format": "uuid"}), passed: true, metric: 0},
		{name: "format date unicode", table: "uni", check: chk(t, "format", "s", "== 5", map[string]any{"format": "date"}), passed: true, metric: 5},
		{name: "format percent at threshold", table: "uni", check: chk(t, "format", "s", "<= 100%", map[string]any{"format": "timestamp"}), passed: true, metric: 100},
		// range
		{name: "range empty", table: "empty", check: chk(t, "range", "x", "", map[string]any{"min": 0}), passed: true, metric: 0},
		{name: "range NaN at threshold", table: "nan", check: chk(t, "range", "x", "<= 2", map[string]any{"min": 0, "max": 10}), passed: true, metric: 2},
		// referential_integrity
		{name: "refint unicode", table: "uni", check: ref("refs", "s", "s", ""), passed: false, metric: 2},
		{name: "refint at threshold", table: "uni", check: ref("refs", "s", "s", "<= 2"), passed: true, metric: 2},
		{name: "refint empty", table: "empty", check: ref("refs", "s", "s", ""), passed: true, metric: 0},
		{name: "refint all nulls", table: "nulls", check: ref("refs", "s", "s", ""), passed: true, metric: 0},
		{name: "refint NaN matches NaN", table: "nan", check: ref("refnums", "x", "x", "== 1"), passed: true, metric: 1},
		{name: "refint where", table: "uni", check: withWhere(ref("refs", "s", "s", ""), "id <= 2"), passed: true, metric: 0},
		{name: "refint product", table: "uni", check: chk(t, "referential_integrity", "s", "", map[string]any{"product": "refs", "ref_column": "s"}), passed: false, metric: 2},
		{name: "refint unknown table", table: "uni", check: ref("nosuch", "s", "s", ""), errHas: "nosuch"},
		// custom_sql
		{name: "custom at threshold", table: "nums", check: sqlc("SELECT count(*) FROM {object} WHERE s IS NULL", "<= 2"), passed: true, metric: 2},
		{name: "custom just over", table: "nums", check: sqlc("SELECT count(*) FROM {object} WHERE s IS NULL", "< 2"), passed: false, metric: 2},
		{name: "custom empty", table: "empty", check: sqlc("SELECT count(*) FROM {object}", "== 0"), passed: true, metric: 0},
		{name: "custom all nulls is NULL", table: "nulls", check: sqlc("SELECT max(x) FROM {object}", "> 0"), errHas: "NULL"},
		{name: "custom NaN", table: "nan", check: sqlc("SELECT max(x) FROM {object}", "< 10"), passed: false, metric: nan},
		{name: "custom unicode", table: "uni", check: sqlc("SELECT count(*) FROM {object} WHERE s = '日本語'", "== 2"), passed: true, metric: 2},
		{name: "custom where", table: "uni", check: withWhere(sqlc("SELECT count(*) FROM {object}", "== 2"), "s = '日本語'"), passed: true, metric: 2},
		{name: "custom rows where", table: "uni", check: withWhere(chk(t, "custom_sql", "", "", map[string]any{"query": "SELECT * FROM {object} o WHERE o.id > 3", "returns": "rows"}), "s = '日本語'"), passed: false, metric: 1},
		// schema
		{name: "schema unicode", table: "ünï", check: chk(t, "schema", "", "", map[string]any{"columns": []any{map[string]any{"name": "GRÖSSE", "type": "int"}, "名前"}}), passed: false, metric: 1},
		{name: "schema at threshold", table: "ünï", check: chk(t, "schema", "", "<= 1", map[string]any{"columns": []any{"größe", "名前", "gone"}}), passed: true, metric: 1},
		{name: "schema empty table", table: "empty", check: chk(t, "schema", "", "", map[string]any{"columns": []any{"id", "x", "s", "ts"}}), passed: true, metric: 0},
		// schema_change
		{name: "schema_change none", table: "nums", check: chk(t, "schema_change", "", "", nil), opt: RunOptions{PreviousSchema: []Column{{Name: "ID", Type: "INT"}, {Name: "x", Type: "DOUBLE"}, {Name: "s", Type: "STRING"}}}, passed: true, metric: 0},
		{name: "schema_change first publish", table: "nums", check: chk(t, "schema_change", "", "", nil), passed: true, metric: 0, note: true},
		{name: "schema_change all kinds", table: "nums", check: chk(t, "schema_change", "", "", nil), opt: RunOptions{PreviousSchema: []Column{{Name: "id", Type: "BIGINT"}, {Name: "x", Type: "DOUBLE"}, {Name: "gone", Type: "DATE"}}}, passed: false, metric: 3},
		{name: "schema_change additions allowed", table: "nums", check: chk(t, "schema_change", "", "", map[string]any{"allow_added": true}), opt: RunOptions{PreviousSchema: []Column{{Name: "id", Type: "INTEGER"}, {Name: "x", Type: "DOUBLE"}}}, passed: true, metric: 0},
		{name: "schema_change at threshold", table: "ünï", check: chk(t, "schema_change", "", "<= 1", nil), opt: RunOptions{PreviousSchema: []Column{{Name: "GRÖßE", Type: "INTEGER"}}}, passed: true, metric: 1},
		{name: "schema_change empty previous", table: "nums", check: chk(t, "schema_change", "", "", nil), opt: RunOptions{PreviousSchema: []Column{}}, passed: false, metric: 3},
		// freshness
		{name: "freshness publish at threshold", table: "empty", check: chk(t, "freshness", "", "<= 24 hours", nil), opt: RunOptions{LastPublished: now.Add(-24 * time.Hour)}, passed: true, metric: 86400},
		{name: "freshness publish just over", table: "empty", check: chk(t, "freshness", "", "< 24 hours", nil), opt: RunOptions{LastPublished: now.Add(-24 * time.Hour)}, passed: false, metric: 86400},
		{name: "freshness never published", table: "empty", check: chk(t, "freshness", "", "< 24 hours", nil), passed: false, metric: inf, note: true},
		{name: "freshness where", table: "prev", check: withWhere(chk(t, "freshness", "day", "< 400 days", nil), "n < 10"), passed: true, metric: 27604800},
		// drift
		{name: "drift no baseline", table: "same", check: drift("n", ""), passed: true, metric: 0, note: true},
		{name: "drift numeric same at threshold", table: "same", check: drift("d", "<= 0"), opt: base, passed: true, metric: 0},
		{name: "drift numeric same strict", table: "same", check: drift("d", "< 0"), opt: base, passed: false, metric: 0},
		{name: "drift numeric slight", table: "slight", check: drift("n", ""), opt: base, passed: true, metric: -0.0001},
		{name: "drift numeric shifted", table: "shifted", check: drift("n", ""), opt: base, passed: false, metric: -1},
		{name: "drift date shifted", table: "shifted", check: drift("day", ""), opt: base, passed: false, metric: -1},
		{name: "drift categorical same", table: "same", check: drift("cat", ""), opt: base, passed: true, metric: 0},
		{name: "drift categorical unicode shift", table: "shifted", check: drift("cat", ""), opt: base, passed: false, metric: -1},
		{name: "drift categorical slight", table: "slight", check: drift("cat", ""), opt: base, passed: true, metric: 0},
		{name: "drift NaN bin", table: "driftnan", check: drift("d", ""), opt: base, passed: false, metric: -0.2},
		{name: "drift all nulls", table: "driftnulls", check: drift("d", ""), opt: base, passed: false, metric: -1},
		{name: "drift empty", table: "driftempty", check: drift("d", ""), opt: base, passed: true, metric: 0, note: true},
		{name: "drift empty baseline", table: "same", check: drift("d", ""), opt: RunOptions{Baseline: "driftempty"}, passed: true, metric: 0, note: true},
		{name: "drift new column", table: "same", check: drift("d", ""), opt: RunOptions{Baseline: "older"}, passed: true, metric: 0, note: true},
		{name: "drift where on both", table: "shifted", check: withWhere(drift("n", ""), "n BETWEEN 500 AND 999"), opt: base, passed: true, metric: 0},
		{name: "drift missing baseline", table: "same", check: drift("d", ""), opt: RunOptions{Baseline: "nosuch"}, errHas: "previous snapshot"},
		// anomaly at its threshold: |x - median| / (1.4826 MAD) == 3.5
		{name: "anomaly at threshold", table: "nums", check: chk(t, "anomaly", "", "", map[string]any{"check": "rows"}), passed: true, metric: 3.5},
	}
	// the anomaly case watches a row_count; give it a history with
	// median 0 and MAD 4/(3.5*1.4826)
	mad := 4 / (3.5 * 1.4826)
	for i := range cases {
		if cases[i].check.Type == "anomaly" {
			cases[i].opt.History = map[string][]float64{"rows": {-mad, 0, mad, -mad, 0, mad, 0}}
		}
	}
	s := newSession(t)
	exec(t, s, boundaryTables...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.opt.Now.IsZero() {
				c.opt.Now = now
			}
			if c.check.Name == "" || c.check.Name == c.check.Type {
				c.check.Name = "checked"
			}
			checks := []Check{c.check}
			if c.check.Type == "anomaly" {
				checks = append(checks, Check{Name: "rows", Type: "row_count", Threshold: th(t, "> 0")})
			}
			rep, err := Run(context.Background(), s, c.table, checks, c.opt)
			if err != nil {
				t.Fatal(err)
			}
			r := rep.Results[0]
			if c.errHas != "" {
				if !strings.Contains(r.Error, c.errHas) || r.Passed {
					t.Fatalf("error %q passed %v, want an error mentioning %q", r.Error, r.Passed, c.errHas)
				}
				return
			}
			if r.Error != "" {
				t.Fatalf("error: %s", r.Error)
			}
			if r.Passed != c.passed {
				t.Errorf("passed = %v, want %v (metric %v, threshold %s, note %q)", r.Passed, c.passed, r.Metric, r.Threshold, r.Note)
			}
			switch {
			case math.IsNaN(c.metric):
				if !math.IsNaN(r.Metric) {
					t.Errorf("metric = %v, want NaN", r.Metric)
				}
			case math.IsInf(c.metric, 1):
				if !math.IsInf(r.Metric, 1) {
					t.Errorf("metric = %v, want +Inf", r.Metric)
				}
			case c.metric < 0: // only a lower bound: more than -c.metric
				if r.Metric <= -c.metric {
					t.Errorf("metric = %v, want more than %v", r.Metric, -c.metric)
				}
			case math.Abs(r.Metric-c.metric) > 1e-9:
				t.Errorf("metric = %v, want %v", r.Metric, c.metric)
			}
			if (r.Note != "") != c.note {
				t.Errorf("note = %q, want note: %v", r.Note, c.note)
			}
		})
	}
}
