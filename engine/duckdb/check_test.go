package duckdb

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rhizome-mesh/rhizome"
)

// checkSession has inputs people and orders, plus a table secrets that
// the queries below have not declared.
func checkSession(t *testing.T) *Session {
	t.Helper()
	ctx := context.Background()
	s, _ := newSession(t)
	must(t, s.Register(ctx, "people", Source{Format: "csv", Paths: []string{fixture("people.csv")}}))
	must(t, s.Register(ctx, "orders", Source{Format: "csv", Paths: []string{fixture("orders.csv")}}))
	must(t, s.Register(ctx, "secrets", Source{Format: "csv", Paths: []string{fixture("orders.csv")}}))
	return s
}

var inputs = []string{"people", "orders"}

func TestCheckQueryRefuses(t *testing.T) {
	people := fixture("people.csv")
	tests := []struct {
		name, sql, want string
	}{
		{"copy out", "COPY people TO '/tmp/x.csv'", "COPY statements are not allowed"},
		{"copy query", "COPY (SELECT * FROM people) TO 'x.parquet' (FORMAT parquet)", "COPY statements are not allowed"},
		{"copy in", "COPY people FROM '/etc/passwd'", "COPY statements are not allowed"},
		{"attach file", "ATTACH '/tmp/other.db' AS o", "ATTACH statements are not allowed"},
		{"attach memory", "ATTACH ':memory:' AS m", "ATTACH statements are not allowed"},
		{"detach", "DETACH memory", "DETACH statements are not allowed"},
		{"install", "INSTALL httpfs", "INSTALL statements are not allowed"},
		{"load", "LOAD httpfs", "LOAD statements are not allowed"},
		{"set", "SET enable_external_access = true", "SET statements are not allowed"},
		{"reset", "RESET lock_configuration", "RESET statements are not allowed"},
		{"pragma", "PRAGMA database_list", "PRAGMA statements are not allowed"},
		{"create", "CREATE TABLE t AS SELECT 1", "CREATE statements are not allowed"},
		{"create macro", "CREATE MACRO f(x) AS x", "CREATE statements are not allowed"},
		{"insert", "INSERT INTO people VALUES (1)", "INSERT statements are not allowed"},
		{"update", "UPDATE people SET name = 'x'", "UPDATE statements are not allowed"},
		{"delete", "DELETE FROM people", "DELETE statements are not allowed"},
		{"drop", "DROP TABLE people", "DROP statements are not allowed"},
		{"export database", "EXPORT DATABASE '/tmp/x'", "EXPORT statements are not allowed"},
		{"call", "CALL duckdb_settings()", "CALL statements are not allowed"},
		{"explain", "EXPLAIN SELECT 1", "EXPLAIN statements are not allowed"},
		{"commented copy", "/* SELECT */ -- SELECT\nCOPY people TO 'x'", "COPY statements are not allowed"},
		{"two selects", "SELECT 1; SELECT 2", "found 2 statements"},
		{"select then copy", "SELECT 1; COPY people TO 'x.csv'", "holds a statement that is not a SELECT"},
		{"read_csv passwd", "SELECT * FROM read_csv('/etc/passwd')", "table function read_csv() is not allowed"},
		{"read_csv input file by path", "SELECT * FROM read_csv('" + people + "')", "table function read_csv() is not allowed"},
		{"read_csv_auto", "SELECT * FROM read_csv_auto('x.csv')", "table function read_csv_auto() is not allowed"},
		{"read_parquet", "SELECT * FROM read_parquet('s3://bucket/x.parquet')", "table function read_parquet() is not allowed"},
		{"read_json", "SELECT * FROM read_json('https://example.com/x.json')", "table function read_json() is not allowed"},
		{"read_text", "SELECT content FROM read_text('/etc/passwd')", "table function read_text() is not allowed"},
		{"read_blob", "SELECT * FROM read_blob('/etc/shadow')", "table function read_blob() is not allowed"},
		{"glob", "SELECT * FROM glob('/etc/*')", "table function glob() is not allowed"},
		{"query_table", "SELECT * FROM query_table('secrets')", "table function query_table() is not allowed"},
		{"query", "SELECT * FROM query('SELECT * FROM secrets')", "table function query() is not allowed"},
		{"url as table", "SELECT * FROM 'https://example.com/data.csv'", `reading "https://example.com/data.csv" directly is not allowed`},
		{"s3 url as table", `SELECT * FROM "s3://bucket/data.parquet"`, "directly is not allowed"},
		{"passwd as table", "SELECT * FROM '/etc/passwd'", `reading "/etc/passwd" directly is not allowed`},
		{"input file as table", "SELECT * FROM '" + people + "'", "directly is not allowed"},
		{"relative file as table", "SELECT * FROM 'people.csv'", `reading "people.csv" directly is not allowed`},
		{"undeclared table", "SELECT * FROM secrets", "table secrets is not an input of this product"},
		{"undeclared in join", "SELECT p.* FROM people p JOIN secrets s ON s.person_id = p.id", "table secrets is not an input"},
		{"undeclared in subquery", "SELECT * FROM people WHERE id IN (SELECT person_id FROM secrets)", "table secrets is not an input"},
		{"undeclared in cte", "WITH x AS (SELECT * FROM secrets) SELECT * FROM x", "table secrets is not an input"},
		{"cte out of scope", "SELECT * FROM (WITH secrets AS (SELECT 1) SELECT * FROM secrets) a, secrets", "table secrets is not an input"},
		{"cte used before defined", "WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a", "table b is not an input"},
		{"cte shadowing its own name", "WITH secrets AS (SELECT * FROM secrets) SELECT * FROM secrets", "table secrets is not an input"},
		{"recursive anchor reading catalog", "WITH RECURSIVE secrets AS (SELECT * FROM secrets UNION ALL SELECT * FROM secrets) SELECT * FROM secrets", "table secrets is not an input"},
		{"pivot subquery", "SELECT * FROM (PIVOT secrets ON person_id USING sum(total))", "not a SELECT"},
		{"pivot statement", "PIVOT people ON name USING sum(amount)", "PIVOT statements are not allowed"},
		{"other schema", "SELECT * FROM information_schema.tables", "table information_schema.tables is outside the product's inputs"},
		{"system catalog", "SELECT * FROM system.main.duckdb_settings", "outside the product's inputs"},
		{"other catalog", "SELECT * FROM memory.main.secrets", "outside the product's inputs"},
		{"temp catalog", "SELECT * FROM temp.main.rhizome_rejects_1", "outside the product's inputs"},
		{"metadata view", "SELECT * FROM duckdb_tables", "table duckdb_tables is not an input"},
		{"metadata function", "SELECT * FROM duckdb_settings()", "table function duckdb_settings() is not allowed"},
		{"metadata function tables", "SELECT * FROM duckdb_tables()", "table function duckdb_tables() is not allowed"},
		{"getenv", "SELECT getenv('HOME')", "function getenv() is not allowed"},
		{"current_setting", "SELECT current_setting('allowed_directories')", "function current_setting() is not allowed"},
		{"describe", "DESCRIBE secrets", "DESCRIBE, SHOW and SUMMARIZE are not allowed"},
		{"show tables", "SHOW TABLES", "DESCRIBE, SHOW and SUMMARIZE are not allowed"},
		{"summarize", "SUMMARIZE people", "DESCRIBE, SHOW and SUMMARIZE are not allowed"},
		{"scalar read in lateral", "SELECT * FROM people, LATERAL (SELECT * FROM read_csv(people.name))", "table function read_csv() is not allowed"},
		{"empty", "  -- nothing\n", "the SQL is empty"},
		{"syntax error", "SELEC 1", "syntax error"},
	}
	if len(tests) < 25 {
		t.Fatal("the corpus shrank")
	}
	s := checkSession(t)
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.CheckQuery(ctx, tt.sql, inputs)
			wantInvalid(t, err, tt.want)
			if ps := rhizome.ProblemsOf(err); len(ps) == 0 || ps[0].Hint == "" {
				t.Errorf("no problem with a hint: %v", err)
			}
		})
	}
}

