package serve_test

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/serve"
	"github.com/rhizome-mesh/rhizome/table"
)

// TestBypassCorpus tries to get around the governed read path: reading
// files and URLs, other products through views, CTEs, subqueries and
// the catalog, configuration, several statements, comment and unicode
// tricks, side effects. Bob may read dp.sales.orders (masked, EU rows)
// and not dp.hr.salaries. Every attempt must be refused with EForbidden
// (SQLSTATE 42501 / HTTP 403) and leave an audit entry that denies.
func TestBypassCorpus(t *testing.T) {
	t.Run("access.Service", func(t *testing.T) { bypassCorpus(t, newRealEnv(t)) })
	t.Run("test rules", func(t *testing.T) { bypassCorpus(t, newEnv(t, nil)) })
}

func bypassCorpus(t *testing.T, e *env) {
	ctx := context.Background()
	files, _, err := e.tables.DataFiles(ctx, table.RefFor("dp.sales.orders", "1.0.0"), table.AsOf{})
	if err != nil || len(files) == 0 {
		t.Fatal(files, err)
	}
	file := files[0]
	dir := filepath.Dir(file)
	sql := []string{
		`SELECT * FROM read_csv('/etc/passwd')`,
		`SELECT * FROM read_csv_auto('/etc/passwd')`,
		`SELECT * FROM read_csv(['/etc/passwd', '/etc/hosts'])`,
		`SELECT * FROM '/etc/passwd'`,
		`FROM '/etc/passwd'`,
		`SELECT * FROM read_parquet('` + file + `')`,
		`SELECT * FROM '` + file + `'`,
		`SELECT * FROM "` + file + `"`,
		`SELECT * FROM read_parquet('` + dir + `/*.parquet')`,
		`SELECT * FROM parquet_scan('` + file + `')`,
		`SELECT * FROM parquet_metadata('` + file + `')`,
		`SELECT * FROM glob('/etc/*')`,
		`SELECT * FROM read_text('/etc/hostname')`,
		`SELECT * FROM read_blob('/etc/hostname')`,
		`SELECT * FROM read_json('http://example.com/x.json')`,
		`SELECT * FROM 'https://example.com/data.parquet'`,
		`COPY (SELECT * FROM sales.orders) TO '/tmp/x.csv'`,
		`COPY sales.orders TO '/tmp/x.parquet' (FORMAT parquet)`,
		`ATTACH ':memory:' AS m`,
		`ATTACH '/tmp/other.duckdb' AS o`,
		`DETACH memory`,
		`INSTALL httpfs`,
		`LOAD httpfs`,
		`SET enable_external_access = true`,
		`SET allowed_directories = ['/']`,
		`RESET allowed_directories`,
		`PRAGMA database_list`,
		`CALL pragma_version()`,
		`CREATE TABLE t AS SELECT 1`,
		`CREATE VIEW sales.x AS SELECT * FROM hr.salaries`,
		`CREATE MACRO m() AS 1`,
		`CREATE TEMP TABLE t (x INT)`,
		`EXPORT DATABASE '/tmp/dump'`,
		`USE hr`,
		`CHECKPOINT`,
		`SELECT 1; SELECT * FROM hr.salaries`,
		`SELECT 1; DROP VIEW sales.orders`,
		`SELECT 1 /* ; */ ; COPY sales.orders TO '/tmp/y.csv'`,
		"-- a comment\nATTACH 'x.db'",
		`/* SELECT */ INSTALL httpfs`,
		`SELECT * FROM "hr"."salaries"`,
		`SELECT * FROM hr.salaries_v1`,
		`SELECT * FROM HR.SALARIES`,
		`WITH x AS (SELECT * FROM hr.salaries) SELECT * FROM x`,
		`WITH salaries AS (SELECT 1 AS id) SELECT * FROM hr.salaries`,
		`SELECT * FROM (SELECT * FROM hr.salaries) s`,
		`SELECT (SELECT max(salary) FROM hr.salaries)`,
		`SELECT * FROM sales.orders WHERE id IN (SELECT id FROM hr.salaries)`,
		`SELECT id FROM sales.orders UNION ALL SELECT id FROM hr.salaries`,
		`DESCRIBE hr.salaries`,
		`SUMMARIZE hr.salaries`,
		`EXPLAIN SELECT * FROM hr.salaries`,
		`EXPLAIN ANALYZE SELECT * FROM sales.orders`,
		`SELECT * FROM information_schema.views`,
		`SELECT view_definition FROM information_schema.views WHERE table_name = 'orders'`,
		`SELECT sql FROM duckdb_views()`,
		`SELECT * FROM duckdb_tables()`,
		`SELECT * FROM duckdb_settings()`,
		`SELECT * FROM duckdb_extensions()`,
		`SELECT * FROM pg_catalog.pg_views`,
		`SELECT * FROM pg_settings`,
		`SELECT * FROM sqlite_master`,
		`SELECT pg_get_viewdef('sales.orders')`,
		`SELECT getenv('HOME')`,
		`SELECT current_setting('allowed_directories')`,
		`SELECT * FROM query('SELECT * FROM hr.salaries')`,
		`SELECT * FROM query_table('hr.salaries')`,
		`SELECT json_execute_serialized_sql(json_serialize_sql('SELECT * FROM hr.salaries'))`,
		`SELECT * FROM "ѕales"."orders"`, // Cyrillic ѕ
		`SELECT * FROM ｈｒ.ｓａｌａｒｉｅｓ`,      // fullwidth
		`SELECT * FROM memory.hr.salaries`,
		`SELECT * FROM memory.main.orders`,
		`SELECT * FROM orders`,
		`SELECT * FROM main.orders`,
		`SELECT * FROM system.main.duckdb_settings()`,
		`SELECT setseed(0.5)`,
		`VACUUM`,
	}
	for _, q := range sql {
		before := len(e.rec.entries())
		res, err := e.svc.Query(ctx, bob, q)
		if err == nil {
			res.Close()
			t.Errorf("SQL not refused: %s", q)
			continue
		}
		if rhizome.Code(err) != rhizome.EForbidden || serve.SQLState(err) != "42501" {
			t.Errorf("SQL %s: %v (code %s, SQLSTATE %s), want forbidden / 42501", q, err, rhizome.Code(err), serve.SQLState(err))
		}
		if strings.Contains(err.Error(), dir) && !strings.Contains(q, dir) {
			t.Errorf("SQL %s: the error shows the lake: %v", q, err)
		}
		wantDenied(t, e, before, q)
	}

	// REST: reads of one product with columns, filters, sort and as_of.
	hrSnap, err := e.tables.Current(ctx, table.RefFor("dp.hr.salaries", "1.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	f := func(s string) serve.Filter {
		x, err := serve.ParseFilter(s)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	type rest struct {
		name    string
		product string
		req     serve.ReadRequest
	}
	for _, c := range []rest{
		{"a product bob may not read", "dp.hr.salaries", serve.ReadRequest{}},
		{"a denied product as of its snapshot", "dp.hr.salaries", serve.ReadRequest{AsOf: "snapshot:" + itoa(hrSnap.ID)}},
		{"a denied product as of a version", "dp.hr.salaries", serve.ReadRequest{AsOf: "1.0.0"}},
		{"a denied product paged", "dp.hr.salaries", serve.ReadRequest{Limit: 1}},
		{"a hidden column selected", "dp.sales.orders", serve.ReadRequest{Columns: []string{"secret"}}},
		{"a hidden column among others", "dp.sales.orders", serve.ReadRequest{Columns: []string{"id", "SECRET"}}},
		{"sort by a hidden column", "dp.sales.orders", serve.ReadRequest{Sort: serve.ParseSort("-secret")}},
		{"a filter on a hidden column", "dp.sales.orders", serve.ReadRequest{Filters: []serve.Filter{f("secret:like:secret-1%")}}},
		{"a null filter on a hidden column", "dp.sales.orders", serve.ReadRequest{Filters: []serve.Filter{f("secret:is_null")}}},
	} {
		before := len(e.rec.entries())
		r, err := e.svc.Read(ctx, bob, c.product, c.req)
		if err == nil {
			r.Close()
			t.Errorf("REST %s: not refused", c.name)
			continue
		}
		if rhizome.Code(err) != rhizome.EForbidden {
			t.Errorf("REST %s: %v, want forbidden", c.name, err)
		}
		wantDenied(t, e, before, c.name)
	}

	// Injection through filter values and names: values are parameters,
	// names must be visible columns; no row outside bob's view comes back.
	for _, s := range []string{`region:eq:EU' OR 1=1 --`, `region:eq:'; DROP VIEW sales.orders; --`, `region:in:EU,US') OR ('1'='1`,
		`email:like:%' OR region = 'US`, `id:eq:1 OR 1=1`} {
		r, err := e.svc.Read(ctx, bob, "dp.sales.orders", serve.ReadRequest{Filters: []serve.Filter{f(s)}})
		if err != nil {
			if rhizome.Code(err) != rhizome.EInvalid {
				t.Errorf("filter %s: %v", s, err)
			}
			continue
		}
		for r.Next() {
			if v := r.Values(); v[1] != "EU" || strings.Contains(v[3].(string), "user") {
				t.Errorf("filter %s leaked %v", s, v)
			}
		}
		r.Close()
	}
	for _, s := range []string{`region" OR 1=1 --:eq:x`, `id) OR (1=1:eq:1`} {
		_, err := e.svc.Read(ctx, bob, "dp.sales.orders", serve.ReadRequest{Filters: []serve.Filter{f(s)}})
		if rhizome.Code(err) != rhizome.EInvalid {
			t.Errorf("filter %s: %v, want EInvalid (no such column)", s, err)
		}
	}
}

func wantDenied(t *testing.T, e *env, before int, what string) {
	t.Helper()
	all := e.rec.entries()
	for _, ent := range all[before:] {
		if ent.Decision == "deny" && ent.Actor == "bob" && ent.Reason != "" {
			return
		}
	}
	t.Errorf("%s: no audit entry denies it (entries: %+v)", what, all[before:])
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
