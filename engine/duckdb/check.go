package duckdb

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/rhizome-mesh/rhizome"
)

// User SQL is vetted before it runs, on top of the sandbox: the sandbox
// stops files outside the run's directories, but within them it still lets
// SQL ATTACH, COPY, read any staged file, or read another input by path.
// The allowlist accepts exactly one SELECT (WITH and VALUES included) whose
// tables are all declared, with no table functions and no metadata views.
//
// DuckDB's json_serialize_sql does the parsing: it serialises only SELECT
// statements, so anything else fails there, and its AST is walked below.

// allowedTableFuncs are table functions that compute rows and touch nothing.
var allowedTableFuncs = map[string]bool{"range": true, "generate_series": true, "unnest": true}

// deniedFuncs are functions refused anywhere in a query: they read files,
// run SQL given as a string, or reveal the engine's configuration.
var deniedFuncs = map[string]bool{
	"getenv": true, "current_setting": true, "query": true, "query_table": true,
	"json_execute_serialized_sql": true, "read_text": true, "read_blob": true,
	"read_csv": true, "read_csv_auto": true, "read_json": true, "read_json_auto": true,
	"read_ndjson": true, "read_ndjson_auto": true, "read_parquet": true, "parquet_scan": true, "glob": true,
}

// finding is one reason to refuse a query; off is a byte offset into the
// SQL, or -1.
type finding struct {
	off  int
	msg  string
	hint string
}

// parsed is json_serialize_sql's answer.
type parsed struct {
	Error        bool              `json:"error"`
	ErrorType    string            `json:"error_type"`
	ErrorMessage string            `json:"error_message"`
	Position     json.RawMessage   `json:"position"`
	Statements   []json.RawMessage `json:"statements"`
}

// parseSelect parses query as exactly one SELECT and returns its AST.
func (s *Session) parseSelect(ctx context.Context, query string) (map[string]any, *finding, error) {
	if !utf8.ValidString(query) {
		return nil, &finding{off: -1, msg: "the SQL is not valid UTF-8", hint: "save the manifest as UTF-8"}, nil
	}
	var out string
	if err := s.conn.QueryRowContext(ctx, "SELECT json_serialize_sql(?::VARCHAR)::VARCHAR", query).Scan(&out); err != nil {
		return nil, nil, rhizome.Wrap(err, "parsing SQL")
	}
	var p parsed
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		return nil, nil, rhizome.Wrap(err, "parsing SQL")
	}
	if p.Error {
		if p.ErrorType == "parser" {
			off := -1
			if n, err := strconv.Atoi(strings.Trim(string(p.Position), `"`)); err == nil {
				off = n
			}
			return nil, &finding{off: off, msg: p.ErrorMessage, hint: "fix the SQL syntax"}, nil
		}
		kw := strings.ToUpper(firstWord(query))
		msg := fmt.Sprintf("%s statements are not allowed; a transform is one SELECT query", kw)
		switch kw {
		case "SELECT", "WITH", "VALUES", "FROM", "TABLE":
			msg = "the SQL holds a statement that is not a SELECT; a transform is exactly one SELECT query"
		}
		return nil, &finding{off: firstWordOffset(query),
			msg:  msg,
			hint: "write a single SELECT (WITH and VALUES are fine); the platform creates and writes the tables"}, nil
	}
	switch len(p.Statements) {
	case 0:
		return nil, &finding{off: -1, msg: "the SQL is empty", hint: "write a SELECT query"}, nil
	case 1:
	default:
		return nil, &finding{off: -1, msg: fmt.Sprintf("found %d statements; a transform is exactly one SELECT query", len(p.Statements)),
			hint: "split the work into several models, one SELECT each"}, nil
	}
	var stmt map[string]any
	if err := json.Unmarshal(p.Statements[0], &stmt); err != nil {
		return nil, nil, rhizome.Wrap(err, "parsing SQL")
	}
	return stmt, nil, nil
}

