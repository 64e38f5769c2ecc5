package duckdb

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/rhizome-mesh/rhizome"
)

// ColumnRef names a column of a table in the session.
type ColumnRef struct {
	Table  string
	Column string
}

// ColumnLineage maps each output column of query (one SELECT) to the
// columns of session tables its value is computed from, following models
// that RunModels created back to their inputs: through aliases,
// expressions, CTEs, subqueries, joins, set operations and aggregates; a
// star expands to the columns of the tables it covers. Columns used only
// to filter, join or group are not lineage of an output column. A column
// computed from nothing (a constant, count(*)) maps to an empty list.
//
// The output names come from DuckDB (DESCRIBE), so the query must bind
// against the session's tables.
func (s *Session) ColumnLineage(ctx context.Context, query string) (map[string][]ColumnRef, error) {
	stmt, f, err := s.parseSelect(ctx, query)
	if err != nil {
		return nil, err
	}
	if f != nil {
		line, col := lineCol(query, f.off)
		return nil, rhizome.Invalid("query not understood", rhizome.Problem{Pos: rhizome.Pos{Line: line, Col: col}, Message: f.msg, Hint: f.hint})
	}
	out, err := s.describe(ctx, query)
	if err != nil {
		msg, line, col := splitDuckError(err.Error(), query, 0)
		return nil, &rhizome.Error{Code: rhizome.EInvalid, Message: "query does not bind",
			Problems: []rhizome.Problem{{Pos: rhizome.Pos{Line: line, Col: col}, Message: msg}}, Err: err}
	}
	l := &lineager{ctx: ctx, s: s, schemas: map[string][]relCol{}}
	node, _ := stmt["node"].(map[string]any)
	cols := l.node(node, nil)
	if l.err != nil {
		return nil, l.err
	}
	res := make(map[string][]ColumnRef, len(out))
	add := func(name string, refs []ColumnRef) {
		res[name] = dedupRefs(append(res[name], refs...))
	}
	if len(cols) == len(out) {
		for i, c := range out {
			add(c.Name, cols[i].refs)
		}
		return res, nil
	}
	// A star over something without a known schema: match by name.
	for _, c := range out {
		add(c.Name, nil)
		for _, x := range cols {
			if strings.EqualFold(x.name, c.Name) {
				add(c.Name, x.refs)
			}
		}
	}
	return res, nil
}

type relCol struct {
	name string
	refs []ColumnRef
}

// binding is a relation in a FROM clause; cols is nil when unknown.
type binding struct {
	alias string
	cols  []relCol
}

type scope struct {
	ctes map[string][]relCol // lower name
	from []binding
	up   *scope
}

func (sc *scope) cte(name string) ([]relCol, bool) {
	for s := sc; s != nil; s = s.up {
		if c, ok := s.ctes[strings.ToLower(name)]; ok {
			return c, true
		}
	}
	return nil, false
}

type lineager struct {
	ctx     context.Context
	s       *Session
	schemas map[string][]relCol
	err     error
}

// node computes the output columns of a query node.
func (l *lineager) node(n map[string]any, up *scope) []relCol {
	if n == nil {
		return nil
	}
	sc := &scope{ctes: map[string][]relCol{}, up: up}
	for _, e := range cteEntries(n) {
		name := strings.ToLower(str(e["key"]))
		val, _ := e["value"].(map[string]any)
		q, _ := val["query"].(map[string]any)
		qn, _ := q["node"].(map[string]any)
		if str(qn["type"]) == "RECURSIVE_CTE_NODE" {
			left, _ := qn["left"].(map[string]any)
			sc.ctes[name] = l.node(left, sc)
		}
		cols := l.node(qn, sc)
		if aliases, _ := val["aliases"].([]any); len(aliases) > 0 {
			cols = slices.Clone(cols)
			for i := range cols {
				if i < len(aliases) {
					cols[i].name = str(aliases[i])
				}
			}
		}
		sc.ctes[name] = cols
	}
	switch str(n["type"]) {
	case "SELECT_NODE":
		return l.selectNode(n, sc)
	case "SET_OPERATION_NODE", "RECURSIVE_CTE_NODE":
		left, _ := n["left"].(map[string]any)
		right, _ := n["right"].(map[string]any)
		lc, rc := l.node(left, sc), l.node(right, sc)
		for i := range lc {
			if i < len(rc) {
				lc[i].refs = append(slices.Clone(lc[i].refs), rc[i].refs...)
			}
		}
		return lc
	case "CTE_NODE":
		child, _ := n["child"].(map[string]any)
		return l.node(child, sc)
	}
	return nil
}

