// Package quality owns Rhizome's check catalogue: check types registered by
// name (like database/sql drivers), checks read from the three places a team
// declares them (product manifest, infrastructure manifest, ODCS contract),
// their validation at apply (Validate, ReferencedProducts: no engine
// needed), their execution against one DuckDB table (Run), and what a run
// yields: a Report with a publish gate, JSON and JUnit XML, and the
// product's quality metrics compared with its SLA (Metrics, CompareSLA).
// docs/quality-checks.md is rendered from the registry (Markdown).
//
// Every aggregate and row check on a table compiles into one scan, with
// identical aggregates computed once. Two tricks keep that scan close to a
// bare read: uniqueness of an integer key is counted with a bitmap
// (bitstring_agg, bounded by the engine's column statistics) instead of a hash table, and row
// checks with bounds (range, length, integer enums) read only min and max,
// counting failing rows in a second query only when those say some fail.
// Custom SQL, drift and referential lookups run their own queries; schema
// checks read DESCRIBE.
//
// It does not decide what happens to a snapshot (the pipeline reads
// Report.Gate), store history or snapshots (the caller passes
// RunOptions.History, Baseline, PreviousSchema, LastPublished), or parse
// SQL: teams' SQL passes a small tokenizing guard here, written because
// apply must refuse file and URL reads without starting an engine; the
// caller must also apply duckdb.Session.CheckQuery to custom SQL and where
// filters before Run. Statistics (robust z-score, PSI) are a few lines
// each, so they are ours rather than a dependency.
package quality

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/internal/nearest"
	"github.com/rhizome-mesh/rhizome/spec"
)

