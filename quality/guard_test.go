package quality

import (
	"strings"
	"testing"
)

func TestGuardSelect(t *testing.T) {
	ok := []string{
		"SELECT count(*) FROM t",
		"select 1;",
		"WITH x AS (SELECT * FROM t) SELECT count(*) FROM x",
		"SELECT count(*) FROM t WHERE note = 'DROP TABLE t; --'",
		`SELECT "select" FROM t`,
	}
	for _, q := range ok {
		if _, err := guardSelect(q); err != nil {
			t.Errorf("%q refused: %v", q, err)
		}
	}
	bad := map[string]string{
		"DELETE FROM t":                                 "not DELETE",
		"SELECT 1; SELECT 2":                            "one statement",
		"SELECT 1 -- hi":                                "comments",
		"SELECT 1 /* hi */":                             "comments",
		"SELECT * FROM read_parquet('x.parquet')":       "READ_PARQUET",
		"SELECT * FROM 'x.csv'":                         "file by name",
		"SELECT * FROM t JOIN 'x.csv' USING (id)":       "file by name",
		"SELECT getenv('HOME')":                         "GETENV",
		"WITH d AS (DELETE FROM t) SELECT 1":            "DELETE",
		"SELECT 'unterminated":                          "unterminated",
		"SELECT (1":                                     "parentheses",
		"":                                              "empty",
		"COPY t TO 'x.csv'":                             "not COPY",
		"SELECT * FROM t; ATTACH 'x.db'":                "one statement",
		"SELECT current_setting('allowed_directories')": "CURRENT_SETTING",
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

func FuzzGuard(f *testing.F) {
	for _, s := range []string{"SELECT 1", "SELECT 'a''b' FROM t", `"x"`, "1=1; --", "/*", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := guardSelect(s)
		if err == nil && strings.Contains(strings.TrimSuffix(strings.TrimSpace(s), ";"), ";") {
			// a ';' survives only inside quotes
			if toks, _ := tokens(q); screen(toks) != nil {
				t.Fatalf("accepted %q", s)
			}
		}
		_ = guardExpr(s)
	})
}