func (l *lineager) selectNode(n map[string]any, sc *scope) []relCol {
	if ft, ok := n["from_table"].(map[string]any); ok {
		sc.from = l.from(ft, sc)
	}
	var out []relCol
	list, _ := n["select_list"].([]any)
	for _, x := range list {
		e, _ := x.(map[string]any)
		if str(e["class"]) == "STAR" && e["columns"] != true {
			out = append(out, l.star(e, sc)...)
			continue
		}
		name := str(e["alias"])
		if name == "" && str(e["class"]) == "COLUMN_REF" {
			parts, _ := e["column_names"].([]any)
			if len(parts) > 0 {
				name = str(parts[len(parts)-1])
			}
		}
		out = append(out, relCol{name: name, refs: l.expr(e, sc, out)})
	}
	return out
}

// star expands * (or t.*), honouring EXCLUDE and REPLACE.
func (l *lineager) star(e map[string]any, sc *scope) []relCol {
	rel := str(e["relation_name"])
	excluded := map[string]bool{}
	if ex, ok := e["exclude_list"].([]any); ok {
		for _, x := range ex {
			switch x := x.(type) {
			case string:
				excluded[strings.ToLower(x)] = true
			case map[string]any: // qualified name
				parts, _ := x["column_names"].([]any)
				if len(parts) > 0 {
					excluded[strings.ToLower(str(parts[len(parts)-1]))] = true
				}
			}
		}
	}
	replace := map[string]map[string]any{}
	if rl, ok := e["replace_list"].([]any); ok {
		for _, x := range rl {
			if kv, ok := x.(map[string]any); ok {
				v, _ := kv["value"].(map[string]any)
				replace[strings.ToLower(str(kv["key"]))] = v
			}
		}
	}
	var out []relCol
	for _, b := range sc.from {
		if rel != "" && !strings.EqualFold(rel, b.alias) {
			continue
		}
		for _, c := range b.cols {
			if excluded[strings.ToLower(c.name)] {
				continue
			}
			if r, ok := replace[strings.ToLower(c.name)]; ok {
				c = relCol{name: c.name, refs: l.expr(r, sc, nil)}
			}
			out = append(out, c)
		}
	}
	return out
}

// from resolves a FROM clause into its bindings.
func (l *lineager) from(t map[string]any, sc *scope) []binding {
	alias := str(t["alias"])
	var b binding
	switch str(t["type"]) {
	case "BASE_TABLE":
		name := str(t["table_name"])
		if alias == "" {
			alias = name
		}
		if cols, ok := sc.cte(name); ok && str(t["schema_name"]) == "" {
			b = binding{alias, cols}
		} else {
			b = binding{alias, l.table(name)}
		}
	case "SUBQUERY":
		q, _ := t["subquery"].(map[string]any)
		n, _ := q["node"].(map[string]any)
		// sc.from is still empty here: a subquery sees CTEs and outer queries.
		b = binding{alias, l.node(n, sc)}
	case "JOIN":
		left, _ := t["left"].(map[string]any)
		right, _ := t["right"].(map[string]any)
		lb, rb := l.from(left, sc), l.from(right, sc)
		if using, _ := t["using_columns"].([]any); len(using) > 0 {
			// USING keeps one copy of each key column, from the left.
			for _, u := range using {
				key := strings.ToLower(str(u))
				var extra []ColumnRef
				for i := range rb {
					rb[i].cols = slices.DeleteFunc(slices.Clone(rb[i].cols), func(c relCol) bool {
						if strings.EqualFold(c.name, key) {
							extra = append(extra, c.refs...)
							return true
						}
						return false
					})
				}
				for i := range lb {
					for j := range lb[i].cols {
						if strings.EqualFold(lb[i].cols[j].name, key) {
							lb[i].cols[j].refs = append(slices.Clone(lb[i].cols[j].refs), extra...)
						}
					}
				}
			}
		}
		return append(lb, rb...)
	case "EXPRESSION_LIST":
		vals, _ := t["values"].([]any)
		if len(vals) > 0 {
			row, _ := vals[0].([]any)
			for i := range row {
				b.cols = append(b.cols, relCol{name: fmt.Sprintf("col%d", i)})
			}
		}
		b.alias = alias
	default: // table functions, PIVOT: columns unknown
		b = binding{alias: alias}
	}
	if names, _ := t["column_name_alias"].([]any); len(names) > 0 {
		cols := slices.Clone(b.cols)
		for i := range cols {
			if i < len(names) {
				cols[i].name = str(names[i])
			}
		}
		b.cols = cols
	}
	return []binding{b}
}

