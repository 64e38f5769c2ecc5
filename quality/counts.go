package quality

import (
	"database/sql"
	"fmt"
	"strings"
)

// Completeness and uniqueness: row_count, null_count, null_percentage,
// duplicate_count, duplicate_percentage.

var columnField = Field{Name: "column", Type: "string", Required: true, Doc: "the column to check"}
var whereField = Field{Name: "where", Type: "sql", Doc: "a SQL filter: only rows where it is true are checked"}
var missingField = Field{Name: "missing_values", Type: "list", Doc: "values that count as missing besides NULL, e.g. ['', 'N/A']"}

func init() {
	Register(Type{
		Name: "row_count", Kind: KindAggregate, DefaultThreshold: "> 0",
		Summary: "Number of rows (in the where filter's scope).",
		Fields:  []Field{whereField},
		Notes:   []string{"An empty table has row_count 0."},
		Compile: func(c Check, _ string) (Plan, error) {
			if err := noPercent(c); err != nil {
				return Plan{}, err
			}
			return Plan{Aggregates: []string{agg(c, "count(*)", "")}}, nil
		},
	})
	Register(Type{
		Name: "null_count", Kind: KindAggregate, DefaultThreshold: "== 0",
		Summary: "Number of rows whose column is NULL (or one of missing_values).",
		Fields:  []Field{columnField, missingField, whereField},
		Compile: func(c Check, _ string) (Plan, error) {
			cond, err := missingCond(c)
			if err != nil {
				return Plan{}, err
			}
			if err := noPercent(c); err != nil {
				return Plan{}, err
			}
			return Plan{Aggregates: []string{nullCount(c, cond)}}, nil
		},
	})
	Register(Type{
		Name: "null_percentage", Kind: KindAggregate, DefaultThreshold: "== 0%",
		Summary: "Percentage (0-100) of rows whose column is NULL (or one of missing_values).",
		Fields:  []Field{columnField, missingField, whereField},
		Notes:   []string{"The null percentage of an empty table (or an empty where scope) is 0: nothing is missing."},
		Compile: func(c Check, _ string) (Plan, error) {
			cond, err := missingCond(c)
			if err != nil {
				return Plan{}, err
			}
			return Plan{Aggregates: []string{nullCount(c, cond), agg(c, "count(*)", "")}, Metric: percentOf}, nil
		},
	})
	registerAlias("missing_count", "null_count")
	registerAlias("missing_percentage", "null_percentage")
	dupFields := []Field{
		{Name: "column", Type: "string", Doc: "the column that must be unique"},
		{Name: "columns", Type: "list", Doc: "several columns that must be unique together (instead of column)"},
		whereField,
	}
	dupNotes := []string{"Duplicates are rows beyond the first of each value: non-null rows minus distinct non-null values, so 0 means unique. Rows with a NULL in any key column are ignored, as SQL UNIQUE does."}
	Register(Type{
		Name: "duplicate_count", Kind: KindAggregate, DefaultThreshold: "== 0",
		Summary: "Number of duplicate rows on one column or several (uniqueness).",
		Fields:  dupFields, Notes: dupNotes,
		Compile: func(c Check, _ string) (Plan, error) {
			p, err := dupPlan(c)
			if err != nil {
				return p, err
			}
			if err := noPercent(c); err != nil {
				return Plan{}, err
			}
			p.Metric = func(v []sql.NullFloat64, _ RunOptions) (float64, error) { return v[0].Float64 - v[1].Float64, nil }
			return p, nil
		},
	})
	Register(Type{
		Name: "duplicate_percentage", Kind: KindAggregate, DefaultThreshold: "== 0%",
		Summary: "Percentage of non-null rows that are duplicates on one column or several.",
		Fields:  dupFields, Notes: append(dupNotes, "An empty table has 0% duplicates."),
		Compile: func(c Check, _ string) (Plan, error) {
			p, err := dupPlan(c)
			if err != nil {
				return p, err
			}
			p.Metric = func(v []sql.NullFloat64, _ RunOptions) (float64, error) {
				if v[0].Float64 == 0 {
					return 0, nil
				}
				return 100 * (v[0].Float64 - v[1].Float64) / v[0].Float64, nil
			}
			return p, nil
		},
	})
	registerAlias("unique", "duplicate_count")
}

func missingCond(c Check) (string, error) {
	if err := needColumn(c); err != nil {
		return "", err
	}
	cond := quoteIdent(c.Column) + " IS NULL"
	if _, ok := c.Args["missing_values"]; ok {
		lits, err := literalList(c, "missing_values")
		if err != nil {
			return "", err
		}
		cond += " OR " + quoteIdent(c.Column) + " IN (" + lits + ")"
	}
	return cond, nil
}

// nullCount counts missing values; count(*) - count(col) reads only the
// validity mask, cheaper than a FILTER.
func nullCount(c Check, cond string) string {
	if _, ok := c.Args["missing_values"]; ok {
		return agg(c, "count(*)", cond)
	}
	return "(" + agg(c, "count(*)", "") + " - " + agg(c, "count("+quoteIdent(c.Column)+")", "") + ")"
}

// dupPlan counts [non-null rows, distinct non-null keys].
func dupPlan(c Check) (Plan, error) {
	cols := c.allColumns()
	if len(cols) == 0 {
		return Plan{}, c.invalid("column", fmt.Sprintf("check type %s needs `column` or `columns`", c.Type), "add `column:` or `columns: [a, b]`")
	}
	var notNull, q []string
	for _, col := range cols {
		notNull = append(notNull, quoteIdent(col)+" IS NOT NULL")
		q = append(q, quoteIdent(col))
	}
	key := q[0]
	if len(q) > 1 {
		key = "(" + strings.Join(q, ", ") + ")"
	}
	if len(q) == 1 {
		return Plan{Aggregates: []string{agg(c, "count("+key+")", ""), agg(c, "count(DISTINCT "+key+")", "")}}, nil
	}
	cond := strings.Join(notNull, " AND ")
	return Plan{Aggregates: []string{agg(c, "count(*)", cond), agg(c, "count(DISTINCT "+key+")", cond)}}, nil
}
