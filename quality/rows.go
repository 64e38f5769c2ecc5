package quality

import (
	"fmt"
	"math"
	"regexp"
	"strings"
)

// Validity checks that judge each row: accepted_values, range, length,
// regex, format. Each counts failing rows in the one scan; NULLs are never
// invalid here (null checks count them). The metric is the number of
// failing rows, or their percentage of the rows in scope when the
// threshold is a percentage.

var rowNotes = []string{
	"NULL values are not invalid; count them with null_count.",
	"With a percentage threshold the metric is failing rows as a percentage of all rows in scope (0 for an empty table).",
}

// rowPlan counts failing rows (and rows in scope, for a percentage) and
// samples failing rows. pred must be NULL (not true) for NULL values, so
// NULLs never count as invalid.
func rowPlan(c Check, pred string) (Plan, error) {
	if c.Threshold.IsDuration {
		return Plan{}, c.invalid("threshold", fmt.Sprintf("%q is a duration; only a freshness check takes one", c.ThresholdText), `want e.g. "== 0" or "< 1%"`)
	}
	p := Plan{Aggregates: []string{agg(c, "count(*)", pred), agg(c, "count(*)", "")}, FailRows: pred, rowsAt: 2}
	if c.Threshold.Percent {
		p.Metric = percentOf
	}
	return p, nil
}

// outside is a predicate for x outside [lo, hi]; NaN counts as outside
// (DuckDB orders NaN above every number).
func outside(x string, lo, hi float64, hasLo, hasHi, nanCheck bool) string {
	switch {
	case hasLo && hasHi:
		return fmt.Sprintf("%s NOT BETWEEN %v AND %v", x, lo, hi)
	case hasHi:
		return fmt.Sprintf("%s > %v", x, hi)
	case nanCheck:
		return fmt.Sprintf("(%[1]s < %[2]v OR isnan(%[1]s))", x, lo)
	}
	return fmt.Sprintf("%s < %v", x, lo)
}

// inside is a screen for outside: true when every value in scope lies in
// [lo, hi] (NULL when there are none). A NaN is the largest value in
// DuckDB, so max <= hi catches it; with no upper bound isnan does.
func inside(c Check, x string, lo, hi float64, hasLo, hasHi, nanCheck bool) string {
	var parts []string
	if hasLo {
		parts = append(parts, fmt.Sprintf("%s >= %v", agg(c, "min("+x+")", ""), lo))
	}
	if hasHi {
		parts = append(parts, fmt.Sprintf("%s <= %v", agg(c, "max("+x+")", ""), hi))
	} else if nanCheck {
		parts = append(parts, "NOT isnan(CAST("+agg(c, "max("+x+")", "")+" AS DOUBLE))")
	}
	return strings.Join(parts, " AND ")
}

func strCol(c Check) string { return "CAST(" + quoteIdent(c.Column) + " AS VARCHAR)" }

