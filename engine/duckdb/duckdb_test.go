package duckdb

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rhizome-mesh/rhizome"
)

// newSession opens a sandboxed session reaching testdata (read) and a
// fresh temp dir (returned, for writes).
func newSession(t testing.TB) (*Session, string) {
	t.Helper()
	ctx := context.Background()
	work := t.TempDir()
	td, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	e, err := Open(ctx, Options{AllowedDirs: []string{td, work}, TempDir: filepath.Join(work, "tmp"), Threads: 2, MemoryLimit: "1GB"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	s, err := e.Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, work
}

func fixture(name string) string {
	p, _ := filepath.Abs(filepath.Join("testdata", name))
	return p
}

// wantInvalid fails unless err is EInvalid and its text holds every want.
func wantInvalid(t *testing.T, err error, wants ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want EInvalid mentioning %q", wants)
	}
	if rhizome.Code(err) != rhizome.EInvalid {
		t.Fatalf("code = %s, want invalid; error: %v", rhizome.Code(err), err)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not mention %q:\n%v", w, err)
		}
	}
}

var peopleDeclared = []Column{
	{Name: "id", Type: "INTEGER", Required: true},
	{Name: "name", Type: "VARCHAR"},
	{Name: "amount", Type: "DECIMAL(10,2)"},
	{Name: "joined", Type: "DATE"},
}

func TestRegister(t *testing.T) {
	tests := []struct {
		name string
		src  Source
		want []Column
	}{
		{"csv inferred", Source{Format: "csv", Paths: []string{fixture("people.csv")}},
			[]Column{{"id", "BIGINT", false}, {"name", "VARCHAR", false}, {"amount", "DOUBLE", false}, {"joined", "DATE", false}}},
		{"ndjson inferred", Source{Format: "ndjson", Paths: []string{fixture("people.ndjson")}},
			[]Column{{"id", "BIGINT", false}, {"name", "VARCHAR", false}, {"amount", "DOUBLE", false}, {"joined", "DATE", false}}},
		{"parquet inferred", Source{Format: "parquet", Paths: []string{fixture("people.parquet")}},
			[]Column{{"id", "INTEGER", false}, {"name", "VARCHAR", false}, {"amount", "DOUBLE", false}, {"joined", "DATE", false}}},
		{"csv glob", Source{Format: "csv", Paths: []string{filepath.Join(fixture(""), "people.c*v")}},
			[]Column{{"id", "BIGINT", false}, {"name", "VARCHAR", false}, {"amount", "DOUBLE", false}, {"joined", "DATE", false}}},
		{"csv options", Source{Format: "csv", Paths: []string{fixture("semicolon.csv")}, Options: map[string]string{"delimiter": ";", "header": "true", "decimal_separator": ","}},
			[]Column{{"id", "BIGINT", false}, {"name", "VARCHAR", false}, {"amount", "DOUBLE", false}, {"joined", "DATE", false}}},
	}
	declared := []Column{{"id", "INTEGER", false}, {"name", "VARCHAR", false}, {"amount", "DECIMAL(10,2)", false}, {"joined", "DATE", false}}
	for _, f := range []string{"csv", "ndjson", "parquet"} {
		tests = append(tests, struct {
			name string
			src  Source
			want []Column
		}{f + " declared", Source{Format: f, Paths: []string{fixture("people." + f)}, Columns: peopleDeclared, Strict: true}, declared})
	}
	// Declared columns in another order and case than the file: matched by name.
	tests = append(tests, struct {
		name string
		src  Source
		want []Column
	}{"csv declared reordered", Source{Format: "csv", Paths: []string{fixture("people.csv")}, Columns: []Column{{"JOINED", "VARCHAR", false}, {"ID", "BIGINT", false}}},
		[]Column{{"JOINED", "VARCHAR", false}, {"ID", "BIGINT", false}}})
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newSession(t)
			if err := s.Register(ctx, "people", tt.src); err != nil {
				t.Fatal(err)
			}
			got, err := s.Schema(ctx, "people")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("schema = %v, want %v", got, tt.want)
			}
			n, err := s.RowCount(ctx, "people")
			if err != nil {
				t.Fatal(err)
			}
			if want := int64(3); tt.src.Format != "csv" || !strings.Contains(tt.name, "options") {
				if n != want {
					t.Errorf("rows = %d, want %d", n, want)
				}
			}
		})
	}
}

