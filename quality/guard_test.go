package quality

import (
	"regexp"
	"strings"
	"testing"
	"unicode"
)

func TestGuardSelect(t *testing.T) {
	ok := []string{
		"SELECT count(*) FROM t",
		"select 1;",
		"WITH x AS (SELECT * FROM t) SELECT count(*) FROM x",
		"SELECT count(*) FROM t WHERE note = 'DROP TABLE t; --'",
		`SELECT "select" FROM t`,
		"SELECT count(*) FROM t WHERE url LIKE 'https://%'",
		"SELECT count(*) FROM main.t AS x JOIN other o ON x.id = o.id",
		"SELECT count(*) FROM range(10) r(i), t",
		"SELECT count(*) FROM t, unnest([1, 2]) u(x)",
		"SELECT count(*) FROM (SELECT * FROM t WHERE x > 0) WHERE y IN ('a', 'b')",
		"SELECT count(*) FROM t WHERE name = 'it''s'",
		"SELECT lower(name) AS e FROM t WHERE e = 'x'",
		"SELECT count(*) FROM t WHERE s = '日本語' AND \"größe\" > 1",
	}
	for _, q := range ok {
		if _, err := guardSelect(q); err != nil {
			t.Errorf("%q refused: %v", q, err)
		}
	}
	bad := map[string]string{
		"DELETE FROM t":                                              "not DELETE",
		"SELECT 1; SELECT 2":                                         "one statement",
		"SELECT 1 -- hi":                                             "comments",
		"SELECT 1 /* hi */":                                          "comments",
		"SELECT * FROM read_parquet('x.parquet')":                    "READ_PARQUET",
		"SELECT * FROM 'x.csv'":                                      "file by name",
		"SELECT * FROM t JOIN 'x.csv' USING (id)":                    "file by name",
		"SELECT getenv('HOME')":                                      "GETENV",
		"WITH d AS (DELETE FROM t) SELECT 1":                         "DELETE",
		"SELECT 'unterminated":                                       "unterminated",
		"SELECT (1":                                                  "parentheses",
		"":                                                           "empty",
		"COPY t TO 'x.csv'":                                          "not COPY",
		"SELECT * FROM t; ATTACH 'x.db'":                             "one statement",
		"SELECT current_setting('allowed_directories')":              "CURRENT_SETTING",
		"SELECT * FROM read_csv_auto('data.csv')":                    "READ_CSV_AUTO",
		"SELECT * FROM glob('/etc/*')":                               "GLOB",
		"SELECT * FROM 'https://example.com/x.parquet'":              "file by name",
		"SELECT * FROM t, 's3://bucket/x.csv'":                       "file by name",
		"SELECT * FROM sqlite_scan('x.db', 't')":                     "SQLITE_SCAN",
		"SELECT * FROM my_macro('x.csv')":                            "table function my_macro is not allowed",
		"SELECT * FROM \"read_csv\"('x.csv')":                        "not allowed",
		"SELECT \"getenv\"('HOME')":                                  "not allowed",
		"SELECT * FROM main.read_text('/etc/passwd')":                "READ_TEXT",
		"SELECT * FROM t WHERE x IN (FROM 'x.csv')":                  "file by name",
		"WITH x AS (FROM 'x.csv') SELECT * FROM x":                   "file by name",
		"SELECT 1; INSTALL httpfs":                                   "one statement",
		"INSTALL httpfs":                                             "not INSTALL",
		"LOAD httpfs":                                                "not LOAD",
		"PRAGMA enable_external_access":                              "not PRAGMA",
		"SET enable_external_access = true":                          "not SET",
		"SELECT * FROM t /* ; ATTACH 'x.db' */":                      "comments",
		"SELECT 1 --\nATTACH 'x.db'":                                 "comments",
		"SELECT $$'$$, read_csv('x'), $$'$$":                         "$ is not allowed",
		"SELECT E'\\'', 1 FROM read_csv('x') WHERE '\\'' = ''":       "escape strings",
		"SELECT 1\x00":                                               "NUL",
		"ATTACH 'x.db' AS x":                                         "not ATTACH",
		"SELECT * FROM t WHERE id IN (SELECT * FROM read_json('x'))": "READ_JSON",
	}
	for q, want := range bad {
		_, err := guardSelect(q)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one mentioning %q", q, err, want)
		}
	}
}

