package pgwire

import (
	"reflect"
	"testing"
)

func TestSplitStatements(t *testing.T) {
	for q, want := range map[string][]string{
		"select 1":                          {"select 1"},
		"select 1; select 2;":               {"select 1", "select 2"},
		"select ';'; -- x; y\n":             {"select ';'"},
		`select "a;b" from t /* ; */`:       {`select "a;b" from t /* ; */`},
		"select $$;$$, $tag$ ; $tag$":       {"select $$;$$, $tag$ ; $tag$"},
		"select E'\\';' ; select 2":         {"select E'\\';'", "select 2"},
		" ; -- only a comment\n ; /* c */ ": nil,
		"select 'it''s; fine'":              {"select 'it''s; fine'"},
	} {
		if got := splitStatements(q); !reflect.DeepEqual(got, want) {
			t.Errorf("splitStatements(%q) = %q, want %q", q, got, want)
		}
	}
}

func TestParams(t *testing.T) {
	q := `select '$1', "$2", $1, x$3, $2 -- $4` + "\n/* $5 */ $$ $6 $$, $10"
	var got []int
	for _, p := range params(q) {
		got = append(got, p.n)
	}
	if want := []int{1, 2, 10}; !reflect.DeepEqual(got, want) {
		t.Errorf("params = %v, want %v", got, want)
	}
	lits := make([]string, 10)
	lits[0], lits[1], lits[9] = "'a''b'", "NULL", "7"
	if got, want := bindParams(q, params(q), lits), `select '$1', "$2", 'a''b', x$3, NULL -- $4`+"\n/* $5 */ $$ $6 $$, 7"; got != want {
		t.Errorf("bindParams = %q, want %q", got, want)
	}
}

func TestSetValue(t *testing.T) {
	for st, want := range map[string]string{
		"SET extra_float_digits = 3":        "3",
		"set client_encoding to 'UTF8'":     "UTF8",
		"SET TIME ZONE 'Europe/Berlin'":     "Europe/Berlin",
		"SET application_name = 'it''s me'": "it's me",
		"SET statement_timeout TO '5s';":    "5s",
	} {
		if got := setValue(st); got != want {
			t.Errorf("setValue(%q) = %q, want %q", st, got, want)
		}
	}
}

func TestRewriteCatalog(t *testing.T) {
	// What psql 15 sends for \dt sales*.
	q := `SELECT n.nspname as "Schema",
  c.relname as "Name",
  CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' END as "Type",
  pg_catalog.pg_get_userbyid(c.relowner) as "Owner"
FROM pg_catalog.pg_class c
     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r','p','')
  AND c.relname OPERATOR(pg_catalog.~) '^(sales.*)$' COLLATE pg_catalog.default
  AND pg_catalog.pg_table_is_visible(c.oid)
ORDER BY 1,2;`
	got, ok := rewriteCatalog(q)
	if !ok {
		t.Fatal("not recognised")
	}
	want := `SELECT table_schema AS "Schema", table_name AS "Name", 'table' AS "Type", 'rhizome' AS "Owner"
FROM information_schema.tables WHERE table_schema NOT IN ('information_schema', 'pg_catalog') AND regexp_full_match(table_name, '^(sales.*)$') ORDER BY 1, 2`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if _, ok := rewriteCatalog("SELECT * FROM pg_catalog.pg_class"); ok {
		t.Error("rewrote a plain catalog query")
	}
}

// TestRewriteDescribe: psql's \d TABLE queries lose their Postgres-only
// spellings, and \d+'s view definition is answered NULL (it would name
// the product's files).
func TestRewriteDescribe(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`WHERE c.relname OPERATOR(pg_catalog.~) '^(orders)$' COLLATE pg_catalog.default`, `WHERE c.relname ~ '^(orders)$'`},
		{`SELECT pg_catalog.pg_get_viewdef('22136'::pg_catalog.oid, true);`, `SELECT NULL::VARCHAR;`},
		{`SELECT pg_catalog.pg_get_userbyid(n.nspowner) AS "Owner"`, `SELECT 'rhizome' AS "Owner"`},
		{`CASE WHEN c.reloftype = 0 THEN '' ELSE c.reloftype::pg_catalog.regtype::pg_catalog.text END`, `CASE WHEN c.reloftype = 0 THEN '' ELSE c.reloftype::VARCHAR END`},
	} {
		got, ok := rewriteCatalog(c.in)
		if !ok || got != c.want {
			t.Errorf("rewriteCatalog(%s) = %q, %v; want %q", c.in, got, ok, c.want)
		}
	}
	// Anything else serve gets as sent, and its allowlist still refuses
	// pg_get_viewdef called any other way.
	if _, ok := rewriteCatalog(`SELECT pg_get_viewdef('sales.orders')`); ok {
		t.Error("rewrote a plain pg_get_viewdef call")
	}
}