// Querier runs trusted platform SQL; *duckdb.Session satisfies it.
type Querier interface {
	Query(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Kinds of check type.
const (
	KindAggregate = "aggregate" // a metric computed in the table's one scan
	KindRow       = "row"       // counts failing rows in the scan; samples them on failure
	KindCustom    = "custom"    // its own query, DESCRIBE, or no query at all
)

// Severities.
const (
	SeverityWarn  = "warn"
	SeverityError = "error"
)

// Check is one declared check, whatever its source.
type Check struct {
	Name    string   `json:"name"` // unique id in a suite
	Type    string   `json:"type"`
	Column  string   `json:"column,omitempty"`
	Columns []string `json:"columns,omitempty"`
	Where   string   `json:"where,omitempty"`
	// Threshold is ThresholdText parsed; JSON carries only the text.
	Threshold     spec.Threshold `json:"-"`
	ThresholdText string         `json:"threshold,omitempty"`
	// Between, when set, replaces Threshold: the metric must lie in
	// [Min, Max] (or outside it when Not), as ODCS mustBeBetween.
	Between  *Bounds        `json:"between,omitempty"`
	Severity string         `json:"severity,omitempty"` // warn|error, default error
	Args     map[string]any `json:"args,omitempty"`
	Source   string         `json:"source,omitempty"` // manifest, infrastructure, contract
	Path     string         `json:"path,omitempty"`   // where it was declared
	// Object is the contract schema object the check belongs to (contract
	// checks only); see ForObject.
	Object string `json:"object,omitempty"`
}

// Bounds is an inclusive range for ODCS mustBeBetween / mustNotBeBetween.
type Bounds struct {
	Min float64 `json:"min"`
	Max float64 `json:"max"`
	Not bool    `json:"not,omitempty"`
}

// HasThreshold reports whether a threshold or bounds were declared.
func (c Check) HasThreshold() bool { return c.Between != nil || c.Threshold.Op != "" }

// holds applies the check's threshold or bounds to a metric.
func (c Check) holds(x float64) bool {
	if c.Between != nil {
		in := x >= c.Between.Min && x <= c.Between.Max
		if math.IsNaN(x) {
			return false
		}
		return in != c.Between.Not
	}
	return c.Threshold.Holds(x)
}

func (c Check) thresholdString() string {
	if c.Between != nil {
		s := fmt.Sprintf("between %g and %g", c.Between.Min, c.Between.Max)
		if c.Between.Not {
			s = "not " + s
		}
		return s
	}
	if c.Threshold.IsDuration && strings.TrimSpace(c.ThresholdText) != "" {
		return strings.TrimSpace(c.ThresholdText) // "< 24 hours", not "< 24h0m0s"
	}
	return c.Threshold.String()
}

func (c Check) problem(field, msg, hint string) rhizome.Problem {
	p := c.Path
	if field != "" {
		if p != "" {
			p += "."
		}
		p += field
	}
	return rhizome.Problem{Path: p, Message: msg, Hint: hint}
}

// invalid is the EInvalid error a Compile returns.
func (c Check) invalid(field, msg, hint string) error {
	return rhizome.Invalid(fmt.Sprintf("check %s", c.Name), c.problem(field, msg, hint))
}

// Field documents one setting of a check type.
type Field struct {
	Name     string
	Type     string // string, strings, number, threshold, duration, sql, map
	Required bool
	Doc      string
}

// Type is a registered check type. Compile turns a check into a Plan for a
// table (an unquoted name); it reports bad settings as EInvalid.
type Type struct {
	Name    string
	Summary string
	Fields  []Field
	Kind    string // aggregate | row | custom
	// DefaultThreshold applies when a check declares none ("" = required).
	DefaultThreshold string
	// Notes are the boundary semantics, rendered into the docs.
	Notes   []string
	Compile func(c Check, table string) (Plan, error)
}

// Plan is how a compiled check is evaluated. Exactly one way is set.
type Plan struct {
	// Aggregates are SQL aggregate expressions, each cast to DOUBLE and
	// evaluated in the table's one scan; the where filter is already inside.
	Aggregates []string
	// Metric turns the aggregate values into the metric; nil takes the
	// first value with NULL as 0.
	Metric func(v []sql.NullFloat64, opt RunOptions) (float64, error)
	// FailRows is a predicate true for failing rows; with it, Aggregates
	// are [count of failing rows, count of rows in scope] and failing rows
	// are sampled.
	FailRows string
	// Query is a custom query run on its own: one row with one number, or
	// (QueryRows) failing rows whose count is the metric.
	Query     string
	QueryRows bool
	// Schema evaluates the table's DESCRIBE: the metric and sample rows.
	Schema func(cols []Column) (float64, []map[string]any)
	// Derived evaluates after every other check, from their metrics (by
	// check name); note explains a pass that was not evaluated.
	Derived func(metrics map[string]float64, opt RunOptions) (metric float64, note string, err error)
	// Eval runs its own queries (drift, schema_change): it gets the
	// table's columns and the run's options; note explains a pass that
	// measured nothing.
	Eval func(ctx context.Context, e Env) (metric float64, samples []map[string]any, note string, err error)
	// distinctKey is set by dupPlan for one key column: Run may replace
	// the aggregate at distinctAt (count DISTINCT) with an exact bitmap
	// count when the column is an integer with a small range.
	distinctKey string
	distinctAt  int
	// screen, for a row check, is an aggregate that is true (or NULL)
	// when no row in scope can fail, e.g. min(x) >= 0 for a range: the
	// scan computes it instead of Aggregates[0], and the failing rows are
	// counted in a second query only when it is false. screenFor builds
	// it from the column's type, in Run.
	screen    string
	screenFor func(columnType string) string
	// rowsAt is 1 + the index of the aggregate counting rows in scope
	// (0: none), reported as Result.Rows.
	rowsAt int
}

// Env is what Plan.Eval sees.
type Env struct {
	Q       Querier
	Table   string // unquoted, as passed to Run
	Columns []Column
	Opt     RunOptions
}

// Column is one column from DESCRIBE.
type Column struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Nullable bool   `json:"nullable,omitempty"`
}

var (
	mu    sync.RWMutex
	types = map[string]Type{}
	alias = map[string]string{}
)

// Register adds a check type; it panics on a duplicate or incomplete type,
// as sql.Register does.
func Register(t Type) {
	mu.Lock()
	defer mu.Unlock()
	if t.Name == "" || t.Compile == nil {
		panic("quality: Register of a type without name or Compile")
	}
	if _, dup := types[t.Name]; dup {
		panic("quality: Register called twice for type " + t.Name)
	}
	switch t.Kind {
	case KindAggregate, KindRow, KindCustom:
	default:
		panic("quality: type " + t.Name + " has unknown kind " + t.Kind)
	}
	types[t.Name] = t
}

// registerAlias lets an older or shorter name stand for a type.
func registerAlias(name, target string) {
	mu.Lock()
	defer mu.Unlock()
	alias[name] = target
}

// Types lists the registered types by name.
func Types() []Type {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]Type, 0, len(types))
	for _, t := range types {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lookup finds a type by name or alias.
func Lookup(name string) (Type, bool) {
	mu.RLock()
	defer mu.RUnlock()
	if a, ok := alias[name]; ok {
		name = a
	}
	t, ok := types[name]
	return t, ok
}

func typeNames() []string {
	var ns []string
	for _, t := range Types() {
		ns = append(ns, t.Name)
	}
	return ns
}

// compile resolves the type, applies defaults and compiles.
func compile(c *Check, table string) (Type, Plan, error) {
	t, ok := Lookup(c.Type)
	if !ok {
		return Type{}, Plan{}, c.invalid("type", fmt.Sprintf("unknown check type %q", c.Type), nearest.Hint(c.Type, typeNames()))
	}
	c.Type = t.Name
	if err := normalizeSeverity(c); err != nil {
		return t, Plan{}, err
	}
	if !c.HasThreshold() && t.DefaultThreshold != "" {
		th, err := spec.ParseThreshold(t.DefaultThreshold)
		if err != nil {
			panic(err)
		}
		c.Threshold, c.ThresholdText = th, t.DefaultThreshold
	}
	if !c.HasThreshold() {
		return t, Plan{}, c.invalid("threshold", fmt.Sprintf("check type %s needs a threshold", t.Name), `add e.g. threshold: "> 0"`)
	}
	if c.Where != "" {
		if err := guardExpr(c.Where); err != nil {
			return t, Plan{}, c.invalid("where", err.Error(), "write one SQL boolean expression over the table's columns")
		}
	}
	p, err := t.Compile(*c, table)
	return t, p, err
}

func normalizeSeverity(c *Check) error {
	switch strings.ToLower(strings.TrimSpace(c.Severity)) {
	case "", "error", "critical", "fail", "failure":
		c.Severity = SeverityError
	case "warn", "warning", "info":
		c.Severity = SeverityWarn
	default:
		return c.invalid("severity", fmt.Sprintf("%q is not a severity", c.Severity), `want "warn" or "error"`)
	}
	return nil
}

// Validate compiles every check without running it and returns every
// problem: unknown types, bad settings, duplicate names, unknown columns
// (when columns is non-nil). It is what apply should call.
func Validate(checks []Check, columns []string) []rhizome.Problem {
	var probs []rhizome.Problem
	seen := map[string]bool{}
	known := map[string]bool{}
	for _, c := range columns {
		known[strings.ToLower(c)] = true
	}
	for _, c := range checks {
		if seen[c.Name] {
			probs = append(probs, c.problem("name", fmt.Sprintf("check name %q is used twice", c.Name), "give each check a unique name"))
		}
		seen[c.Name] = true
		if _, _, err := compile(&c, "t"); err != nil {
			if ps := rhizome.ProblemsOf(err); len(ps) > 0 {
				probs = append(probs, ps...)
			} else {
				probs = append(probs, c.problem("", err.Error(), ""))
			}
			continue
		}
		if columns != nil && c.Type != "schema" {
			for i, col := range c.allColumns() {
				field := "column"
				if c.Column == "" || i > 0 {
					field = fmt.Sprintf("columns[%d]", i-boolInt(c.Column != ""))
				}
				if !known[strings.ToLower(col)] {
					probs = append(probs, c.problem(field, fmt.Sprintf("unknown column %q", col), nearest.Hint(col, columns)))
				}
			}
		}
	}
	return probs
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (c Check) allColumns() []string {
	var cs []string
	if c.Column != "" {
		cs = append(cs, c.Column)
	}
	return append(cs, c.Columns...)
}

// ForObject keeps the checks of one contract schema object (and checks
// with no object).
func ForObject(checks []Check, object string) []Check {
	var out []Check
	for _, c := range checks {
		if c.Object == "" || strings.EqualFold(c.Object, object) {
			out = append(out, c)
		}
	}
	return out
}

// RunOptions tune Run.
type RunOptions struct {
	Now        time.Time // freshness reference; zero means time.Now()
	SampleRows int       // failing rows sampled per row check; 0 = none
	Masked     []string  // columns shown as '***' in samples
	// History holds earlier metrics per check name, oldest first, for
	// anomaly checks.
	History map[string][]float64
	// LastPublished is the last publish time, for freshness checks that
	// name no column.
	LastPublished time.Time
	// Baseline names a table or view in the same Querier holding the
	// previous snapshot's data, for drift checks; "" means there is no
	// previous snapshot (drift passes with a note).
	Baseline string
	// PreviousSchema is the previous snapshot's columns, for
	// schema_change checks; nil means there is none (first publish).
	PreviousSchema []Column
}

// quoteIdent quotes a column name; quoteTable also splits schema.table.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
func quoteLit(s string) string   { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

func quoteTable(s string) string {
	parts := strings.Split(s, ".")
	for i, p := range parts {
		parts[i] = quoteIdent(p)
	}
	return strings.Join(parts, ".")
}

// scope ANDs the check's where filter with cond ("" = none) for a FILTER.
func scope(c Check, cond string) string {
	var parts []string
	if c.Where != "" {
		parts = append(parts, "("+c.Where+")")
	}
	if cond != "" {
		parts = append(parts, "("+cond+")")
	}
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(parts, " AND ")
}

// agg applies scope(c, cond) to an aggregate as a FILTER clause.
func agg(c Check, fn, cond string) string {
	if s := scope(c, cond); s != "" {
		return fn + " FILTER (WHERE " + s + ")"
	}
	return fn
}

func needColumn(c Check) error {
	if c.Column == "" {
		return c.invalid("column", fmt.Sprintf("check type %s needs `column`", c.Type), "add `column:` naming the column to check")
	}
	return nil
}

func noPercent(c Check) error {
	if c.Threshold.Percent {
		return c.invalid("threshold", fmt.Sprintf("%s is a count, not a percentage", c.Type),
			"use the _percentage type, or a plain number")
	}
	if c.Threshold.IsDuration {
		return c.invalid("threshold", fmt.Sprintf("%q is a duration; only a freshness check takes one", c.ThresholdText), `want a number, e.g. "== 0"`)
	}
	return nil
}

// percentOf is a Metric for [part, whole] aggregates: 100*part/whole, and 0
// for an empty scope (no rows means nothing is missing or duplicated).
func percentOf(v []sql.NullFloat64, _ RunOptions) (float64, error) {
	if !v[1].Valid || v[1].Float64 == 0 {
		return 0, nil
	}
	return 100 * v[0].Float64 / v[1].Float64, nil
}

func sortStrings(s []string) { sort.Strings(s) }