// CheckQuery refuses SQL that is not one SELECT over the allowed tables
// (matched case-insensitively). The error is EInvalid with one Problem per
// finding, positioned by line and column within the SQL.
func (s *Session) CheckQuery(ctx context.Context, query string, allowed []string) error {
	fs, err := s.check(ctx, query, allowed, nil)
	if err != nil {
		return err
	}
	if len(fs) == 0 {
		return nil
	}
	probs := make([]rhizome.Problem, len(fs))
	for i, f := range fs {
		line, col := lineCol(query, f.off)
		probs[i] = rhizome.Problem{Pos: rhizome.Pos{Line: line, Col: col}, Message: f.msg, Hint: f.hint}
	}
	return rhizome.Invalid("query refused", probs...)
}

// check returns the findings against query; later names tables that exist
// but may not be referenced yet (later models), for a better message.
func (s *Session) check(ctx context.Context, query string, allowed []string, later map[string]int) ([]finding, error) {
	stmt, f, err := s.parseSelect(ctx, query)
	if err != nil {
		return nil, err
	}
	if f != nil {
		return []finding{*f}, nil
	}
	c := &checker{allowed: map[string]bool{}, later: later}
	for _, a := range allowed {
		if identRE.MatchString(a) { // a name like x.csv could resolve to a file
			c.allowed[strings.ToLower(a)] = true
		}
	}
	c.walk(stmt["node"], nil)
	sort.SliceStable(c.found, func(i, j int) bool { return c.found[i].off < c.found[j].off })
	return c.found, nil
}

type checker struct {
	allowed map[string]bool
	later   map[string]int
	names   []string // sorted allowed names, for messages
	found   []finding
}

func (c *checker) add(node map[string]any, msg, hint string) {
	c.found = append(c.found, finding{off: location(node), msg: msg, hint: hint})
}

// walkCTEs walks the CTEs a node defines, if any, and returns the scope
// its body sees. A CTE sees the CTEs before it; the body sees them all. A
// CTE's own name inside it means the catalog table of that name, except
// in the recursive branch of a recursive CTE. Both the transform checker
// and the serving checker walk CTEs this way.
func walkCTEs(v map[string]any, scope []string, walk func(any, []string)) []string {
	ctes := cteEntries(v)
	if len(ctes) == 0 {
		return scope
	}
	inner := slices.Clone(scope)
	for _, e := range ctes {
		name := strings.ToLower(str(e["key"]))
		val, _ := e["value"].(map[string]any)
		q, _ := val["query"].(map[string]any)
		if n, _ := q["node"].(map[string]any); str(n["type"]) == "RECURSIVE_CTE_NODE" {
			for k, x := range n {
				if k == "right" {
					walk(x, append(slices.Clone(inner), name))
				} else if k != "cte_map" {
					walk(x, inner)
				}
			}
		} else {
			walk(q, inner)
		}
		inner = append(inner, name)
	}
	return inner
}

// walk visits every node of the AST; scope holds the CTE names visible here.
func (c *checker) walk(v any, scope []string) {
	switch v := v.(type) {
	case []any:
		for _, x := range v {
			c.walk(x, scope)
		}
	case map[string]any:
		scope = walkCTEs(v, scope, c.walk)
		class, _ := v["class"].(string)
		typ, _ := v["type"].(string)
		switch {
		case class == "FUNCTION":
			if name := strings.ToLower(str(v["function_name"])); deniedFuncs[name] {
				c.add(v, fmt.Sprintf("function %s() is not allowed in transforms", name),
					"declare files as inputs of the product and select from them by name")
			}
		case class == "" && typ == "BASE_TABLE":
			c.table(v, scope)
		case class == "" && typ == "TABLE_FUNCTION":
			fn, _ := v["function"].(map[string]any)
			if name := strings.ToLower(str(fn["function_name"])); !allowedTableFuncs[name] {
				c.add(v, fmt.Sprintf("table function %s() is not allowed in transforms", name),
					"select from the product's declared inputs by name; range(), generate_series() and unnest() are allowed")
				return // its arguments would only repeat the finding
			}
		case class == "" && typ == "SHOW_REF":
			c.add(v, "DESCRIBE, SHOW and SUMMARIZE are not allowed in transforms", "select the columns you need instead")
		}
		for k, x := range v {
			if k == "cte_map" {
				continue
			}
			c.walk(x, scope)
		}
	}
}

