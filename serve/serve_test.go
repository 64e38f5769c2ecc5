package serve_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/access"
	"github.com/rhizome-mesh/rhizome/serve"
	"github.com/rhizome-mesh/rhizome/table"
)

func TestQueryAppliesDecision(t *testing.T) {
	e := newEnv(t, nil)
	cols, rows := rowsOf(t, e, bob, `SELECT * FROM "sales"."orders" ORDER BY id`)
	var names []string
	for _, c := range cols {
		names = append(names, c.Name+" "+c.Type)
	}
	if got := strings.Join(names, ", "); got != "id BIGINT, region VARCHAR, amount DECIMAL(10,2), email VARCHAR, deleted_at TIMESTAMP" {
		t.Errorf("columns = %s", got)
	}
	if len(rows) != 10 {
		t.Fatalf("bob sees %d rows, want the 10 EU rows:\n%s", len(rows), joinRows(rows))
	}
	for _, r := range rows {
		if r[1] != "EU" || strings.Contains(r[3], "user") || !strings.Contains(r[3], "example.com") {
			t.Errorf("row %v: want EU rows with the email masked to its domain", r)
		}
	}
	if rows[0][2] != "21" {
		t.Errorf("amount = %s, want 21 (exact decimal)", rows[0][2])
	}
	ent := e.rec.last()
	if ent.Decision != "allow" || ent.Action != serve.ActionSQL || ent.ProductID != "dp.sales.orders" || ent.Masks["email"] != access.MaskEmailDomain ||
		ent.Masks["secret"] != "hidden" || ent.RowFilter != `"region" = 'EU'` || ent.Actor != "bob" {
		t.Errorf("audit entry = %+v", ent)
	}

	_, rows = rowsOf(t, e, admin, `select count(*), count(secret) from sales.orders`)
	if rows[0][0] != "20" || rows[0][1] != "20" {
		t.Errorf("admin sees %v, want every row and the secret column", rows)
	}
	// The versioned name of the current major, a CTE, a join, EXPLAIN,
	// DESCRIBE and a trailing semicolon with a comment.
	_, rows = rowsOf(t, e, bob, `WITH o AS (SELECT * FROM sales.orders_v1) SELECT count(*) FROM o JOIN sales.orders USING (id); -- done`)
	if rows[0][0] != "10" {
		t.Errorf("join count = %v", rows)
	}
	_, rows = rowsOf(t, e, bob, `EXPLAIN SELECT * FROM sales.orders`)
	if s := joinRows(rows); strings.Contains(s, e.lake) || strings.Contains(s, ".parquet") {
		t.Errorf("EXPLAIN shows the files:\n%s", s)
	}
	_, rows = rowsOf(t, e, bob, `DESCRIBE sales.orders`)
	if len(rows) != 5 {
		t.Errorf("DESCRIBE = %v", rows)
	}
	cols2, err := e.svc.Describe(context.Background(), bob, `SELECT id, email FROM sales.orders`)
	if err != nil || len(cols2) != 2 || cols2[1].Type != "VARCHAR" {
		t.Errorf("Describe = %v, %v", cols2, err)
	}
}

func TestCatalogShowsOnlyVisibleProducts(t *testing.T) {
	e := newEnv(t, nil)
	_, rows := rowsOf(t, e, bob, `SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema NOT IN ('information_schema', 'pg_catalog') ORDER BY 1, 2`)
	if got := joinRows(rows); got != "sales|orders\n" {
		t.Errorf("bob's tables:\n%s", got)
	}
	_, rows = rowsOf(t, e, admin, `SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema NOT IN ('information_schema', 'pg_catalog') ORDER BY 1, 2`)
	if got := joinRows(rows); got != "hr|salaries\nsales|orders\n" {
		t.Errorf("admin's tables:\n%s", got)
	}
	_, rows = rowsOf(t, e, bob, `SELECT column_name FROM information_schema.columns WHERE table_name = 'orders' ORDER BY ordinal_position`)
	if got := joinRows(rows); strings.Contains(got, "secret") {
		t.Errorf("a hidden column is listed:\n%s", got)
	}
	_, rows = rowsOf(t, e, bob, `SELECT n.nspname, c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('sales', 'hr')`)
	if got := joinRows(rows); got != "sales|orders\n" {
		t.Errorf("pg_class:\n%s", got)
	}
	_, rows = rowsOf(t, e, bob, `SHOW ALL TABLES`)
	if got := joinRows(rows); strings.Contains(got, "salaries") || !strings.Contains(got, "orders") {
		t.Errorf("SHOW ALL TABLES:\n%s", got)
	}
}