func TestRegisterDeclaredValues(t *testing.T) {
	ctx := context.Background()
	s, _ := newSession(t)
	if err := s.Register(ctx, "people", Source{Format: "csv", Paths: []string{fixture("people.csv")}, Columns: peopleDeclared}); err != nil {
		t.Fatal(err)
	}
	var sum string
	if err := s.conn.QueryRowContext(ctx, "SELECT sum(amount)::VARCHAR || '/' || max(joined)::VARCHAR FROM people").Scan(&sum); err != nil {
		t.Fatal(err)
	}
	if sum != "30.50/2024-03-04" {
		t.Errorf("got %s", sum)
	}
	// Scratch tables (rejects, staging) are gone.
	var scratch int
	must(t, s.conn.QueryRowContext(ctx, "SELECT count(*) FROM duckdb_tables() WHERE table_name <> 'people'").Scan(&scratch))
	if scratch != 0 {
		t.Errorf("%d scratch tables left", scratch)
	}
	if err := s.Register(ctx, "PEOPLE", Source{Format: "csv", Paths: []string{fixture("people.csv")}}); rhizome.Code(err) != rhizome.EConflict {
		t.Errorf("registering twice: %v, want conflict", err)
	}
}

func TestRegisterMismatch(t *testing.T) {
	tests := []struct {
		name  string
		src   Source
		wants []string
	}{
		{"csv missing column", Source{Format: "csv", Paths: []string{fixture("missing_column.csv")}, Columns: peopleDeclared},
			[]string{"missing_column.csv", "column amount is declared but missing", "the data has columns id, name, joined"}},
		{"csv extra column strict", Source{Format: "csv", Paths: []string{fixture("extra_column.csv")}, Columns: peopleDeclared, Strict: true},
			[]string{"column secret is in the data but not declared"}},
		{"csv bad value", Source{Format: "csv", Paths: []string{fixture("bad_value.csv")}, Columns: peopleDeclared},
			[]string{"bad_value.csv:3", "column amount", `"lots"`, "2,Brian,lots,2024-02-03"}},
		{"csv ragged row", Source{Format: "csv", Paths: []string{fixture("ragged.csv")}, Columns: peopleDeclared},
			[]string{"ragged.csv:3", "surprise"}},
		{"csv required null", Source{Format: "csv", Paths: []string{fixture("null_id.csv")}, Columns: peopleDeclared},
			[]string{"null_id.csv", "column id", "row 2", "required"}},
		{"ndjson bad value", Source{Format: "ndjson", Paths: []string{fixture("bad_value.ndjson")}, Columns: peopleDeclared},
			[]string{"bad_value.ndjson", "column id", "row 2", `"two"`, "INTEGER"}},
		{"ndjson missing column", Source{Format: "ndjson", Paths: []string{fixture("people.ndjson")}, Columns: append(peopleDeclared[:4:4], Column{"email", "VARCHAR", false})},
			[]string{"column email is declared but missing"}},
		{"parquet bad cast", Source{Format: "parquet", Paths: []string{fixture("people.parquet")}, Columns: []Column{{"name", "INTEGER", false}}},
			[]string{"column name", "row 1", `"Ada"`}},
		{"unknown type", Source{Format: "csv", Paths: []string{fixture("people.csv")}, Columns: []Column{{"id", "NOTATYPE", false}}},
			[]string{"columns[0]", "NOTATYPE"}},
		{"injection in type", Source{Format: "csv", Paths: []string{fixture("people.csv")}, Columns: []Column{{"id", "INTEGER); DROP TABLE x; --", false}}},
			[]string{"is not a DuckDB type name"}},
		{"outside sandbox", Source{Format: "csv", Paths: []string{"/etc/passwd"}},
			[]string{"/etc/passwd is outside the sandbox"}},
		{"dotdot escape", Source{Format: "csv", Paths: []string{fixture("../../duckdb.go")}},
			[]string{"outside the sandbox"}},
		{"unknown format", Source{Format: "xlsx", Paths: []string{fixture("people.csv")}},
			[]string{`format "xlsx" is not supported`}},
		{"unknown option", Source{Format: "csv", Paths: []string{fixture("people.csv")}, Options: map[string]string{"allowed_directories": "/"}},
			[]string{`csv option "allowed_directories" is not known`}},
		{"inferred unreadable", Source{Format: "ndjson", Paths: []string{fixture("people.csv")}},
			[]string{"reading ndjson data failed"}},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newSession(t)
			err := s.Register(ctx, "people", tt.src)
			wantInvalid(t, err, tt.wants...)
			t.Log(err)
			// A refused input leaves no table behind.
			if _, err := s.Schema(ctx, "people"); rhizome.Code(err) != rhizome.ENotFound {
				t.Errorf("table people exists after a refused load (err %v)", err)
			}
		})
	}
}

