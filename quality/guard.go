package quality

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The guard is a light, engine-independent screen for SQL written by teams
// (custom_sql queries and where filters). It refuses more than one
// statement, comments, dollar- and E-quoted strings, statements other than
// SELECT, the functions that read files or run SQL from strings, FROM
// 'file' (and URLs), and table functions other than range,
// generate_series and unnest. It runs at apply (Validate) with no engine. It is not a parser:
// the caller must also vet the same SQL with duckdb.Session.CheckQuery,
// and the engine's sandbox still stops any file access outside a run.

var deniedWords = map[string]bool{
	"insert": true, "update": true, "delete": true, "drop": true, "create": true, "alter": true,
	"attach": true, "detach": true, "copy": true, "export": true, "import": true, "install": true,
	"load": true, "pragma": true, "set": true, "reset": true, "call": true, "checkpoint": true,
	"vacuum": true, "truncate": true, "merge": true, "grant": true, "revoke": true, "use": true,
	"getenv": true, "current_setting": true, "query": true, "query_table": true, "glob": true,
	"json_execute_serialized_sql": true, "read_text": true, "read_blob": true, "read_csv": true,
	"read_csv_auto": true, "read_json": true, "read_json_auto": true, "read_ndjson": true,
	"read_ndjson_auto": true, "read_parquet": true, "parquet_scan": true, "sniff_csv": true,
	"iceberg_scan": true, "delta_scan": true, "read_xlsx": true, "duckdb_settings": true,
	"read_json_objects": true, "read_json_objects_auto": true, "read_ndjson_objects": true,
	"parquet_metadata": true, "parquet_schema": true, "parquet_file_metadata": true, "parquet_kv_metadata": true,
	"duckdb_secrets": true, "duckdb_extensions": true, "which_secret": true, "postgres_scan": true,
	"postgres_query": true, "sqlite_scan": true, "mysql_scan": true, "st_read": true, "read_xlsx_auto": true,
	"setvariable": true, "getvariable": true, "summarize": true, "describe": true, "show": true,
}

// tableFunctions are the table functions a check may call in FROM: they
// make rows, they read nothing.
var tableFunctions = map[string]bool{"range": true, "generate_series": true, "unnest": true}

type token struct {
	word   string // lower-case word; a quoted identifier's text for quoted
	quoted bool   // a "..." identifier
	lit    bool   // a '...' string literal
	ch     rune   // punctuation
}

// tokens splits SQL into words, string literals and punctuation. It
// refuses what could make it read the text differently from DuckDB:
// comments, dollar-quoted and E'...' escape strings.
func tokens(s string) ([]token, error) {
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("the SQL is not valid UTF-8")
	}
	if strings.ContainsRune(s, 0) {
		return nil, fmt.Errorf("the SQL contains a NUL character")
	}
	var out []token
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case unicode.IsSpace(r):
		case r == '\'' || r == '"':
			if r == '\'' && len(out) > 0 && out[len(out)-1].word == "e" && !out[len(out)-1].quoted && (rs[i-1] == 'e' || rs[i-1] == 'E') {
				return nil, fmt.Errorf("escape strings (E'...') are not allowed; write a plain '...' string")
			}
			j := i + 1
			for ; j < len(rs); j++ {
				if rs[j] == r {
					if j+1 < len(rs) && rs[j+1] == r {
						j++
						continue
					}
					break
				}
			}
			if j >= len(rs) {
				return nil, fmt.Errorf("unterminated %c quote", r)
			}
			if r == '\'' {
				out = append(out, token{lit: true})
			} else {
				id := strings.ReplaceAll(string(rs[i+1:j]), `""`, `"`)
				out = append(out, token{word: strings.ToLower(id), quoted: true})
			}
			i = j
		case r == '-' && i+1 < len(rs) && rs[i+1] == '-', r == '/' && i+1 < len(rs) && rs[i+1] == '*':
			return nil, fmt.Errorf("comments are not allowed")
		case r == '$':
			return nil, fmt.Errorf("$ is not allowed outside quotes (no dollar-quoted strings or parameters; quote a column name that has one)")
		case r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			j := i
			for j < len(rs) && (rs[j] == '_' || unicode.IsLetter(rs[j]) || unicode.IsDigit(rs[j])) {
				j++
			}
			out = append(out, token{word: strings.ToLower(string(rs[i:j]))})
			i = j - 1
		default:
			out = append(out, token{ch: r})
		}
	}
	return out, nil
}