var pathLike = regexp.MustCompile(`[/\\:]|\.[A-Za-z0-9]{1,8}$`)

func (c *checker) table(v map[string]any, scope []string) {
	name := str(v["table_name"])
	catalog, schema := str(v["catalog_name"]), str(v["schema_name"])
	lower := strings.ToLower(name)
	qualified := catalog != "" || (schema != "" && !strings.EqualFold(schema, "main"))
	switch {
	case qualified:
		c.add(v, fmt.Sprintf("table %s is outside the product's inputs", strings.Trim(catalog+"."+schema+"."+name, ".")),
			"refer to inputs and earlier models by their bare names")
	case schema == "" && slices.Contains(scope, lower):
	case c.allowed[lower]:
	case pathLike.MatchString(name):
		c.add(v, fmt.Sprintf("reading %q directly is not allowed: transforms read only declared inputs", name),
			"declare the data as an input port of the product and select from it by name")
	default:
		if i, ok := c.later[lower]; ok {
			c.add(v, fmt.Sprintf("model %s is defined later (models[%d]); a model may reference only inputs and earlier models", name, i),
				"reorder the models so that each comes after the models it reads")
			return
		}
		c.add(v, fmt.Sprintf("table %s is not an input of this product", name), c.knownHint())
	}
}

func (c *checker) knownHint() string {
	if c.names == nil {
		for n := range c.allowed {
			c.names = append(c.names, n)
		}
		sort.Strings(c.names)
	}
	if len(c.names) == 0 {
		return "declare it as an input port of the product"
	}
	return "declare it as an input port, or use one of: " + strings.Join(c.names, ", ")
}

// cteEntries returns the entries of a node's WITH clause, in order.
func cteEntries(v map[string]any) []map[string]any {
	cm, ok := v["cte_map"].(map[string]any)
	if !ok {
		return nil
	}
	list, _ := cm["map"].([]any)
	var out []map[string]any
	for _, x := range list {
		if e, ok := x.(map[string]any); ok {
			out = append(out, e)
		}
	}
	return out
}

// location is a node's byte offset in the SQL, or -1 (DuckDB writes
// 2^64-1 when it has none).
func location(v map[string]any) int {
	f, ok := v["query_location"].(float64)
	if !ok || f < 0 || f > 1<<40 {
		return -1
	}
	return int(f)
}

func str(v any) string { s, _ := v.(string); return s }

// lineCol converts a byte offset in sql to 1-based line and column; 0, 0
// when off is unknown.
func lineCol(sql string, off int) (line, col int) {
	if off < 0 || off > len(sql) {
		return 0, 0
	}
	line = 1 + strings.Count(sql[:off], "\n")
	start := strings.LastIndex(sql[:off], "\n") + 1
	return line, 1 + len([]rune(sql[start:off]))
}

// firstWord skips whitespace and comments and returns the first keyword.
func firstWord(sql string) string {
	off := firstWordOffset(sql)
	if off < 0 {
		return ""
	}
	rest := sql[off:]
	end := strings.IndexFunc(rest, func(r rune) bool {
		return !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	})
	if end < 0 {
		end = len(rest)
	}
	if end == 0 {
		return "non-SELECT"
	}
	return rest[:end]
}

func firstWordOffset(sql string) int {
	i := 0
	for i < len(sql) {
		switch {
		case sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n' || sql[i] == '\r' || sql[i] == ';' || sql[i] == '(':
			i++
		case strings.HasPrefix(sql[i:], "--"):
			j := strings.IndexByte(sql[i:], '\n')
			if j < 0 {
				return -1
			}
			i += j + 1
		case strings.HasPrefix(sql[i:], "/*"):
			j := strings.Index(sql[i:], "*/")
			if j < 0 {
				return -1
			}
			i += j + 2
		default:
			return i
		}
	}
	return -1
}