func TestRunModels(t *testing.T) {
	ctx := context.Background()
	s, _ := newSession(t)
	must(t, s.Register(ctx, "people", Source{Format: "csv", Paths: []string{fixture("people.csv")}, Columns: peopleDeclared}))
	must(t, s.Register(ctx, "orders", Source{Format: "csv", Paths: []string{fixture("orders.csv")}}))
	models := []Model{
		{Name: "spend", SQL: "SELECT person_id, sum(total) AS spent, count(*) AS n\nFROM orders GROUP BY person_id"},
		{Name: "customers", SQL: "WITH p AS (SELECT id, name FROM people)\nSELECT p.name, s.spent FROM p JOIN spend s ON s.person_id = p.id"},
		{Name: "top", SQL: "SELECT name FROM customers ORDER BY spent DESC LIMIT 1;"},
	}
	must(t, s.RunModels(ctx, models, []string{"people", "orders"}))
	var top string
	if err := s.conn.QueryRowContext(ctx, "SELECT name FROM top").Scan(&top); err != nil {
		t.Fatal(err)
	}
	if top != "Ada" {
		t.Errorf("top = %q, want Ada", top)
	}
	if n, _ := s.RowCount(ctx, "customers"); n != 2 {
		t.Errorf("customers rows = %d, want 2", n)
	}
	// Lineage follows models back to the inputs.
	lin, err := s.ColumnLineage(ctx, "SELECT name, spent * 2 AS twice FROM customers")
	must(t, err)
	want := map[string][]ColumnRef{"name": {{"people", "name"}}, "twice": {{"orders", "total"}}}
	if !reflect.DeepEqual(lin, want) {
		t.Errorf("lineage = %v, want %v", lin, want)
	}
	// Other shapes of a SELECT run as models too.
	must(t, s.RunModels(ctx, []Model{
		{Name: "v", SQL: "VALUES (1, 'a'), (2, 'b')"},
		{Name: "f", SQL: "FROM people -- all of it"},
		{Name: "r", SQL: "  (SELECT 1 AS x)\n"},
	}, []string{"people"}))
	if n, _ := s.RowCount(ctx, "f"); n != 3 {
		t.Errorf("f rows = %d, want 3", n)
	}
}

