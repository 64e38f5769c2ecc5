package quality

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/rhizome-mesh/rhizome"
)

// Result is one check's outcome. Error is set when the check could not be
// evaluated (bad settings, unknown column, failing SQL); such a check has
// not passed. Note explains a pass that measured nothing.
type Result struct {
	Check     Check            `json:"check"`
	Metric    float64          `json:"metric"`
	Threshold string           `json:"threshold"`
	Passed    bool             `json:"passed"`
	Severity  string           `json:"severity"`
	Samples   []map[string]any `json:"samples,omitempty"`
	// Rows is the number of rows in the check's scope, for checks that
	// count them (row_count, null and row-level checks); Metrics weighs by it.
	Rows  *float64 `json:"rows,omitempty"`
	Error string   `json:"error,omitempty"`
	Note  string   `json:"note,omitempty"`
}

// Report is the outcome of a suite on one table.
type Report struct {
	Results  []Result      `json:"results"`
	Passed   bool          `json:"passed"`   // no error-severity failure
	Warnings int           `json:"warnings"` // warn-severity failures
	Failures int           `json:"failures"` // error-severity failures
	Duration time.Duration `json:"duration"`
}

// Gates.
const (
	GatePublish             = "publish"
	GatePublishWithWarnings = "publish-with-warnings"
	GateQuarantine          = "quarantine"
)

// Gate says what to do with the checked snapshot.
func (r *Report) Gate() string {
	switch {
	case r.Failures > 0:
		return GateQuarantine
	case r.Warnings > 0:
		return GatePublishWithWarnings
	}
	return GatePublish
}

type compiled struct {
	i    int
	plan Plan
	idx  []int // where its aggregates sit in the scan (shared when equal)
	// exact is the plan's aggregates before bitmapKeys replaced
	// count(DISTINCT) with a bitmap (nil: not replaced), to retry with
	// if the bitmap's bounds turn out wrong.
	exact []string
}