func TestSQLStates(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	for _, c := range []struct{ sql, state string }{
		{`SELEC 1`, "42601"},
		{`SELECT nope FROM sales.orders`, "42703"},
		{`SELECT secret FROM sales.orders`, "42703"},
		{`SELECT no_such_function(1)`, "42883"},
		{`SELECT * FROM hr.salaries`, "42501"},
		// A domain's unknown product is a typo (product ids are public);
		// any other schema stays a refusal.
		{`SELECT * FROM sales.nothing`, "42P01"},
		{`SELECT * FROM sales.orders_v7`, "42P01"},
		{`SELECT * FROM main.nothing`, "42501"},
		{`SELECT * FROM nothing`, "42501"},
		{`SELECT * FROM generate_series(1, 5000)`, "54000"},
		{`DROP TABLE sales.orders`, "42501"},
		{`SELECT CAST('x' AS INTEGER)`, "22000"},
		{`SELECT CAST(region AS INTEGER) FROM sales.orders`, "22000"},
	} {
		res, err := e.svc.Query(ctx, bob, c.sql)
		if err == nil {
			rows := res.Stream()
			for rows.Next() {
			}
			err = rows.Err() // run-time errors come from the rows
			res.Close()
		}
		if got := serve.SQLState(err); got != c.state {
			t.Errorf("%s: SQLSTATE %s (%v), want %s", c.sql, got, err, c.state)
		}
	}
	// The statement timeout cancels a long query.
	e.svc.StatementTimeout = 300 * time.Millisecond
	start := time.Now()
	res, err := e.svc.Query(ctx, bob, `SELECT count(*) FROM range(1000000000) a, range(1000000) b WHERE a.range * b.range = -1`)
	if err == nil {
		for res.Rows.Next() {
		}
		err = res.Err(res.Rows.Err())
		res.Close()
	}
	if err == nil || time.Since(start) > 10*time.Second {
		t.Fatalf("a long query was not canceled: %v after %s", err, time.Since(start))
	}
	if serve.SQLState(err) != "57014" || rhizome.Code(err) != rhizome.EUnavailable {
		t.Errorf("timeout: %v (SQLSTATE %s), want 57014", err, serve.SQLState(err))
	}
}

// TestMaxRowsFails: a SQL result larger than MaxRows is not truncated
// silently: MaxRows rows come, then the read fails with 54000, and the
// audit log counts the rows sent and says the result was cut. A result
// of exactly MaxRows rows is whole.
func TestMaxRowsFails(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	res, err := e.svc.Query(ctx, bob, `SELECT * FROM generate_series(1, 1000000000000) LIMIT 5000000`)
	if err != nil {
		t.Fatal(err)
	}
	rows, n := res.Stream(), 0
	for rows.Next() {
		n++
	}
	err = rows.Err()
	res.Close()
	if n != 1000 || rhizome.Code(err) != rhizome.ETooLarge || serve.SQLState(err) != "54000" || !strings.Contains(fmt.Sprint(err), "LIMIT") {
		t.Errorf("got %d rows and %v (%s), want MaxRows (1000) then 54000 with a hint", n, err, serve.SQLState(err))
	}
	if d := e.rec.lastDone(); d.Action != serve.ActionSQL+".done" || d.Rows != 1000 || d.Details["truncated"] != true || d.Actor != "bob" {
		t.Errorf("completion entry = %+v, want sql.query.done with 1000 rows, truncated", d)
	}
	_, all := rowsOf(t, e, bob, `SELECT * FROM range(1000)`)
	if len(all) != 1000 {
		t.Errorf("a result of exactly MaxRows rows: got %d", len(all))
	}
	if d := e.rec.lastDone(); d.Rows != 1000 || d.Details != nil {
		t.Errorf("completion entry = %+v, want 1000 rows, not truncated", d)
	}
}

// TestShowTablesListsProducts: SHOW TABLES lists the products the caller
// may read, qualified (DuckDB's own would list the empty schema main).
func TestShowTablesListsProducts(t *testing.T) {
	e := newEnv(t, nil)
	_, rows := rowsOf(t, e, bob, `SHOW TABLES`)
	if got := joinRows(rows); !strings.Contains(got, "sales.orders") || strings.Contains(got, "salaries") {
		t.Errorf("SHOW TABLES = %s, want sales.orders and not hr.salaries", got)
	}
	// The pg_get_* functions BI catalog queries call that show no view
	// definition are allowed (pg_get_viewdef is in the bypass corpus).
	_, rows = rowsOf(t, e, bob, `SELECT pg_get_expr(NULL, 0) IS NULL, pg_get_constraintdef(0) IS NULL`)
	if len(rows) != 1 {
		t.Errorf("pg_get_expr: %v", rows)
	}
}