func TestRunModelsErrors(t *testing.T) {
	tests := []struct {
		name    string
		models  []Model
		wantPos string // file:line:col
		wants   []string
	}{
		{"later model", []Model{
			{Name: "a", SQL: "SELECT * FROM b", File: "dp.yaml", Line: 10},
			{Name: "b", SQL: "SELECT 1 AS x", File: "dp.yaml", Line: 12},
		}, "dp.yaml:10:15", []string{"pipeline.models[0].sql", "model b is defined later (models[1])"}},
		{"undeclared table", []Model{
			{Name: "a", SQL: "SELECT id\nFROM people\nJOIN salaries USING (id)", File: "dp.yaml", Line: 20},
		}, "dp.yaml:22:6", []string{"table salaries is not an input", "use one of: people"}},
		{"unknown column", []Model{
			{Name: "a", SQL: "SELECT 1 AS x", File: "dp.yaml", Line: 5},
			{Name: "b", SQL: "SELECT id,\n  nmae\nFROM people", File: "dp.yaml", Line: 7},
		}, "dp.yaml:8:3", []string{"pipeline.models[1].sql", `"nmae" not found`, "check table and column names"}},
		{"syntax error", []Model{
			{Name: "a", SQL: "SELECT id,\nFROM people WHERE", File: "dp.yaml", Line: 3},
		}, "dp.yaml:4:", []string{"syntax error", "fix the SQL syntax"}},
		{"runtime error", []Model{
			{Name: "a", SQL: "SELECT CAST(name AS INTEGER) AS n FROM people", File: "dp.yaml", Line: 3},
		}, "dp.yaml", []string{"model a failed", `Could not convert string 'Ada'`, "TRY_CAST"}},
		{"duplicate names", []Model{
			{Name: "a", SQL: "SELECT 1", File: "dp.yaml", Line: 3}, {Name: "A", SQL: "SELECT 2", File: "dp.yaml", Line: 4},
		}, "dp.yaml:4", []string{"pipeline.models[1].name", "defined twice"}},
		{"model named like input", []Model{{Name: "people", SQL: "SELECT 1"}}, "", []string{"has the name of an input"}},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newSession(t)
			must(t, s.Register(ctx, "people", Source{Format: "csv", Paths: []string{fixture("people.csv")}}))
			err := s.RunModels(ctx, tt.models, []string{"people"})
			wantInvalid(t, err, tt.wants...)
			t.Log(err)
			probs := rhizome.ProblemsOf(err)
			if len(probs) == 0 {
				t.Fatal("no problems")
			}
			if got := probs[0].Pos.String(); !strings.HasPrefix(got, tt.wantPos) {
				t.Errorf("position = %s, want %s", got, tt.wantPos)
			}
		})
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestExportParquet(t *testing.T) {
	ctx := context.Background()
	s, work := newSession(t)
	must(t, s.Register(ctx, "people", Source{Format: "csv", Paths: []string{fixture("people.csv")}, Columns: peopleDeclared}))
	out := filepath.Join(work, "out.parquet")
	rows, size, err := s.ExportParquet(ctx, "people", out)
	must(t, err)
	if fi, err := os.Stat(out); err != nil || fi.Size() != size || rows != 3 {
		t.Fatalf("rows %d size %d stat %v %v", rows, size, fi, err)
	}
	must(t, s.Register(ctx, "back", Source{Format: "parquet", Paths: []string{out}}))
	got, _ := s.Schema(ctx, "back")
	want, _ := s.Schema(ctx, "people")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip schema %v, want %v", got, want)
	}
	var diff int64
	must(t, s.conn.QueryRowContext(ctx, "SELECT count(*) FROM (SELECT * FROM people EXCEPT SELECT * FROM back)").Scan(&diff))
	if diff != 0 {
		t.Errorf("%d rows differ after round trip", diff)
	}

	t.Run("failed export leaves nothing", func(t *testing.T) {
		_, err := s.Exec(ctx, "CREATE VIEW boom AS SELECT CASE WHEN i > 200000 THEN error('boom') ELSE i END AS i FROM range(300000) t(i)")
		must(t, err)
		bad := filepath.Join(work, "bad.parquet")
		if _, _, err := s.ExportParquet(ctx, "boom", bad); err == nil || !strings.Contains(err.Error(), "boom") {
			t.Fatalf("err = %v, want boom", err)
		}
		entries, _ := os.ReadDir(work)
		for _, e := range entries {
			if strings.Contains(e.Name(), "bad.parquet") {
				t.Errorf("left behind %s", e.Name())
			}
		}
	})
	t.Run("missing table", func(t *testing.T) {
		_, _, err := s.ExportParquet(ctx, "nope", filepath.Join(work, "nope.parquet"))
		if rhizome.Code(err) != rhizome.ENotFound {
			t.Errorf("err = %v, want not found", err)
		}
	})
	t.Run("outside sandbox", func(t *testing.T) {
		_, _, err := s.ExportParquet(ctx, "people", filepath.Join(os.TempDir(), "rhizome-escape.parquet"))
		wantInvalid(t, err, "outside the sandbox")
	})
}

func TestOpenSandboxed(t *testing.T) {
	ctx := context.Background()
	e, err := Open(ctx, Options{})
	must(t, err)
	defer e.Close()
	// Two sessions on one engine: the lock holds for both.
	for range 2 {
		s, err := e.Session(ctx)
		must(t, err)
		s.Close()
	}
	if _, err := Open(ctx, Options{MemoryLimit: "lots"}); rhizome.Code(err) != rhizome.EInvalid {
		t.Errorf("bad memory limit: %v", err)
	}
	var ee *rhizome.Error
	if !errors.As(err, &ee) && err != nil {
		t.Errorf("not a *rhizome.Error: %T", err)
	}
}