// table reads a session table's columns; each is its own lineage.
func (l *lineager) table(name string) []relCol {
	key := strings.ToLower(name)
	if c, ok := l.schemas[key]; ok {
		return c
	}
	l.s.mu.Lock()
	model := l.s.models[key]
	l.s.mu.Unlock()
	rows, err := l.s.conn.QueryContext(l.ctx, `SELECT table_name, column_name FROM information_schema.columns
WHERE lower(table_name) = lower(?) AND table_schema = 'main' AND table_catalog = current_database() ORDER BY ordinal_position`, name)
	if err != nil {
		l.err = rhizome.Wrap(err, "reading schema of %s", name)
		return nil
	}
	defer rows.Close()
	var cols []relCol
	for rows.Next() {
		var t, c string
		if err := rows.Scan(&t, &c); err != nil {
			l.err = rhizome.Wrap(err, "reading schema of %s", name)
			return nil
		}
		refs := []ColumnRef{{Table: t, Column: c}}
		if lin, ok := model[c]; ok {
			refs = lin
		}
		cols = append(cols, relCol{name: c, refs: refs})
	}
	l.schemas[key] = cols
	return cols
}

// expr collects the lineage of an expression; prior are the select-list
// columns before it (DuckDB lets later items use earlier aliases).
func (l *lineager) expr(v any, sc *scope, prior []relCol) []ColumnRef {
	var refs []ColumnRef
	switch v := v.(type) {
	case []any:
		for _, x := range v {
			refs = append(refs, l.expr(x, sc, prior)...)
		}
	case map[string]any:
		switch str(v["class"]) {
		case "COLUMN_REF":
			parts, _ := v["column_names"].([]any)
			return l.column(parts, sc, prior)
		case "SUBQUERY":
			q, _ := v["subquery"].(map[string]any)
			n, _ := q["node"].(map[string]any)
			for _, c := range l.node(n, sc) {
				refs = append(refs, c.refs...)
			}
			return append(refs, l.expr(v["child"], sc, prior)...)
		}
		for k, x := range v {
			if k == "subquery" {
				continue
			}
			refs = append(refs, l.expr(x, sc, prior)...)
		}
	}
	return refs
}

func (l *lineager) column(parts []any, sc *scope, prior []relCol) []ColumnRef {
	names := make([]string, len(parts))
	for i, p := range parts {
		names[i] = str(p)
	}
	if len(names) == 0 {
		return nil
	}
	for s := sc; s != nil; s = s.up {
		if len(names) >= 2 { // t.col, or a struct field col.f
			for _, b := range s.from {
				if strings.EqualFold(b.alias, names[len(names)-2]) {
					if c, ok := findCol(b.cols, names[len(names)-1]); ok {
						return c.refs
					}
				}
			}
		}
		for _, b := range s.from {
			if c, ok := findCol(b.cols, names[0]); ok {
				return c.refs
			}
		}
		if s == sc {
			if c, ok := findCol(prior, names[0]); ok {
				return c.refs
			}
		}
	}
	return nil // a lambda parameter, or a name DuckDB resolves otherwise
}

func findCol(cols []relCol, name string) (relCol, bool) {
	for _, c := range cols {
		if strings.EqualFold(c.name, name) {
			return c, true
		}
	}
	return relCol{}, false
}

func dedupRefs(refs []ColumnRef) []ColumnRef {
	out := []ColumnRef{}
	for _, r := range refs {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b ColumnRef) int {
		if c := strings.Compare(a.Table, b.Table); c != 0 {
			return c
		}
		return strings.Compare(a.Column, b.Column)
	})
	return out
}
