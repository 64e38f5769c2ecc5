package quality

import (
	"fmt"
	"regexp"
	"strings"
)

// Checks that are not part of the scan: custom_sql (its own query) and
// schema (DESCRIBE).

var placeholderRE = regexp.MustCompile(`\{(object|model|table)\}`)

func init() {
	Register(Type{
		Name: "custom_sql", Kind: KindCustom, DefaultThreshold: "== 0",
		Summary: "A team's own SELECT: it returns one number (the metric), or failing rows whose count is the metric.",
		Fields: []Field{
			{Name: "query", Type: "sql", Required: true, Doc: "one SELECT; {object} (or {table}, {model}) stands for the checked table, {column} for the check's column"},
			{Name: "returns", Type: "string", Doc: "`metric` (default): one row, one number; `rows`: failing rows, sampled"},
		},
		Notes: []string{
			"Runs as its own query, not in the shared scan.",
			"Only one SELECT is accepted; the caller must also vet it with the engine (duckdb.Session.CheckQuery) before Run.",
			"A metric query that returns no row or NULL fails with an error.",
		},
		Compile: func(c Check, table string) (Plan, error) {
			q, ok := argString(c, "query")
			if !ok || strings.TrimSpace(q) == "" {
				return Plan{}, c.invalid("args.query", "custom_sql needs `query`", "add e.g. `query: SELECT count(*) FROM {object} WHERE amount < 0`")
			}
			if c.Where != "" {
				return Plan{}, c.invalid("where", "custom_sql takes no `where`", "put the filter in the query")
			}
			q = placeholderRE.ReplaceAllString(q, quoteTable(table))
			if c.Column != "" {
				q = strings.ReplaceAll(q, "{column}", quoteIdent(c.Column))
				q = strings.ReplaceAll(q, "{property}", quoteIdent(c.Column))
			}
			q, err := guardSelect(q)
			if err != nil {
				return Plan{}, c.invalid("args.query", err.Error(), "write one SELECT over {object}")
			}
			mode, _ := argString(c, "returns")
			switch mode {
			case "", "metric":
				return Plan{Query: q}, nil
			case "rows":
				return Plan{Query: q, QueryRows: true}, nil
			}
			return Plan{}, c.invalid("args.returns", fmt.Sprintf("%q is not a result kind", mode), "want `metric` or `rows`")
		},
	})
	registerAlias("sql", "custom_sql")

	Register(Type{
		Name: "schema", Kind: KindCustom, DefaultThreshold: "== 0",
		Summary: "The table's columns and types against a declared list, from DESCRIBE (no scan). The metric is the number of mismatches.",
		Fields: []Field{
			{Name: "columns", Type: "list", Required: true, Doc: "declared columns: names, or maps {name, type, required}"},
			{Name: "strict", Type: "bool", Doc: "columns in the table but not declared are mismatches too"},
		},
		Notes: []string{
			"A declared column must exist unless `required: false`; a declared type must match (case-insensitive, common aliases such as STRING=VARCHAR, INT=INTEGER; DECIMAL without precision matches any DECIMAL).",
			"Whether values are NULL is data, not schema: a contract's `required: true` also makes a null_count check.",
			"Samples list each mismatch: column, problem, want, got.",
		},
		Compile: func(c Check, _ string) (Plan, error) {
			want, err := declaredColumns(c)
			if err != nil {
				return Plan{}, err
			}
			strict := c.Args["strict"] == true
			return Plan{Schema: func(cols []Column) (float64, []map[string]any) {
				return compareSchema(want, cols, strict)
			}}, nil
		},
	})
}

type declared struct {
	name, typ string
	required  bool
}

func declaredColumns(c Check) ([]declared, error) {
	l, ok := argList(c, "columns")
	if !ok || len(l) == 0 {
		if len(c.Columns) == 0 {
			return nil, c.invalid("args.columns", "schema needs `columns`", "list the columns, e.g. `columns: [{name: id, type: BIGINT}]`")
		}
		for _, s := range c.Columns {
			l = append(l, s)
		}
	}
	var out []declared
	for i, v := range l {
		d := declared{required: true}
		switch x := v.(type) {
		case string:
			d.name = x
		case map[string]any:
			d.name, _ = x["name"].(string)
			d.typ, _ = x["type"].(string)
			if r, ok := x["required"].(bool); ok {
				d.required = r
			}
		}
		if d.name == "" {
			return nil, c.invalid(fmt.Sprintf("args.columns[%d]", i), "a declared column needs a name", "write `name: ...`")
		}
		out = append(out, d)
	}
	return out, nil
}

var typeAliases = map[string]string{
	"STRING": "VARCHAR", "TEXT": "VARCHAR", "CHAR": "VARCHAR", "BPCHAR": "VARCHAR",
	"INT": "INTEGER", "INT4": "INTEGER", "SIGNED": "INTEGER",
	"INT8": "BIGINT", "LONG": "BIGINT", "INT2": "SMALLINT", "SHORT": "SMALLINT", "INT1": "TINYINT",
	"FLOAT8": "DOUBLE", "DOUBLE PRECISION": "DOUBLE", "FLOAT4": "FLOAT", "REAL": "FLOAT",
	"BOOL": "BOOLEAN", "LOGICAL": "BOOLEAN", "NUMERIC": "DECIMAL",
	"TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ", "DATETIME": "TIMESTAMP", "TIMESTAMP WITHOUT TIME ZONE": "TIMESTAMP",
	"BYTEA": "BLOB", "BINARY": "BLOB",
}

func normType(t string) string {
	t = strings.ToUpper(strings.Join(strings.Fields(t), " "))
	base, rest, _ := strings.Cut(t, "(")
	base = strings.TrimSpace(base)
	if a, ok := typeAliases[base]; ok {
		base = a
	}
	if base == "VARCHAR" {
		return base // VARCHAR(n) is VARCHAR in DuckDB
	}
	if rest != "" {
		return base + "(" + strings.ReplaceAll(rest, " ", "")
	}
	return base
}

func typesMatch(want, got string) bool {
	w, g := normType(want), normType(got)
	if w == g {
		return true
	}
	return w == "DECIMAL" && strings.HasPrefix(g, "DECIMAL")
}

func compareSchema(want []declared, cols []Column, strict bool) (float64, []map[string]any) {
	byName := map[string]Column{}
	for _, c := range cols {
		byName[strings.ToLower(c.Name)] = c
	}
	var bad []map[string]any
	seen := map[string]bool{}
	for _, d := range want {
		seen[strings.ToLower(d.name)] = true
		got, ok := byName[strings.ToLower(d.name)]
		switch {
		case !ok && d.required:
			bad = append(bad, map[string]any{"column": d.name, "problem": "missing", "want": d.typ, "got": ""})
		case ok && d.typ != "" && !typesMatch(d.typ, got.Type):
			bad = append(bad, map[string]any{"column": d.name, "problem": "type", "want": d.typ, "got": got.Type})
		}
	}
	if strict {
		for _, c := range cols {
			if !seen[strings.ToLower(c.Name)] {
				bad = append(bad, map[string]any{"column": c.Name, "problem": "undeclared", "want": "", "got": c.Type})
			}
		}
	}
	return float64(len(bad)), bad
}