// TestReadsAuditRowCounts: each read is audited before its first row and
// its row count once closed (".done"), over SQL and the REST reader.
func TestReadsAuditRowCounts(t *testing.T) {
	e := newEnv(t, nil)
	_, rows := rowsOf(t, e, bob, `SELECT id FROM sales.orders LIMIT 3`)
	if len(rows) != 3 {
		t.Fatalf("rows = %v", rows)
	}
	if d := e.rec.lastDone(); d.Action != serve.ActionSQL+".done" || d.Rows != 3 || d.ProductID != "dp.sales.orders" || d.RowFilter == "" {
		t.Errorf("SQL completion = %+v", d)
	}
	rd, err := e.svc.Read(context.Background(), bob, "dp.sales.orders", serve.ReadRequest{Limit: 4})
	if err != nil {
		t.Fatal(err)
	}
	for rd.Next() {
	}
	rd.Close()
	if d := e.rec.lastDone(); d.Action != serve.ActionRead+".done" || d.Rows != 4 || d.Masks["email"] == "" {
		t.Errorf("REST completion = %+v", d)
	}
}

func TestRead(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	read := func(subj access.Subject, req serve.ReadRequest) ([]string, string, error) {
		t.Helper()
		r, err := e.svc.Read(ctx, subj, "dp.sales.orders", req)
		if err != nil {
			return nil, "", err
		}
		defer r.Close()
		var out []string
		for r.Next() {
			out = append(out, fmt.Sprint(r.Values()...))
		}
		return out, r.Cursor(), r.Err()
	}
	f := func(s string) serve.Filter {
		x, err := serve.ParseFilter(s)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	got, _, err := read(bob, serve.ReadRequest{Columns: []string{"id", "amount"}, Filters: []serve.Filter{f("amount:gt:100"), f("id:in:10,12,14,15")}, Sort: serve.ParseSort("-id")})
	if err != nil || strings.Join(got, ";") != "14 147;12 126;10 105" {
		t.Errorf("filtered read = %q, %v", got, err)
	}
	got, _, err = read(bob, serve.ReadRequest{Columns: []string{"id"}, Filters: []serve.Filter{f("deleted_at:is_null"), f("email:like:%example.com")}, Sort: serve.ParseSort("id")})
	if err != nil || strings.Join(got, ";") != "2;4;6;8;12;14;16;18" {
		t.Errorf("null/like read = %q, %v", got, err)
	}
	// Injection in a value is a value.
	got, _, err = read(bob, serve.ReadRequest{Filters: []serve.Filter{f("region:eq:EU' OR 1=1 --")}})
	if err != nil || len(got) != 0 {
		t.Errorf("injection read = %q, %v", got, err)
	}
	// Typed errors.
	for _, bad := range []string{"id:eq:abc", "amount:gt:1e", "deleted_at:lt:yesterday", "nope:eq:1", "id:like:1"} {
		_, _, err := read(bob, serve.ReadRequest{Filters: []serve.Filter{f(bad)}})
		if rhizome.Code(err) != rhizome.EInvalid {
			t.Errorf("filter %s: %v, want EInvalid", bad, err)
		}
	}
	// Pagination: pages of 3 over 10 rows, sorted by region (all equal,
	// so the tiebreak decides), then with duplicates of the whole key.
	var all []string
	cur := ""
	for i := 0; i < 10; i++ {
		page, next, err := read(bob, serve.ReadRequest{Columns: []string{"id"}, Sort: serve.ParseSort("-region"), Limit: 3, Cursor: cur})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if next == "" {
			break
		}
		cur = next
	}
	if strings.Join(all, ",") != "2,4,6,8,10,12,14,16,18,20" {
		t.Errorf("pages = %v", all)
	}
	// as_of: an older snapshot.
	old := e.publish(t, "dp.sales.orders", "1.0.0", `SELECT * FROM (`+ordersSQL+`) WHERE id <= 4`)
	got, _, _ = read(admin, serve.ReadRequest{Columns: []string{"id"}, Sort: serve.ParseSort("id")})
	if strings.Join(got, ",") != "1,2,3,4" {
		t.Errorf("current = %v", got)
	}
	snaps, _ := e.tables.Snapshots(ctx, tableRef())
	got, _, err = read(admin, serve.ReadRequest{Columns: []string{"id"}, AsOf: fmt.Sprint(snaps[0].ID)})
	if err != nil || len(got) != 20 {
		t.Errorf("as_of first snapshot = %d rows, %v", len(got), err)
	}
	got, _, err = read(admin, serve.ReadRequest{Columns: []string{"id"}, AsOf: fmt.Sprint(old)})
	if err != nil || len(got) != 4 {
		t.Errorf("as_of latest snapshot = %d rows, %v", len(got), err)
	}
	got, _, err = read(admin, serve.ReadRequest{Columns: []string{"id"}, AsOf: "1.0.0"})
	if err != nil || len(got) != 4 {
		t.Errorf("as_of version = %d rows, %v", len(got), err)
	}
	_, _, err = read(admin, serve.ReadRequest{AsOf: "12345678"})
	if rhizome.Code(err) != rhizome.ENotFound {
		t.Errorf("as_of unknown snapshot: %v", err)
	}
	_, _, err = read(admin, serve.ReadRequest{AsOf: "2001-01-01T00:00:00Z"})
	if rhizome.Code(err) != rhizome.ENotFound || !strings.Contains(err.Error(), "no snapshot as of 2001-01-01T00:00:00Z") {
		t.Errorf("as_of before the first snapshot: %v", err)
	}
	_, _, err = read(admin, serve.ReadRequest{AsOf: "last tuesday"})
	if rhizome.Code(err) != rhizome.EInvalid {
		t.Errorf("as_of garbage: %v", err)
	}
}

func TestPaginationWithDuplicates(t *testing.T) {
	e := newEnv(t, nil)
	e.product(t, "dp.test.dups", "test", "1.0.0", nil)
	e.publish(t, "dp.test.dups", "1.0.0", `SELECT 1 AS k FROM range(7)`)
	ctx := context.Background()
	total, cur := 0, ""
	for i := 0; i < 10; i++ {
		r, err := e.svc.Read(ctx, admin, "dp.test.dups", serve.ReadRequest{Limit: 2, Cursor: cur})
		if err != nil {
			t.Fatal(err)
		}
		for r.Next() {
			total++
		}
		cur = r.Cursor()
		r.Close()
		if cur == "" {
			break
		}
	}
	if total != 7 {
		t.Errorf("paged over 7 identical rows, got %d", total)
	}
}

func TestSchema(t *testing.T) {
	e := newEnv(t, nil)
	sc, err := e.svc.Schema(context.Background(), bob, "dp.sales.orders", "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range sc.Columns {
		got = append(got, c.Name+":"+c.Type+":"+c.Classification+":"+c.Mask)
	}
	if strings.Join(got, " ") != "id:BIGINT:: region:VARCHAR:: amount:DECIMAL(10,2):: email:VARCHAR:pii:email_domain deleted_at:TIMESTAMP::" {
		t.Errorf("schema = %v", got)
	}
	if sc.Relation != `"sales"."orders"` || sc.Table != "sales.orders_v1" || !sc.RowFilter {
		t.Errorf("schema = %+v", sc)
	}
	if _, err := e.svc.Schema(context.Background(), bob, "dp.hr.salaries", ""); rhizome.Code(err) != rhizome.EForbidden {
		t.Errorf("schema of a denied product: %v", err)
	}
}

func tableRef() table.Ref { return table.RefFor("dp.sales.orders", "1.0.0") }

// TestServedCountsReads: each product a successful read touches is
// reported to Served (the availability SLO); refusals and the caller's
// own errors are not.
func TestServedCountsReads(t *testing.T) {
	e := newEnv(t, nil)
	var got []string
	e.svc.Served = func(productID string, ok bool) { got = append(got, fmt.Sprintf("%s %v", productID, ok)) }
	rowsOf(t, e, bob, `SELECT count(*) FROM sales.orders`)
	for _, q := range []string{`SELECT * FROM hr.salaries`, `SELECT nope FROM sales.orders`, `SELECT * FROM read_csv('/etc/passwd')`} {
		if res, err := e.svc.Query(context.Background(), bob, q); err == nil {
			res.Close()
			t.Errorf("%s ran", q)
		}
	}
	if want := []string{"dp.sales.orders true"}; !slices.Equal(got, want) {
		t.Errorf("Served calls = %v, want %v", got, want)
	}
}
