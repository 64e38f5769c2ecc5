package quality

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// drift: how far a column's distribution moved since the previous
// snapshot, as a population stability index (PSI). We chose PSI over the
// Kolmogorov-Smirnov statistic because one definition serves numeric and
// categorical columns, its usual cut-offs are well known (< 0.1 stable,
// 0.1-0.25 moderate, > 0.25 major shift) and it needs only counts per bin,
// which DuckDB computes in one GROUP BY per side.

// psiEpsilon stands in for an empty bin's share, so a bin that empties or
// appears adds a large but finite term (the usual practice).
const psiEpsilon = 1e-4

// Bins with a special meaning.
const (
	binNull  = -2
	binNaN   = -1
	binOther = -3
)

func init() {
	Register(Type{
		Name: "drift", Kind: KindCustom, DefaultThreshold: "< 0.2",
		Summary: "Distribution drift of a column between the previous snapshot and this one: the population stability index (PSI) over the previous snapshot's deciles (numbers, dates, timestamps) or its categories (anything else).",
		Fields: []Field{columnField,
			{Name: "bins", Type: "number", Doc: "numeric columns: how many quantile bins of the previous snapshot (default 10: deciles)"},
			{Name: "max_categories", Type: "number", Doc: "other columns: the previous snapshot's most frequent categories kept (default 20); the rest form one `other` bin"},
			whereField},
		Notes: []string{
			"PSI rather than the Kolmogorov-Smirnov statistic: one measure serves numeric and categorical columns, and its cut-offs are widely used.",
			"PSI = sum over bins of (cur - prev) * ln(cur / prev), with cur and prev each bin's share of rows; an empty bin counts as 0.0001. Below 0.1 is usually read as stable, above 0.25 as a major shift.",
			"Numeric bins are cut at the previous snapshot's quantiles (bins equal-frequency bins, duplicates merged); NULL and NaN are bins of their own, so a jump in missing values is drift too.",
			"Categorical values are compared as text; a value new since the previous snapshot falls into the `other` bin.",
			"The previous snapshot comes from RunOptions.Baseline (a table or view in the same session); without one, or without the column in it, the check passes with a note. If either side has no rows in scope it passes with a note (row_count checks catch that).",
			"The where filter applies to both snapshots. Failing drift samples list the bins with both shares; bin labels of masked columns are masked.",
		},
		Compile: func(c Check, _ string) (Plan, error) {
			if err := needColumn(c); err != nil {
				return Plan{}, err
			}
			if err := noPercent(c); err != nil {
				return Plan{}, err
			}
			bins, maxCat := 10.0, 20.0
			if b, ok, err := argNumber(c, "bins"); err != nil {
				return Plan{}, err
			} else if ok {
				if b < 2 || b > 100 || b != math.Trunc(b) {
					return Plan{}, c.invalid("args.bins", fmt.Sprintf("%v bins: want a whole number from 2 to 100", b), "e.g. `bins: 10`")
				}
				bins = b
			}
			if m, ok, err := argNumber(c, "max_categories"); err != nil {
				return Plan{}, err
			} else if ok {
				if m < 1 || m > 1000 || m != math.Trunc(m) {
					return Plan{}, c.invalid("args.max_categories", fmt.Sprintf("%v categories: want a whole number from 1 to 1000", m), "e.g. `max_categories: 20`")
				}
				maxCat = m
			}
			return Plan{Eval: func(ctx context.Context, e Env) (float64, []map[string]any, string, error) {
				return drift(ctx, e, c, int(bins), int(maxCat))
			}}, nil
		},
	})
}

var numericTypes = map[string]bool{
	"TINYINT": true, "SMALLINT": true, "INTEGER": true, "BIGINT": true, "HUGEINT": true,
	"UTINYINT": true, "USMALLINT": true, "UINTEGER": true, "UBIGINT": true, "UHUGEINT": true,
	"FLOAT": true, "DOUBLE": true, "REAL": true, "DECIMAL": true,
}