func TestGuardExpr(t *testing.T) {
	for _, e := range []string{"country = 'ES'", "amount > 0 AND status IN ('a', 'b')", `"weird col" IS NOT NULL`} {
		if err := guardExpr(e); err != nil {
			t.Errorf("%q refused: %v", e, err)
		}
	}
	for _, e := range []string{"1=1) FROM t; DROP TABLE t; --", "id IN (SELECT id FROM other)", "x > 0 UNION ALL", ")(", ""} {
		if err := guardExpr(e); err == nil {
			t.Errorf("%q accepted", e)
		}
	}
}

// FuzzGuard checks what the guard promises against an independent
// reading of the text: whatever it accepts has, outside quotes, no second
// statement, no comment, no dollar quote, no denied word and no string
// right after FROM or JOIN.
func FuzzGuard(f *testing.F) {
	for _, s := range []string{"SELECT 1", "SELECT 'a''b' FROM t", `"x"`, "1=1; --", "/*", "é",
		"SELECT * FROM read_csv('x')", "SELECT $$'$$", "SELECT E'\\''", "SELECT * FROM range(3)", `SELECT "a""b" FROM t`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		check := func(q string) {
			bare := outsideQuotes(q)
			for _, bad := range []string{";", "--", "/*", "$"} {
				if strings.Contains(bare, bad) {
					t.Fatalf("accepted %q: %q outside quotes", s, bad)
				}
			}
			words := strings.FieldsFunc(strings.ToLower(bare), func(r rune) bool {
				return !(r == '_' || r == '$' || unicode.IsLetter(r) || unicode.IsDigit(r))
			})
			for _, w := range words {
				if deniedWords[w] {
					t.Fatalf("accepted %q with %s", s, w)
				}
			}
			if m := fromLiteral.FindString(strings.ToLower(quotesMarked(q))); m != "" {
				t.Fatalf("accepted %q: %q reads a file by name", s, m)
			}
		}
		if q, err := guardSelect(s); err == nil {
			check(q)
		}
		if guardExpr(s) == nil {
			check(s)
		}
	})
}

var fromLiteral = regexp.MustCompile(`\b(from|join)\s*\x01`)

// outsideQuotes blanks out '...' and "..." (doubled quotes escape).
func outsideQuotes(s string) string {
	return strings.Map(func(r rune) rune {
		if r == 1 || r == 2 {
			return ' '
		}
		return r
	}, quotesMarked(s))
}

// quotesMarked replaces a '...' string by \x01 and a "..." identifier by \x02.
func quotesMarked(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		if r != '\'' && r != '"' {
			b.WriteRune(r)
			continue
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
		if r == '\'' {
			b.WriteRune(1)
		} else {
			b.WriteRune(2)
		}
		i = j
	}
	return b.String()
}

// FuzzFromSpec feeds thresholds and settings through the seed syntax:
// never a panic, and every check that is accepted compiles.
func FuzzFromSpec(f *testing.F) {
	for _, s := range []string{"> 1000", "< 1%", "< 24 hours", "== 0", "<= 1e3", "!= -1", "< 1 %", "> NaN", "", ">= 99.9%"} {
		f.Add("row_count", s, "id", "")
		f.Add("freshness", s, "ts", "x > 0")
	}
	f.Add("drift", "< 0.2", "x", "")
	f.Add("null_percentage", "< 1%", "customer_id", "country = 'ES'")
	f.Fuzz(func(t *testing.T, typ, threshold, column, where string) {
		checks, probs := FromSpec(map[string]any{typ: map[string]any{"threshold": threshold, "column": column, "where": where}})
		_, probs2 := FromSpec(map[string]any{typ: threshold})
		for _, c := range checks {
			if _, _, err := compile(&c, "t"); err != nil {
				t.Fatalf("accepted %+v does not compile: %v", c, err)
			}
			if !c.HasThreshold() {
				t.Fatalf("accepted %+v has no threshold", c)
			}
		}
		for _, p := range append(probs, probs2...) {
			if p.Message == "" {
				t.Fatalf("a problem without a message: %+v", p)
			}
		}
	})
}
