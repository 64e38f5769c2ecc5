package quality

import (
	"database/sql"
	"errors"
	"fmt"
	"math"
)

// Statistics of one column: min, max and freshness.

// errNoValues marks a metric that has nothing to measure; the check passes
// with a note.
var errNoValues = errors.New("no non-null values in scope")

func init() {
	for _, fn := range []string{"min", "max"} {
		Register(Type{
			Name: fn, Kind: KindAggregate,
			Summary: fmt.Sprintf("The %s of a numeric column, compared with the threshold.", map[string]string{"min": "smallest value", "max": "largest value"}[fn]),
			Fields:  []Field{columnField, whereField},
			Notes: []string{
				"A NaN anywhere in scope makes the metric NaN, which fails every threshold but `!=`.",
				"With no non-null values in scope (empty table, all NULL) the check passes with a note: there is nothing out of range.",
			},
			Compile: func(c Check, _ string) (Plan, error) {
				if err := needColumn(c); err != nil {
					return Plan{}, err
				}
				if err := noPercent(c); err != nil {
					return Plan{}, err
				}
				// DuckDB orders NaN above every number, so a NaN is the max.
				x := quoteIdent(c.Column)
				return Plan{
					Aggregates: []string{agg(c, fn+"("+x+")", ""), agg(c, "max("+x+")", "")},
					Metric: func(v []sql.NullFloat64, _ RunOptions) (float64, error) {
						if math.IsNaN(v[1].Float64) {
							return math.NaN(), nil
						}
						if !v[0].Valid {
							return 0, errNoValues
						}
						return v[0].Float64, nil
					},
				}, nil
			},
		})
	}

	Register(Type{
		Name: "freshness", Kind: KindAggregate,
		Summary: "Age (now minus the newest value) of a timestamp or date column; without a column, the age of the last publish.",
		Fields: []Field{{Name: "column", Type: "string", Doc: "a TIMESTAMP, TIMESTAMPTZ or DATE column; omitted: the last publish time"}, whereField,
			{Name: "threshold", Type: "duration", Required: true, Doc: `e.g. "< 24 hours"`}},
		Notes: []string{
			"The metric is in seconds; now comes from RunOptions.Now (injected).",
			"A table with no non-null timestamps has infinite age and fails.",
			"TIMESTAMP (without time zone) values are read as UTC; a DATE counts from its midnight UTC.",
		},
		Compile: func(c Check, _ string) (Plan, error) {
			if !c.Threshold.IsDuration && c.Between == nil {
				return Plan{}, c.invalid("threshold", fmt.Sprintf("a freshness threshold is a duration, not %q", c.ThresholdText), `want e.g. "< 24 hours"`)
			}
			if c.Column == "" {
				if c.Where != "" {
					return Plan{}, c.invalid("where", "a freshness check without a column reads the publish time; it takes no filter", "add `column:` or remove `where:`")
				}
				return Plan{Derived: func(_ map[string]float64, opt RunOptions) (float64, string, error) {
					if opt.LastPublished.IsZero() {
						return math.Inf(1), "never published", nil
					}
					return opt.Now.Sub(opt.LastPublished).Seconds(), "", nil
				}}, nil
			}
			return Plan{
				Aggregates: []string{"epoch_us(" + agg(c, "max("+quoteIdent(c.Column)+")", "") + ")"},
				Metric: func(v []sql.NullFloat64, opt RunOptions) (float64, error) {
					if !v[0].Valid {
						return math.Inf(1), nil
					}
					newest := float64(opt.Now.UnixMicro()) - v[0].Float64
					return newest / 1e6, nil
				},
			}, nil
		},
	})
}