// Words that end a FROM clause (or a join's table reference).
var fromEnds = map[string]bool{
	"where": true, "group": true, "order": true, "having": true, "limit": true, "offset": true, "qualify": true,
	"window": true, "union": true, "except": true, "intersect": true, "select": true, "returning": true,
}

// screen refuses statement separators, denied words, FROM 'file' and
// table functions that read (anything but range, generate_series and
// unnest in a FROM clause).
func screen(toks []token) error {
	inFrom := []bool{false} // per parenthesis depth
	expect := false         // a table reference comes next
	for i, t := range toks {
		next := token{}
		if i+1 < len(toks) {
			next = toks[i+1]
		}
		top := len(inFrom) - 1
		switch {
		case t.ch == ';':
			return fmt.Errorf("only one statement is allowed (found ';')")
		case t.ch == '(':
			expect = false // a subquery or a parenthesised join
			inFrom = append(inFrom, false)
		case t.ch == ')':
			if top == 0 {
				return fmt.Errorf("unbalanced parentheses")
			}
			inFrom = inFrom[:top]
		case t.ch == ',':
			expect = inFrom[top]
		case t.ch == '.':
			// a qualified name: the reference continues
		case t.lit && expect:
			return fmt.Errorf("reading a file by name is not allowed")
		case t.quoted:
			if next.ch == '(' && (deniedWords[t.word] || expect && !tableFunctions[t.word]) {
				return fmt.Errorf("function %q is not allowed in a check", t.word)
			}
			if expect && next.ch != '.' {
				expect = false
			}
		case deniedWords[t.word]:
			return fmt.Errorf("%s is not allowed in a check", strings.ToUpper(t.word))
		case t.word == "from" || t.word == "join":
			inFrom[top], expect = true, true
		case t.word == "lateral" || t.word == "only":
		case fromEnds[t.word]:
			inFrom[top], expect = false, false
		case t.word == "on" || t.word == "using":
			expect = false
		case t.word != "" && expect:
			if next.ch == '(' && !tableFunctions[t.word] {
				return fmt.Errorf("table function %s is not allowed: a check reads the checked table and tables registered with it, not files or URLs", t.word)
			}
			if next.ch != '.' {
				expect = false
			}
		}
	}
	if len(inFrom) != 1 {
		return fmt.Errorf("unbalanced parentheses")
	}
	return nil
}

// guardSelect accepts one SELECT (or WITH ... SELECT) statement; a single
// trailing semicolon is dropped. It returns the query to run.
func guardSelect(q string) (string, error) {
	q = strings.TrimSpace(q)
	q = strings.TrimSpace(strings.TrimSuffix(q, ";"))
	toks, err := tokens(q)
	if err != nil {
		return "", err
	}
	if len(toks) == 0 {
		return "", fmt.Errorf("the query is empty")
	}
	if w := toks[0].word; w != "select" && w != "with" {
		return "", fmt.Errorf("a check query is one SELECT statement, not %s", strings.ToUpper(firstWordOf(q)))
	}
	return q, screen(toks)
}

// guardExpr accepts a boolean expression: no statement keywords at all.
func guardExpr(e string) error {
	toks, err := tokens(e)
	if err != nil {
		return err
	}
	if len(toks) == 0 {
		return fmt.Errorf("the filter is empty")
	}
	if err := screen(toks); err != nil {
		return err
	}
	for _, t := range toks {
		if t.quoted {
			continue
		}
		switch t.word {
		case "select", "from", "with", "union", "limit":
			return fmt.Errorf("a filter is an expression; %s is not allowed", strings.ToUpper(t.word))
		}
	}
	return nil
}

func firstWordOf(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}