// Run evaluates checks on table: one DESCRIBE, one scan for every
// aggregate and row check, a sample query per failing row check, and one
// query per custom SQL, drift or referential check that needs its own.
// Uniqueness of an integer key reads the column's bounds from the engine's
// statistics (or, without them, a min/max probe) so the scan can count
// distinct values with a bitmap instead of a hash table.
// An error is returned only when the table cannot be described;
// everything else lands in a Result.
func Run(ctx context.Context, q Querier, table string, checks []Check, opt RunOptions) (*Report, error) {
	start := time.Now()
	if opt.Now.IsZero() {
		opt.Now = time.Now()
	}
	cols, err := describe(ctx, q, table)
	if err != nil {
		return nil, err
	}
	known := map[string]Column{}
	for _, c := range cols {
		known[strings.ToLower(c.Name)] = c
	}
	res := make([]Result, len(checks))
	var scan, others, derived []compiled
	for i, c := range checks {
		_, p, err := compile(&c, table)
		res[i] = Result{Check: c, Severity: c.Severity, Threshold: c.thresholdString()}
		if err != nil {
			res[i].Error = errText(err)
			continue
		}
		if miss := missingColumns(c, known); len(miss) > 0 {
			res[i].Error = fmt.Sprintf("unknown column %s in table %s", strings.Join(miss, ", "), table)
			continue
		}
		switch {
		case len(p.Aggregates) > 0:
			scan = append(scan, compiled{i: i, plan: p})
		case p.Derived != nil:
			derived = append(derived, compiled{i: i, plan: p})
		default:
			others = append(others, compiled{i: i, plan: p})
		}
	}
	bitmapKeys(ctx, q, table, known, scan, res)
	for k := range scan {
		p := &scan[k].plan
		if p.screenFor != nil {
			p.screen = p.screenFor(known[strings.ToLower(res[scan[k].i].Check.Column)].Type)
		}
	}

	var exprs []string
	at := map[string]int{}
	for k := range scan {
		s := &scan[k]
		aggs := s.plan.Aggregates
		if s.plan.screen != "" {
			aggs = append([]string{s.plan.screen}, aggs[1:]...)
		}
		for _, e := range aggs {
			e = "CAST((" + e + ") AS DOUBLE)"
			j, ok := at[e]
			if !ok {
				j = len(exprs)
				at[e] = j
				exprs = append(exprs, e)
			}
			s.idx = append(s.idx, j)
		}
	}
	pick := func(vals []sql.NullFloat64, idx []int) []sql.NullFloat64 {
		out := make([]sql.NullFloat64, len(idx))
		for i, j := range idx {
			out[i] = vals[j]
		}
		return out
	}
	// A screened row check whose screen is not clean counts its failing
	// rows in one more query, shared by every such check.
	type pending struct {
		s compiled
		v []sql.NullFloat64
	}
	var recount []pending
	settle := func(s compiled, v []sql.NullFloat64) {
		if s.plan.screen != "" {
			if v[0].Valid && v[0].Float64 != 1 {
				recount = append(recount, pending{s, v})
				return
			}
			v[0] = sql.NullFloat64{Float64: 0, Valid: true} // no row can fail
		}
		evalAggregate(ctx, q, table, &res[s.i], s.plan, v, opt)
	}
	if len(scan) > 0 {
		vals, err := scanRow(ctx, q, "SELECT "+strings.Join(exprs, ", ")+" FROM "+quoteTable(table), len(exprs))
		if err != nil {
			// Find the culprit(s): re-run each check's aggregates alone.
			for _, s := range scan {
				var mine []string
				for _, j := range s.idx {
					mine = append(mine, exprs[j])
				}
				v, err := scanRow(ctx, q, "SELECT "+strings.Join(mine, ", ")+" FROM "+quoteTable(table), len(mine))
				if err != nil && s.exact != nil {
					// A bitmap bound taken from statistics was wrong (a
					// value outside it): count(DISTINCT) is exact anyway.
					s.plan.Aggregates, s.plan.screen = s.exact, ""
					mine = mine[:0]
					for _, e := range s.exact {
						mine = append(mine, "CAST(("+e+") AS DOUBLE)")
					}
					v, err = scanRow(ctx, q, "SELECT "+strings.Join(mine, ", ")+" FROM "+quoteTable(table), len(mine))
				}
				if err != nil {
					res[s.i].Error = errText(err)
					continue
				}
				settle(s, v)
			}
		} else {
			for _, s := range scan {
				settle(s, pick(vals, s.idx))
			}
		}
	}
	if len(recount) > 0 {
		var counts []string
		for _, p := range recount {
			counts = append(counts, "CAST(("+p.s.plan.Aggregates[0]+") AS DOUBLE)")
		}
		vals, err := scanRow(ctx, q, "SELECT "+strings.Join(counts, ", ")+" FROM "+quoteTable(table), len(counts))
		for k, p := range recount {
			if err != nil {
				res[p.s.i].Error = errText(err)
				continue
			}
			p.v[0] = vals[k]
			evalAggregate(ctx, q, table, &res[p.s.i], p.s.plan, p.v, opt)
		}
	}
	for _, o := range others {
		r := &res[o.i]
		switch {
		case o.plan.Eval != nil:
			r.Metric, r.Samples, r.Note, err = o.plan.Eval(ctx, Env{Q: q, Table: table, Columns: cols, Opt: opt})
			if err != nil {
				r.Error = errText(err)
			}
		case o.plan.Schema != nil:
			r.Metric, r.Samples = o.plan.Schema(cols)
		case o.plan.QueryRows:
			v, err := scanRow(ctx, q, "SELECT count(*) FROM ("+o.plan.Query+") AS failing", 1)
			if err != nil {
				r.Error = errText(err)
				continue
			}
			r.Metric = v[0].Float64
			if r.Metric > 0 && opt.SampleRows > 0 {
				r.Samples, err = sample(ctx, q, fmt.Sprintf("SELECT * FROM (%s) AS failing LIMIT %d", o.plan.Query, opt.SampleRows), opt.Masked)
				if err != nil {
					r.Error = errText(err)
				}
			}
		default:
			r.Metric, err = queryMetric(ctx, q, o.plan.Query)
			if err != nil {
				r.Error = errText(err)
			}
		}
	}
	metrics := map[string]float64{}
	for _, r := range res {
		if r.Error == "" {
			metrics[r.Check.Name] = r.Metric
		}
	}
	for _, d := range derived {
		r := &res[d.i]
		m, note, err := d.plan.Derived(metrics, opt)
		switch {
		case err != nil:
			r.Error = err.Error()
		case note != "" && m == 0:
			r.Note = note
		default:
			r.Metric, r.Note = m, note
		}
	}

	rep := &Report{Results: res, Passed: true}
	for i := range res {
		r := &res[i]
		switch {
		case r.Error != "":
			r.Passed = false
		case r.Note != "" && r.Metric == 0:
			r.Passed = true
		default:
			r.Passed = r.Check.holds(r.Metric)
		}
		if !r.Passed {
			if r.Severity == SeverityWarn {
				rep.Warnings++
			} else {
				rep.Failures++
				rep.Passed = false
			}
		}
	}
	rep.Duration = time.Since(start)
	return rep, nil
}

func evalAggregate(ctx context.Context, q Querier, table string, r *Result, p Plan, v []sql.NullFloat64, opt RunOptions) {
	if p.rowsAt > 0 {
		n := v[p.rowsAt-1].Float64
		r.Rows = &n
	}
	if p.Metric == nil {
		r.Metric = v[0].Float64
	} else {
		m, err := p.Metric(v, opt)
		if errors.Is(err, errNoValues) {
			r.Note = err.Error()
			m = 0
		} else if err != nil {
			r.Error = errText(err)
			return
		}
		r.Metric = m
	}
	if p.FailRows != "" && v[0].Float64 > 0 && opt.SampleRows > 0 && !r.Check.holds(r.Metric) {
		var err error
		r.Samples, err = sample(ctx, q, fmt.Sprintf("SELECT * FROM %s WHERE %s LIMIT %d", quoteTable(table), scope(r.Check, p.FailRows), opt.SampleRows), opt.Masked)
		if err != nil {
			r.Error = errText(err)
		}
	}
}

