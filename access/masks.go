package access

import (
	"fmt"
	"strings"
	"unicode"
)

// MaskExpr returns the DuckDB expression that yields column col masked by
// kind. typ is the column's DuckDB type when known ("" otherwise); custom
// is the expression of a custom mask, with {column} standing for the
// column. Every mask keeps NULL as NULL.
func MaskExpr(kind, col, typ, custom string) (string, error) {
	c := QuoteIdent(col)
	typ = strings.ToUpper(strings.TrimSpace(typ))
	str := "CAST(" + c + " AS VARCHAR)"
	switch kind {
	case MaskNone:
		return c, nil
	case MaskNull:
		if typ != "" {
			return "CAST(NULL AS " + typ + ")", nil
		}
		return "NULL", nil
	case MaskHash:
		return "sha256(" + str + ")", nil
	case MaskRedact:
		return "CASE WHEN " + c + " IS NULL THEN NULL ELSE '***' END", nil
	case MaskLast4:
		return "'****' || right(" + str + ", 4)", nil
	case MaskEmailDomain:
		return "regexp_replace(" + str + ", '^[^@]*', '***')", nil
	case MaskYear:
		return yearExpr(c, typ), nil
	case MaskTruncate:
		switch {
		case isTemporal(typ):
			return yearExpr(c, typ), nil
		case isInteger(typ):
			return "CAST(" + c + " - " + c + " % 10 AS " + typ + ")", nil
		}
		return "left(" + str + ", 1) || '***'", nil
	case MaskTokenize:
		return "'tok_' || left(sha256(" + str + "), 16)", nil
	case MaskCustom:
		if err := CheckExpr(custom); err != nil {
			return "", err
		}
		return "(" + strings.ReplaceAll(custom, "{column}", c) + ")", nil
	}
	return "", fmt.Errorf("unknown mask %q: want one of %s", kind, strings.Join(MaskKinds(), ", "))
}

// yearExpr truncates a date or timestamp to the first day of its year,
// keeping its type when known (date_trunc returns a TIMESTAMP for some
// inputs).
func yearExpr(c, typ string) string {
	e := "date_trunc('year', " + c + ")"
	if typ != "" {
		e = "CAST(" + e + " AS " + typ + ")"
	}
	return e
}

func isTemporal(typ string) bool {
	return strings.HasPrefix(typ, "DATE") || strings.HasPrefix(typ, "TIMESTAMP")
}

func isInteger(typ string) bool {
	switch typ {
	case "TINYINT", "SMALLINT", "INTEGER", "INT", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT":
		return true
	}
	return false
}

// forbiddenWords may not appear (outside string literals) in a custom mask
// or a row filter: statements, subqueries and functions that reach outside
// the row (files, settings, other tables). The serve package re-checks the
// final query with the engine's allowlist; this is the first, light guard
// run when a rule or a grant is written.
var forbiddenWords = map[string]bool{
	"select": true, "from": true, "with": true, "union": true, "insert": true, "update": true,
	"delete": true, "drop": true, "create": true, "alter": true, "copy": true, "attach": true,
	"detach": true, "install": true, "load": true, "pragma": true, "set": true, "call": true,
	"export": true, "import": true, "exists": true, "query": true, "query_table": true,
	"getenv": true, "current_setting": true, "glob": true, "read_text": true, "read_blob": true,
	"read_csv": true, "read_csv_auto": true, "read_json": true, "read_json_auto": true,
	"read_parquet": true, "parquet_scan": true, "read_ndjson": true, "sniff_csv": true,
	"iceberg_scan": true, "delta_scan": true, "parquet_metadata": true, "parquet_schema": true,
	"duckdb_settings": true, "duckdb_secrets": true, "sql_auto_complete": true,
}

// maxExprLen bounds a custom mask or a row filter.
const maxExprLen = 1000

// CheckExpr is the light guard for custom masks and row filters: one
// expression over the row's columns, no statements, subqueries, comments,
// semicolons or file and setting functions, balanced quotes and
// parentheses.
func CheckExpr(expr string) error {
	if strings.TrimSpace(expr) == "" {
		return fmt.Errorf("empty expression")
	}
	if len(expr) > maxExprLen {
		return fmt.Errorf("expression longer than %d characters", maxExprLen)
	}
	depth := 0
	for i := 0; i < len(expr); {
		ch := expr[i]
		switch {
		case ch == '\'':
			j := i + 1
			for ; j < len(expr); j++ {
				if expr[j] == '\'' {
					if j+1 < len(expr) && expr[j+1] == '\'' {
						j++
						continue
					}
					break
				}
			}
			if j >= len(expr) {
				return fmt.Errorf("unterminated string literal")
			}
			i = j + 1
		case ch == '"':
			j := strings.IndexByte(expr[i+1:], '"')
			if j < 0 {
				return fmt.Errorf("unterminated quoted identifier")
			}
			i += j + 2
		case ch == ';':
			return fmt.Errorf("';' is not allowed: one expression only")
		case ch == '-' && i+1 < len(expr) && expr[i+1] == '-', ch == '/' && i+1 < len(expr) && expr[i+1] == '*':
			return fmt.Errorf("comments are not allowed")
		case ch == '(':
			depth++
			i++
		case ch == ')':
			depth--
			if depth < 0 {
				return fmt.Errorf("unbalanced parentheses")
			}
			i++
		case ch == '$' || ch == '?' || ch == '\\':
			return fmt.Errorf("%q is not allowed", ch)
		case ch == '_' || unicode.IsLetter(rune(ch)):
			j := i
			for j < len(expr) && (expr[j] == '_' || expr[j] == '.' || unicode.IsLetter(rune(expr[j])) || unicode.IsDigit(rune(expr[j]))) {
				j++
			}
			for _, w := range strings.Split(strings.ToLower(expr[i:j]), ".") {
				if forbiddenWords[w] {
					return fmt.Errorf("%q is not allowed in a mask or row filter: one expression over the row's columns only", w)
				}
			}
			i = j
		default:
			i++
		}
	}
	if depth != 0 {
		return fmt.Errorf("unbalanced parentheses")
	}
	return nil
}