var temporalTypes = map[string]bool{
	"DATE": true, "TIMESTAMP": true, "TIMESTAMPTZ": true, "TIMESTAMP WITH TIME ZONE": true,
	"TIMESTAMP_S": true, "TIMESTAMP_MS": true, "TIMESTAMP_NS": true,
}

func baseType(t string) string {
	b, _, _ := strings.Cut(strings.ToUpper(strings.TrimSpace(t)), "(")
	return strings.TrimSpace(b)
}

// numericExpr is the column as a DOUBLE, or "" for a categorical column.
func numericExpr(col, typ string) string {
	switch b := baseType(typ); {
	case numericTypes[b]:
		return "CAST(" + quoteIdent(col) + " AS DOUBLE)"
	case temporalTypes[b]:
		return "epoch(CAST(" + quoteIdent(col) + " AS TIMESTAMP))"
	}
	return ""
}

func drift(ctx context.Context, e Env, c Check, bins, maxCat int) (float64, []map[string]any, string, error) {
	if e.Opt.Baseline == "" {
		return 0, nil, "no previous snapshot", nil
	}
	prevCols, err := describe(ctx, e.Q, e.Opt.Baseline)
	if err != nil {
		return 0, nil, "", fmt.Errorf("the previous snapshot %s cannot be read: %v", e.Opt.Baseline, err)
	}
	find := func(cols []Column) (Column, bool) {
		for _, x := range cols {
			if strings.EqualFold(x.Name, c.Column) {
				return x, true
			}
		}
		return Column{}, false
	}
	prev, ok := find(prevCols)
	if !ok {
		return 0, nil, fmt.Sprintf("column %s is new since the previous snapshot", c.Column), nil
	}
	cur, _ := find(e.Columns)
	where := ""
	if s := scope(c, ""); s != "" {
		where = " WHERE " + s
	}
	curTab, prevTab := quoteTable(e.Table), quoteTable(e.Opt.Baseline)

	var binExpr string
	var labels func(i int) string
	numCur, numPrev := numericExpr(cur.Name, cur.Type), numericExpr(prev.Name, prev.Type)
	if numCur != "" && numPrev != "" {
		qs := make([]string, bins-1)
		for i := range qs {
			qs[i] = strconv.FormatFloat(float64(i+1)/float64(bins), 'f', -1, 64)
		}
		valid := "v IS NOT NULL AND NOT isnan(v)"
		edges, err := floats(ctx, e.Q, fmt.Sprintf("SELECT DISTINCT unnest(quantile_cont(v, [%s])) AS e FROM (SELECT %s AS v FROM %s%s) WHERE %s ORDER BY e",
			strings.Join(qs, ", "), numPrev, prevTab, where, valid))
		if err != nil {
			return 0, nil, "", err
		}
		var b strings.Builder
		b.WriteString("CASE WHEN v IS NULL THEN -2 WHEN isnan(v) THEN -1")
		for i, x := range edges {
			fmt.Fprintf(&b, " WHEN v <= %s THEN %d", sqlFloat(x), i)
		}
		fmt.Fprintf(&b, " ELSE %d END", len(edges))
		binExpr = b.String()
		labels = func(i int) string {
			lo, hi := "-inf", "+inf"
			if i > 0 {
				lo = strconv.FormatFloat(edges[i-1], 'g', 6, 64)
			}
			if i < len(edges) {
				return fmt.Sprintf("(%s, %s]", lo, strconv.FormatFloat(edges[i], 'g', 6, 64))
			}
			return fmt.Sprintf("(%s, %s)", lo, hi)
		}
		// the same expression reads v on both sides
		numCur = "SELECT " + numCur + " AS v FROM " + curTab + where
		numPrev = "SELECT " + numPrev + " AS v FROM " + prevTab + where
	} else {
		cats, err := textRows(ctx, e.Q, fmt.Sprintf("SELECT v FROM (SELECT CAST(%s AS VARCHAR) AS v, count(*) AS n FROM %s%s GROUP BY v) WHERE v IS NOT NULL ORDER BY n DESC, v LIMIT %d",
			quoteIdent(prev.Name), prevTab, where, maxCat))
		if err != nil {
			return 0, nil, "", err
		}
		var b strings.Builder
		b.WriteString("CASE WHEN v IS NULL THEN -2")
		for i, x := range cats {
			fmt.Fprintf(&b, " WHEN v = %s THEN %d", quoteLit(x), i)
		}
		b.WriteString(" ELSE -3 END")
		binExpr = b.String()
		labels = func(i int) string { return cats[i] }
		numCur = "SELECT CAST(" + quoteIdent(cur.Name) + " AS VARCHAR) AS v FROM " + curTab + where
		numPrev = "SELECT CAST(" + quoteIdent(prev.Name) + " AS VARCHAR) AS v FROM " + prevTab + where
	}

	rows, err := e.Q.Query(ctx, fmt.Sprintf("SELECT 0 AS side, %[1]s AS bin, count(*) FROM (%[2]s) GROUP BY ALL UNION ALL SELECT 1, %[1]s, count(*) FROM (%[3]s) GROUP BY ALL",
		binExpr, numPrev, numCur))
	if err != nil {
		return 0, nil, "", err
	}
	defer rows.Close()
	counts := map[int][2]float64{}
	var total [2]float64
	for rows.Next() {
		var side, bin int
		var n float64
		if err := rows.Scan(&side, &bin, &n); err != nil {
			return 0, nil, "", err
		}
		x := counts[bin]
		x[side] += n
		counts[bin] = x
		total[side] += n
	}
	if err := rows.Err(); err != nil {
		return 0, nil, "", err
	}
	switch {
	case total[0] == 0 && total[1] == 0:
		return 0, nil, "no rows in scope in either snapshot: nothing to compare", nil
	case total[0] == 0:
		return 0, nil, "the previous snapshot has no rows in scope: nothing to compare", nil
	case total[1] == 0:
		return 0, nil, "no rows in scope: nothing to compare", nil
	}
	keys := make([]int, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	masked := false
	for _, m := range e.Opt.Masked {
		masked = masked || strings.EqualFold(m, c.Column)
	}
	psi := 0.0
	var samples []map[string]any
	for _, k := range keys {
		p, q := counts[k][0]/total[0], counts[k][1]/total[1]
		pe, qe := math.Max(p, psiEpsilon), math.Max(q, psiEpsilon)
		psi += (qe - pe) * math.Log(qe/pe)
		var label string
		switch {
		case k == binNull:
			label = "null"
		case k == binNaN:
			label = "NaN"
		case k == binOther:
			label = "other"
		case masked:
			label = fmt.Sprintf("*** (bin %d)", k+1)
		default:
			label = labels(k)
		}
		samples = append(samples, map[string]any{"bin": label, "previous_pct": round(100 * p), "current_pct": round(100 * q)})
	}
	if c.holds(psi) || e.Opt.SampleRows <= 0 {
		samples = nil
	}
	return psi, samples, "", nil
}

func round(x float64) float64 { return math.Round(x*100) / 100 }

func sqlFloat(x float64) string {
	return "CAST(" + quoteLit(strconv.FormatFloat(x, 'g', -1, 64)) + " AS DOUBLE)"
}

func floats(ctx context.Context, q Querier, query string) ([]float64, error) {
	rows, err := q.Query(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []float64
	for rows.Next() {
		var f sql.NullFloat64
		if err := rows.Scan(&f); err != nil {
			return nil, err
		}
		if f.Valid {
			out = append(out, f.Float64)
		}
	}
	return out, rows.Err()
}

func textRows(ctx context.Context, q Querier, query string) ([]string, error) {
	rows, err := q.Query(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