func init() {
	Register(Type{
		Name: "accepted_values", Kind: KindRow, DefaultThreshold: "== 0",
		Summary: "Rows whose column holds a value outside the accepted list.",
		Fields:  []Field{columnField, {Name: "values", Type: "list", Required: true, Doc: "the accepted values"}, whereField},
		Notes:   rowNotes,
		Compile: func(c Check, _ string) (Plan, error) {
			if err := needColumn(c); err != nil {
				return Plan{}, err
			}
			lits, err := literalList(c, "values")
			if err != nil {
				return Plan{}, err
			}
			p, err := rowPlan(c, quoteIdent(c.Column)+" NOT IN ("+lits+")")
			if lo, hi, ok := intRun(c); ok {
				p.screenFor = func(typ string) string {
					if !integerTypes[strings.ToUpper(typ)] && strings.ToUpper(typ) != "HUGEINT" && strings.ToUpper(typ) != "UBIGINT" {
						return ""
					}
					return inside(c, quoteIdent(c.Column), lo, hi, true, true, false)
				}
			}
			return p, err
		},
	})
	registerAlias("valid_values", "accepted_values")

	Register(Type{
		Name: "range", Kind: KindRow, DefaultThreshold: "== 0",
		Summary: "Rows whose numeric column lies outside [min, max] (inclusive).",
		Fields: []Field{columnField,
			{Name: "min", Type: "number", Doc: "the smallest valid value"},
			{Name: "max", Type: "number", Doc: "the largest valid value"}, whereField},
		Notes: append([]string{"NaN is outside every range: a NaN in a DOUBLE column counts as a failing row."}, rowNotes...),
		Compile: func(c Check, _ string) (Plan, error) {
			if err := needColumn(c); err != nil {
				return Plan{}, err
			}
			lo, hi, hasLo, hasHi, err := minMax(c, "range", "`min: 0`")
			if err != nil {
				return Plan{}, err
			}
			p, err := rowPlan(c, outside(quoteIdent(c.Column), lo, hi, hasLo, hasHi, true))
			p.screen = inside(c, quoteIdent(c.Column), lo, hi, hasLo, hasHi, true)
			return p, err
		},
	})
	registerAlias("between", "range")

	Register(Type{
		Name: "length", Kind: KindRow, DefaultThreshold: "== 0",
		Summary: "Rows whose text length (in characters, not bytes) lies outside [min, max].",
		Fields: []Field{columnField,
			{Name: "min", Type: "number", Doc: "the shortest valid length"},
			{Name: "max", Type: "number", Doc: "the longest valid length"}, whereField},
		Notes: append([]string{"Length counts Unicode code points: 'é' is 1, an emoji is 1."}, rowNotes...),
		Compile: func(c Check, _ string) (Plan, error) {
			if err := needColumn(c); err != nil {
				return Plan{}, err
			}
			lo, hi, hasLo, hasHi, err := minMax(c, "length", "`max: 255`")
			if err != nil {
				return Plan{}, err
			}
			p, err := rowPlan(c, outside("length("+strCol(c)+")", lo, hi, hasLo, hasHi, false))
			p.screen = inside(c, "length("+strCol(c)+")", lo, hi, hasLo, hasHi, false)
			return p, err
		},
	})

	Register(Type{
		Name: "regex", Kind: KindRow, DefaultThreshold: "== 0",
		Summary: "Rows whose text does not match a regular expression (RE2 syntax).",
		Fields:  []Field{columnField, {Name: "pattern", Type: "string", Required: true, Doc: "the pattern; it matches anywhere unless anchored with ^ and $ (as datacontract-cli)"}, whereField},
		Notes:   rowNotes,
		Compile: func(c Check, _ string) (Plan, error) {
			if err := needColumn(c); err != nil {
				return Plan{}, err
			}
			pat, ok := argString(c, "pattern")
			if !ok || pat == "" {
				return Plan{}, c.invalid("args.pattern", "regex needs `pattern`", "add e.g. `pattern: '^[A-Z]{2}$'`")
			}
			if _, err := regexp.Compile(pat); err != nil {
				return Plan{}, c.invalid("args.pattern", fmt.Sprintf("%q is not a regular expression: %v", pat, err), "use RE2 syntax")
			}
			return rowPlan(c, "NOT regexp_matches("+strCol(c)+", "+quoteLit(pat)+")")
		},
	})
	registerAlias("pattern", "regex")

	Register(Type{
		Name: "format", Kind: KindRow, DefaultThreshold: "== 0",
		Summary: "Rows whose text is not in a named format: " + strings.Join(formatNames(), ", ") + ".",
		Fields:  []Field{columnField, {Name: "format", Type: "string", Required: true, Doc: "one of " + strings.Join(formatNames(), ", ")}, whereField},
		Notes:   append([]string{"date is YYYY-MM-DD and must be a real day (2024-02-30 fails); timestamp is anything DuckDB casts to TIMESTAMPTZ."}, rowNotes...),
		Compile: func(c Check, _ string) (Plan, error) {
			if err := needColumn(c); err != nil {
				return Plan{}, err
			}
			f, _ := argString(c, "format")
			bad, ok := formats[strings.ToLower(f)]
			if !ok {
				return Plan{}, c.invalid("args.format", fmt.Sprintf("%q is not a known format", f), "want one of "+strings.Join(formatNames(), ", "))
			}
			return rowPlan(c, quoteIdent(c.Column)+" IS NOT NULL AND "+fmt.Sprintf(bad, strCol(c)))
		},
	})
}

// intRun reports whether the accepted values are every integer from lo
// to hi (an enum coded 0..n): then an integer column whose min and max lie
// in [lo, hi] holds no other value, and the scan needs only min and max.
func intRun(c Check) (lo, hi float64, ok bool) {
	l, _ := argList(c, "values")
	seen := map[float64]bool{}
	for _, v := range l {
		switch v.(type) {
		case string, bool:
			return 0, 0, false
		}
		f, err := toFloat(v)
		if err != nil || f != math.Trunc(f) || math.Abs(f) > 1e15 {
			return 0, 0, false
		}
		if len(seen) == 0 || f < lo {
			lo = f
		}
		if len(seen) == 0 || f > hi {
			hi = f
		}
		seen[f] = true
	}
	return lo, hi, len(seen) > 0 && hi-lo+1 == float64(len(seen))
}

// formats map a name to a predicate (over %s, the column as text) true
// for values NOT in the format.
var formats = map[string]string{
	"email":     `NOT regexp_full_match(%s, '[^@\s]+@[^@\s]+\.[^@\s.]+')`,
	"uuid":      `NOT regexp_full_match(%s, '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}')`,
	"date":      `(NOT regexp_full_match(%[1]s, '\d{4}-\d{2}-\d{2}') OR try_strptime(%[1]s, '%%Y-%%m-%%d') IS NULL)`,
	"timestamp": `TRY_CAST(%s AS TIMESTAMPTZ) IS NULL`,
}

func formatNames() []string { return []string{"date", "email", "timestamp", "uuid"} }

// minMax reads a check's `min` and `max` arguments: at least one, and min
// not above max.
func minMax(c Check, typ, example string) (lo, hi float64, hasLo, hasHi bool, err error) {
	if lo, hasLo, err = argNumber(c, "min"); err != nil {
		return
	}
	if hi, hasHi, err = argNumber(c, "max"); err != nil {
		return
	}
	switch {
	case !hasLo && !hasHi:
		err = c.invalid("args", typ+" needs `min`, `max` or both", "add e.g. "+example)
	case hasLo && hasHi && lo > hi:
		err = c.invalid("args.min", fmt.Sprintf("min %g is more than max %g", lo, hi), "swap them")
	}
	return
}
