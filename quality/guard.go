package quality

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The guard is a light, engine-independent screen for SQL written by teams
// (custom_sql queries and where filters). It refuses more than one
// statement, comments, statements other than SELECT, and the functions and
// FROM forms that read files or run SQL from strings. It is not a parser:
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
}

type token struct {
	word string // lower-case word, or "" for punctuation
	lit  bool   // a '...' string literal
	ch   rune   // punctuation
}

// tokens splits SQL into words, string literals and punctuation.
func tokens(s string) ([]token, error) {
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("the SQL is not valid UTF-8")
	}
	var out []token
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case unicode.IsSpace(r):
		case r == '\'' || r == '"':
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
				out = append(out, token{word: "\x00ident"})
			}
			i = j
		case r == '-' && i+1 < len(rs) && rs[i+1] == '-', r == '/' && i+1 < len(rs) && rs[i+1] == '*':
			return nil, fmt.Errorf("comments are not allowed")
		case r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			j := i
			for j < len(rs) && (rs[j] == '_' || rs[j] == '$' || unicode.IsLetter(rs[j]) || unicode.IsDigit(rs[j])) {
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

// screen refuses statement separators, denied words and FROM 'file'.
func screen(toks []token) error {
	depth := 0
	for i, t := range toks {
		switch {
		case t.ch == ';':
			return fmt.Errorf("only one statement is allowed (found ';')")
		case t.ch == '(':
			depth++
		case t.ch == ')':
			depth--
			if depth < 0 {
				return fmt.Errorf("unbalanced parentheses")
			}
		case deniedWords[t.word]:
			return fmt.Errorf("%s is not allowed in a check", strings.ToUpper(t.word))
		case (t.word == "from" || t.word == "join") && i+1 < len(toks) && toks[i+1].lit:
			return fmt.Errorf("reading a file by name is not allowed")
		}
	}
	if depth != 0 {
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
