package pgwire

import (
	"strconv"
	"strings"
)

// The wire layer reads SQL text only as far as it must: to split a simple
// query into statements, to find the $n parameters of the extended
// protocol and to recognise the few statements it answers itself (see
// intercept.go). It does not parse SQL; serve decides what may run.

// token spans of a statement that are not code: quoted strings, quoted
// identifiers, comments. scan calls code for each stretch of code between
// them.
func scan(q string, code func(start, end int)) {
	i, start := 0, 0
	flush := func(end int) {
		if end > start {
			code(start, end)
		}
	}
	for i < len(q) {
		c := q[i]
		switch {
		case c == '\'' || c == '"':
			flush(i)
			i = skipQuoted(q, i, c)
			start = i
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			flush(i)
			for i < len(q) && q[i] != '\n' {
				i++
			}
			start = i
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			flush(i)
			depth := 0
			for i < len(q) {
				if strings.HasPrefix(q[i:], "/*") {
					depth++
					i += 2
				} else if strings.HasPrefix(q[i:], "*/") {
					depth--
					i += 2
					if depth == 0 {
						break
					}
				} else {
					i++
				}
			}
			start = i
		case c == '$' && dollarTag(q, i) != "":
			flush(i)
			tag := dollarTag(q, i)
			end := strings.Index(q[i+len(tag):], tag)
			if end < 0 {
				i = len(q)
			} else {
				i += len(tag) + end + len(tag)
			}
			start = i
		default:
			i++
		}
	}
	flush(len(q))
}

// skipQuoted returns the index after the quoted run starting at q[i]; a
// doubled quote is an escaped one. E'...' strings escape with backslashes.
func skipQuoted(q string, i int, quote byte) int {
	backslash := quote == '\'' && i > 0 && (q[i-1] == 'e' || q[i-1] == 'E') && (i < 2 || !isIdent(q[i-2]))
	i++
	for i < len(q) {
		switch {
		case backslash && q[i] == '\\':
			i += 2
		case q[i] == quote && i+1 < len(q) && q[i+1] == quote:
			i += 2
		case q[i] == quote:
			return i + 1
		default:
			i++
		}
	}
	return i
}

// dollarTag returns the $tag$ opening a dollar-quoted string at q[i], or "".
// $1 is a parameter, not a tag.
func dollarTag(q string, i int) string {
	if i > 0 && isIdent(q[i-1]) {
		return ""
	}
	j := i + 1
	if j < len(q) && q[j] >= '0' && q[j] <= '9' {
		return ""
	}
	for j < len(q) && isIdent(q[j]) {
		j++
	}
	if j < len(q) && q[j] == '$' {
		return q[i : j+1]
	}
	return ""
}

func isIdent(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

// splitStatements splits a simple query at the semicolons outside strings
// and comments, dropping empty statements.
func splitStatements(q string) []string {
	var cuts []int
	scan(q, func(s, e int) {
		for i := s; i < e; i++ {
			if q[i] == ';' {
				cuts = append(cuts, i)
			}
		}
	})
	var out []string
	prev := 0
	for _, c := range append(cuts, len(q)) {
		if st := strings.TrimSpace(q[prev:c]); st != "" && !onlyComments(st) {
			out = append(out, st)
		}
		prev = c + 1
	}
	return out
}

func onlyComments(s string) bool {
	empty := true
	scan(s, func(a, b int) {
		if strings.TrimSpace(s[a:b]) != "" {
			empty = false
		}
	})
	// scan does not call code for quoted runs: a statement of only a
	// string literal is not empty.
	return empty && !strings.ContainsAny(s, `'"$`)
}

// param is one $n in a statement.
type param struct {
	start, end int // byte span of "$n"
	n          int // 1-based
}

// params lists the $n placeholders outside strings and comments.
func params(q string) []param {
	var out []param
	scan(q, func(s, e int) {
		for i := s; i < e; i++ {
			if q[i] != '$' || i+1 >= e || q[i+1] < '0' || q[i+1] > '9' || (i > 0 && isIdent(q[i-1])) {
				continue
			}
			j := i + 1
			for j < e && q[j] >= '0' && q[j] <= '9' {
				j++
			}
			n, err := strconv.Atoi(q[i+1 : j])
			if err == nil && n > 0 {
				out = append(out, param{start: i, end: j, n: n})
			}
			i = j - 1
		}
	})
	return out
}

// bindParams replaces each $n with lits[n-1].
func bindParams(q string, ps []param, lits []string) string {
	if len(ps) == 0 {
		return q
	}
	var b strings.Builder
	prev := 0
	for _, p := range ps {
		b.WriteString(q[prev:p.start])
		b.WriteString(lits[p.n-1])
		prev = p.end
	}
	b.WriteString(q[prev:])
	return b.String()
}

// words returns the first n lower-cased words of the code in q (quoted
// runs and comments skipped; punctuation separates words but "=" and "("
// are words of their own).
func words(q string, n int) []string {
	var out []string
	scan(q, func(s, e int) {
		if len(out) >= n {
			return
		}
		f := strings.FieldsFunc(strings.ToLower(q[s:e]), func(r rune) bool {
			return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == ';' || r == ','
		})
		for _, w := range f {
			for w != "" && len(out) < n {
				k := strings.IndexAny(w, "=()")
				switch {
				case k < 0:
					out = append(out, w)
					w = ""
				case k == 0:
					out = append(out, w[:1])
					w = w[1:]
				default:
					out = append(out, w[:k])
					w = w[k:]
				}
			}
		}
	})
	return out
}

// quoteLiteral is a SQL string literal for s (standard strings: only the
// quote is escaped).
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