func TestCheckQueryAllows(t *testing.T) {
	for _, q := range []string{
		"SELECT * FROM people",
		"select * from PEOPLE",
		"FROM people",
		"SELECT * FROM main.people",
		"SELECT 1",
		"VALUES (1, 'a'), (2, 'b')",
		"SELECT * FROM (VALUES (1), (2)) v(x)",
		"WITH a AS (SELECT id FROM people), b AS (SELECT * FROM a) SELECT * FROM b",
		"WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r",
		"SELECT p.name, sum(o.total) FROM people p JOIN orders o ON o.person_id = p.id GROUP BY ALL",
		"SELECT * FROM people WHERE id IN (SELECT person_id FROM orders)",
		"SELECT id, row_number() OVER (PARTITION BY name ORDER BY joined) FROM people QUALIFY id > 0",
		"SELECT * FROM range(10)",
		"SELECT * FROM generate_series(1, 3)",
		"SELECT unnest([1, 2, 3])",
		"SELECT id FROM people UNION ALL SELECT person_id FROM orders ORDER BY 1 LIMIT 5",
		"SELECT list_transform([1, 2], x -> x + 1)",
		"SELECT 1;",
		"-- a comment\nSELECT 'COPY people TO ''x''' AS s",
	} {
		t.Run(q, func(t *testing.T) {
			s := checkSession(t)
			if err := s.CheckQuery(context.Background(), q, inputs); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSandbox bypasses the allowlist: the engine itself must hold.
func TestSandbox(t *testing.T) {
	s, work := newSession(t)
	ctx := context.Background()
	outside := t.TempDir() // not an allowed dir
	os.WriteFile(filepath.Join(outside, "secret.csv"), []byte("a\n1\n"), 0o600)
	for _, q := range []string{
		"SELECT * FROM read_text('/etc/passwd')",
		"SELECT * FROM read_csv('/etc/passwd')",
		"SELECT * FROM '/etc/passwd'",
		"SELECT * FROM read_csv('" + filepath.Join(outside, "secret.csv") + "')",
		"SELECT * FROM read_csv('" + fixture("../duckdb_test.go") + "')",
		"SELECT * FROM glob('/etc/*')",
		"COPY (SELECT 1) TO '" + filepath.Join(outside, "x.csv") + "'",
		"ATTACH '" + filepath.Join(outside, "x.db") + "' AS x",
		"SET enable_external_access = true",
		"SET allowed_directories = ['/']",
		"SET lock_configuration = false",
		"RESET lock_configuration",
		"SET threads = 1",
		"SET GLOBAL enable_external_access = true",
		"SET SESSION allowed_directories = ['/']",
		"PRAGMA threads = 1",
		"INSTALL httpfs",
		"LOAD httpfs",
		"SELECT * FROM read_csv('https://example.com/x.csv')",
		"SELECT getenv('HOME')",
	} {
		t.Run(q, func(t *testing.T) {
			rows, err := s.Query(ctx, q)
			if err == nil {
				for rows.Next() {
				}
				err = rows.Err()
				rows.Close()
			}
			if err == nil {
				t.Fatalf("sandbox let %q run", q)
			}
			msg := err.Error()
			if !strings.Contains(msg, "Permission Error") && !strings.Contains(msg, "configuration has been locked") && !strings.Contains(msg, "does not exist") {
				t.Errorf("refused for an unexpected reason: %v", err)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(outside, "x.csv")); err == nil {
		t.Error("COPY wrote outside the sandbox")
	}
	// The sandbox still lets the platform work inside its dirs.
	if _, err := s.Exec(ctx, "COPY (SELECT 1 AS a) TO '"+filepath.Join(work, "ok.csv")+"'"); err != nil {
		t.Errorf("writing inside the sandbox: %v", err)
	}
}

func TestColumnLineage(t *testing.T) {
	ref := func(tc ...string) []ColumnRef {
		out := []ColumnRef{}
		for _, x := range tc {
			t, c, _ := strings.Cut(x, ".")
			out = append(out, ColumnRef{t, c})
		}
		return out
	}
	tests := []struct {
		name, sql string
		want      map[string][]ColumnRef
	}{
		{"star", "SELECT * FROM people", map[string][]ColumnRef{
			"id": ref("people.id"), "name": ref("people.name"), "amount": ref("people.amount"), "joined": ref("people.joined")}},
		{"alias and expression", "SELECT id AS person, upper(name) || '!' AS shout, amount * 2 AS double, 42 AS answer FROM people", map[string][]ColumnRef{
			"person": ref("people.id"), "shout": ref("people.name"), "double": ref("people.amount"), "answer": ref()}},
		{"join aggregate", "SELECT p.name, sum(o.total) AS spent, count(*) AS n FROM people p JOIN orders o ON o.person_id = p.id GROUP BY p.name", map[string][]ColumnRef{
			"name": ref("people.name"), "spent": ref("orders.total"), "n": ref()}},
		{"cte chain", "WITH a AS (SELECT id, amount + 1 AS x FROM people), b AS (SELECT x * id AS y FROM a) SELECT y FROM b", map[string][]ColumnRef{
			"y": ref("people.amount", "people.id")}},
		{"subquery and case", "SELECT s.k, CASE WHEN s.k > 1 THEN s.t END AS big FROM (SELECT person_id AS k, total AS t FROM orders) s", map[string][]ColumnRef{
			"k": ref("orders.person_id"), "big": ref("orders.person_id", "orders.total")}},
		{"union", "SELECT id AS k FROM people UNION ALL SELECT person_id FROM orders", map[string][]ColumnRef{
			"k": ref("orders.person_id", "people.id")}},
		{"qualified star exclude", "SELECT o.* EXCLUDE (total), p.name FROM orders o, people p", map[string][]ColumnRef{
			"order_id": ref("orders.order_id"), "person_id": ref("orders.person_id"), "name": ref("people.name")}},
		{"using join star", "SELECT * FROM people JOIN (SELECT person_id AS id, total FROM orders) o USING (id)", map[string][]ColumnRef{
			"id": ref("orders.person_id", "people.id"), "name": ref("people.name"), "amount": ref("people.amount"), "joined": ref("people.joined"), "total": ref("orders.total")}},
		{"scalar subquery and later alias", "SELECT id * 2 AS d, d + 1 AS e, (SELECT max(total) FROM orders) AS m FROM people", map[string][]ColumnRef{
			"d": ref("people.id"), "e": ref("people.id"), "m": ref("orders.total")}},
		{"cte column aliases", "WITH c(a, b) AS (SELECT id, name FROM people) SELECT b, a FROM c", map[string][]ColumnRef{
			"b": ref("people.name"), "a": ref("people.id")}},
		{"window", "SELECT id, sum(amount) OVER (PARTITION BY name) AS s FROM people", map[string][]ColumnRef{
			"id": ref("people.id"), "s": ref("people.amount", "people.name")}},
	}
	s := checkSession(t)
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ColumnLineage(ctx, tt.sql)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("lineage =\n%v\nwant\n%v", got, tt.want)
			}
		})
	}
	t.Run("does not bind", func(t *testing.T) {
		_, err := s.ColumnLineage(ctx, "SELECT nope FROM people")
		wantInvalid(t, err, `"nope" not found`)
	})
}

func FuzzCheckQuery(f *testing.F) {
	for _, q := range []string{"SELECT * FROM people", "COPY people TO 'x'", "SELECT * FROM read_csv('/etc/passwd')", "WITH a AS (SELECT 1) SELECT * FROM a"} {
		f.Add(q)
	}
	s, _ := newSession(f)
	ctx := context.Background()
	must(f, s.Register(ctx, "people", Source{Format: "csv", Paths: []string{fixture("people.csv")}}))
	f.Fuzz(func(t *testing.T, q string) {
		err := s.CheckQuery(ctx, q, []string{"people"})
		if err != nil && rhizome.Code(err) != rhizome.EInvalid {
			t.Fatalf("code %s: %v", rhizome.Code(err), err)
		}
	})
}
