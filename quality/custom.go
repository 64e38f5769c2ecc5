package quality

import (
	"context"
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
			{Name: "where", Type: "sql", Doc: "a SQL filter: {object} stands for only the rows where it is true"},
		},
		Notes: []string{
			"Runs as its own query, not in the shared scan.",
			"Only one SELECT is accepted: no second statement, comments, dollar- or E-quoted strings, file or URL reads (read_csv, read_parquet, glob, FROM 'file', table functions other than range, generate_series and unnest), COPY, ATTACH, INSTALL, LOAD, PRAGMA or SET. The caller must also vet it with the engine (duckdb.Session.CheckQuery) before Run.",
			"A metric query that returns no row or NULL fails with an error.",
		},
		Compile: func(c Check, table string) (Plan, error) {
			q, ok := argString(c, "query")
			if !ok || strings.TrimSpace(q) == "" {
				return Plan{}, c.invalid("args.query", "custom_sql needs `query`", "add e.g. `query: SELECT count(*) FROM {object} WHERE amount < 0`")
			}
			object := quoteTable(table)
			if c.Where != "" {
				// the filter narrows what {object} stands for
				object = "(SELECT * FROM " + quoteTable(table) + " WHERE " + c.Where + ")"
			}
			q = placeholderRE.ReplaceAllString(q, object)
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
			"Takes no `where` (it reads no rows).",
			"A declared column must exist unless `required: false`; a declared type must match (case-insensitive, common aliases such as STRING=VARCHAR, INT=INTEGER; DECIMAL without precision matches any DECIMAL).",
			"Whether values are NULL is data, not schema: a contract's `required: true` also makes a null_count check.",
			"Samples list each mismatch: column, problem, want, got.",
		},
		Compile: func(c Check, _ string) (Plan, error) {
			if c.Where != "" {
				return Plan{}, c.invalid("where", "a schema check reads the table's columns, not its rows; it takes no filter", "remove `where:`")
			}
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

func init() {
	Register(Type{
		Name: "schema_change", Kind: KindCustom, DefaultThreshold: "== 0",
		Summary: "Columns added, removed or retyped since the previous snapshot (from DESCRIBE, no scan). The metric is the number of changes.",
		Fields: []Field{
			{Name: "allow_added", Type: "bool", Doc: "new columns are not counted (additive changes are allowed)"},
			{Name: "allow_removed", Type: "bool", Doc: "removed columns are not counted"},
		},
		Notes: []string{
			"The previous schema comes from RunOptions.PreviousSchema; with none (a first publish) the check passes with a note.",
			"Names compare case-insensitively; types after normalising aliases as the schema check does (INT = INTEGER, STRING = VARCHAR).",
			"Samples list every change, allowed or not: column, change (added, removed, type), previous, current.",
			"Takes no `where` (it reads no rows).",
		},
		Compile: func(c Check, _ string) (Plan, error) {
			if c.Where != "" {
				return Plan{}, c.invalid("where", "schema_change compares columns, not rows; it takes no filter", "remove `where:`")
			}
			if err := noPercent(c); err != nil {
				return Plan{}, err
			}
			allowAdded, err := argBool(c, "allow_added")
			if err != nil {
				return Plan{}, err
			}
			allowRemoved, err := argBool(c, "allow_removed")
			if err != nil {
				return Plan{}, err
			}
			return Plan{Eval: func(_ context.Context, e Env) (float64, []map[string]any, string, error) {
				if e.Opt.PreviousSchema == nil {
					return 0, nil, "no previous schema (first publish)", nil
				}
				n, changes := SchemaChanges(e.Opt.PreviousSchema, e.Columns, allowAdded, allowRemoved)
				return float64(n), changes, "", nil
			}}, nil
		},
	})
}

// SchemaChanges lists the differences between two column lists (added,
// removed, type) and counts those not allowed.
func SchemaChanges(prev, cur []Column, allowAdded, allowRemoved bool) (int, []map[string]any) {
	byName := map[string]Column{}
	for _, c := range prev {
		byName[strings.ToLower(c.Name)] = c
	}
	seen := map[string]bool{}
	var out []map[string]any
	n := 0
	for _, c := range cur {
		k := strings.ToLower(c.Name)
		seen[k] = true
		p, ok := byName[k]
		switch {
		case !ok:
			out = append(out, map[string]any{"column": c.Name, "change": "added", "previous": "", "current": c.Type})
			if !allowAdded {
				n++
			}
		case !typesMatch(p.Type, c.Type) || !typesMatch(c.Type, p.Type):
			out = append(out, map[string]any{"column": c.Name, "change": "type", "previous": p.Type, "current": c.Type})
			n++
		}
	}
	for _, p := range prev {
		if !seen[strings.ToLower(p.Name)] {
			out = append(out, map[string]any{"column": p.Name, "change": "removed", "previous": p.Type, "current": ""})
			if !allowRemoved {
				n++
			}
		}
	}
	return n, out
}

func argBool(c Check, key string) (bool, error) {
	v, ok := c.Args[key]
	if !ok || v == nil {
		return false, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, c.invalid("args."+key, fmt.Sprintf("%v is not true or false", v), "write `"+key+": true`")
	}
	return b, nil
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