func missingColumns(c Check, known map[string]Column) []string {
	var miss []string
	for _, col := range c.allColumns() {
		if c.Type == "schema" {
			break // declared columns are what the schema check compares
		}
		if _, ok := known[strings.ToLower(col)]; !ok {
			miss = append(miss, strconv.Quote(col))
		}
	}
	return miss
}

func describe(ctx context.Context, q Querier, table string) ([]Column, error) {
	rows, err := q.Query(ctx, "DESCRIBE "+quoteTable(table))
	if err != nil {
		return nil, &rhizome.Error{Code: rhizome.ENotFound, Message: fmt.Sprintf("table %s not found", table), Err: err}
	}
	defer rows.Close()
	names, err := rows.Columns()
	if err != nil {
		return nil, rhizome.Wrap(err, "describing %s", table)
	}
	var cols []Column
	for rows.Next() {
		vals := make([]sql.NullString, len(names))
		ptrs := make([]any, len(names))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, rhizome.Wrap(err, "describing %s", table)
		}
		var c Column
		for i, n := range names {
			switch n {
			case "column_name":
				c.Name = vals[i].String
			case "column_type":
				c.Type = vals[i].String
			case "null":
				c.Nullable = vals[i].String != "NO"
			}
		}
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		return nil, rhizome.Wrap(err, "describing %s", table)
	}
	return cols, nil
}

func scanRow(ctx context.Context, q Querier, query string, n int) ([]sql.NullFloat64, error) {
	rows, err := q.Query(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	vals := make([]sql.NullFloat64, n)
	ptrs := make([]any, n)
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("the query returned no row")
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	return vals, rows.Err()
}

// queryMetric runs a custom metric query: one row, first column a number.
func queryMetric(ctx context.Context, q Querier, query string) (float64, error) {
	rows, err := q.Query(ctx, query)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, err
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return 0, err
		}
		return 0, fmt.Errorf("the query returned no row; a metric query returns one number")
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return 0, err
	}
	if rows.Next() {
		return 0, fmt.Errorf("the query returned more than one row; a metric query returns one number (use returns: rows for failing rows)")
	}
	if vals[0] == nil {
		return 0, fmt.Errorf("the query returned NULL; a metric query returns one number")
	}
	f, err := toFloat(vals[0])
	if err != nil {
		return 0, fmt.Errorf("the query's first column is not a number: %v", err)
	}
	return f, rows.Err()
}

// sample reads failing rows, masking columns by name (case-insensitive).
func sample(ctx context.Context, q Querier, query string, masked []string) ([]map[string]any, error) {
	mask := map[string]bool{}
	for _, m := range masked {
		mask[strings.ToLower(m)] = true
	}
	rows, err := q.Query(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []map[string]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		row := make(map[string]any, len(cols))
		for i, c := range cols {
			v := vals[i]
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
				v = strconv.FormatFloat(f, 'g', -1, 64) // keeps the sample JSON-encodable
			}
			if mask[strings.ToLower(c)] {
				v = "***"
			}
			row[c] = v
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

func errText(err error) string {
	var e *rhizome.Error
	if errors.As(err, &e) && len(e.Problems) > 0 {
		var parts []string
		for _, p := range e.Problems {
			parts = append(parts, p.String())
		}
		return strings.Join(parts, "; ")
	}
	return err.Error()
}

// MarshalJSON writes a non-finite metric (NaN, ±Inf: a NaN max, a table
// with no timestamps) as a string, which JSON numbers cannot hold.
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result
	var metric any = r.Metric
	if math.IsNaN(r.Metric) || math.IsInf(r.Metric, 0) {
		metric = strconv.FormatFloat(r.Metric, 'g', -1, 64)
	}
	// No HTML escaping: thresholds read "> 10", not "\u003e 10", in every
	// encoder's output (an outer encoder does not undo an inner escape).
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(struct {
		plain
		Metric any `json:"metric"`
	}{plain(r), metric}); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// UnmarshalJSON reads what MarshalJSON writes, a non-finite metric
// included ("NaN", "+Inf", "-Inf"), so stored results round-trip.
func (r *Result) UnmarshalJSON(b []byte) error {
	type plain Result
	var v struct {
		plain
		Metric json.RawMessage `json:"metric"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*r = Result(v.plain)
	r.Metric = 0
	if len(v.Metric) == 0 || string(v.Metric) == "null" {
		return nil
	}
	if v.Metric[0] == '"' {
		var s string
		if err := json.Unmarshal(v.Metric, &s); err != nil {
			return err
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("metric %q is not a number", s)
		}
		r.Metric = f
		return nil
	}
	return json.Unmarshal(v.Metric, &r.Metric)
}
