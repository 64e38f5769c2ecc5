package quality

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strconv"
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
			return Plan{Aggregates: []string{agg(c, "count(*)", "")}, rowsAt: 1}, nil
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
			return Plan{Aggregates: []string{nullCount(c, cond), agg(c, "count(*)", "")}, rowsAt: 2}, nil
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
			return Plan{Aggregates: []string{nullCount(c, cond), agg(c, "count(*)", "")}, Metric: percentOf, rowsAt: 2}, nil
		},
	})
	registerAlias("missing_count", "null_count")
	registerAlias("missing_percentage", "null_percentage")
	dupFields := []Field{
		{Name: "column", Type: "string", Doc: "the column that must be unique"},
		{Name: "columns", Type: "list", Doc: "several columns that must be unique together (instead of column)"},
		whereField,
	}
	dupNotes := []string{"Duplicates are rows beyond the first of each value: non-null rows minus distinct non-null values, so 0 means unique. Rows with a NULL in any key column are ignored, as SQL UNIQUE does.",
		"Exact, never estimated: one integer column whose values span less than 2^27 is counted with a bitmap (bitstring_agg) in the shared scan, between bounds from the engine's column statistics (Parquet metadata, zone maps; a min/max probe when there are none); other keys with count(DISTINCT), a hash table of every key, which on large tables costs more than the rest of the scan."}
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
		return Plan{Aggregates: []string{agg(c, "count("+key+")", ""), agg(c, "count(DISTINCT "+key+")", "")},
			distinctKey: cols[0], distinctAt: 1}, nil
	}
	cond := strings.Join(notNull, " AND ")
	return Plan{Aggregates: []string{agg(c, "count(*)", cond), agg(c, "count(DISTINCT "+key+")", cond)}}, nil
}

// bitmapRange is the widest key range (max - min) counted with a bitmap:
// 2^27 bits, 16 MiB per thread. Wider keys fall back to count(DISTINCT).
const bitmapRange = 1 << 27

// integerTypes are the key types bitstring_agg takes whose bounds fit an
// int64.
var integerTypes = map[string]bool{
	"TINYINT": true, "SMALLINT": true, "INTEGER": true, "BIGINT": true,
	"UTINYINT": true, "USMALLINT": true, "UINTEGER": true,
}

// bitmapKeys makes uniqueness on one integer column exact and cheap:
// count(DISTINCT) builds a hash table of every key (most of the cost of a
// suite on a large table), while bitstring_agg sets one bit per value
// between known bounds. The bounds come from the engine's statistics
// (read without a scan), else from one probe query for every such key; a
// key with no values, or too wide a range, keeps count(DISTINCT). If the
// statistics were ever wrong, the scan fails and Run retries the check
// with count(DISTINCT): the count is exact either way.
func bitmapKeys(ctx context.Context, q Querier, table string, cols map[string]Column, scan []compiled, res []Result) {
	var keys []string
	var who [][]int // scan entries per key
	index := map[string]int{}
	for k, s := range scan {
		col, ok := cols[strings.ToLower(s.plan.distinctKey)]
		if s.plan.distinctKey == "" || !ok || !integerTypes[strings.ToUpper(col.Type)] {
			continue
		}
		j, seen := index[col.Name]
		if !seen {
			j = len(keys)
			index[col.Name] = j
			keys = append(keys, col.Name)
			who = append(who, nil)
		}
		who[j] = append(who[j], k)
	}
	if len(keys) == 0 {
		return
	}
	bounds := statsBounds(ctx, q, table, keys)
	var probe []string
	for _, k := range keys {
		if _, ok := bounds[k]; !ok {
			probe = append(probe, k)
		}
	}
	if len(probe) > 0 {
		for k, b := range probeBounds(ctx, q, table, probe) {
			bounds[k] = b
		}
	}
	for j, k := range keys {
		b, ok := bounds[k]
		if !ok {
			continue
		}
		typ := strings.ToUpper(cols[strings.ToLower(k)].Type)
		for _, si := range who[j] {
			s := &scan[si]
			c := res[s.i].Check
			s.exact = s.plan.Aggregates
			aggs := append([]string(nil), s.plan.Aggregates...)
			aggs[s.plan.distinctAt] = "bit_count(" + agg(c, fmt.Sprintf("bitstring_agg(%s, CAST(%d AS %s), CAST(%d AS %s))",
				quoteIdent(k), b[0], typ, b[1], typ), "") + ")"
			s.plan.Aggregates = aggs
		}
	}
}

// usable says whether [lo, hi] bounds a bitmap.
func usable(lo, hi int64) bool { return hi >= lo && uint64(hi-lo) < bitmapRange }

// statsRE reads the bounds in DuckDB's stats() text, "[Min: 0, Max: 99]...".
var statsRE = regexp.MustCompile(`^\[Min: (-?\d+), Max: (-?\d+)\]`)

// statsBounds reads the keys' bounds from the engine's statistics (the
// storage's zone maps, or Parquet metadata), which it keeps without a
// scan: stats() is computed when the query is planned. They may be wider
// than the data (never narrower: the engine prunes row groups with them),
// which only makes the bitmap larger. Keys without usable statistics are
// left out.
func statsBounds(ctx context.Context, q Querier, table string, keys []string) map[string][2]int64 {
	out := map[string][2]int64{}
	var exprs []string
	for _, k := range keys {
		exprs = append(exprs, "CAST(stats("+quoteIdent(k)+") AS VARCHAR)")
	}
	rows, err := q.Query(ctx, "SELECT "+strings.Join(exprs, ", ")+" FROM "+quoteTable(table)+" LIMIT 1")
	if err != nil {
		return out
	}
	defer rows.Close()
	vals := make([]sql.NullString, len(keys))
	ptrs := make([]any, len(keys))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if !rows.Next() || rows.Scan(ptrs...) != nil {
		return out
	}
	for i, k := range keys {
		m := statsRE.FindStringSubmatch(vals[i].String)
		if m == nil {
			continue
		}
		lo, err1 := strconv.ParseInt(m[1], 10, 64)
		hi, err2 := strconv.ParseInt(m[2], 10, 64)
		if err1 == nil && err2 == nil && usable(lo, hi) {
			out[k] = [2]int64{lo, hi}
		}
	}
	return out
}

// probeBounds reads the keys' exact bounds with one query.
func probeBounds(ctx context.Context, q Querier, table string, keys []string) map[string][2]int64 {
	out := map[string][2]int64{}
	var exprs []string
	for _, k := range keys {
		exprs = append(exprs, "CAST(min("+quoteIdent(k)+") AS BIGINT)", "CAST(max("+quoteIdent(k)+") AS BIGINT)")
	}
	rows, err := q.Query(ctx, "SELECT "+strings.Join(exprs, ", ")+" FROM "+quoteTable(table))
	if err != nil {
		return out // the scan will report what is wrong
	}
	defer rows.Close()
	vals := make([]sql.NullInt64, len(exprs))
	ptrs := make([]any, len(exprs))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if !rows.Next() || rows.Scan(ptrs...) != nil {
		return out
	}
	for j, k := range keys {
		lo, hi := vals[2*j], vals[2*j+1]
		if lo.Valid && hi.Valid && usable(lo.Int64, hi.Int64) {
			out[k] = [2]int64{lo.Int64, hi.Int64}
		}
	}
	return out
}
