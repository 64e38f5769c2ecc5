package server_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	pqfile "github.com/apache/arrow-go/v18/parquet/file"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/access"
	"github.com/rhizome-mesh/rhizome/audit"
	"github.com/rhizome-mesh/rhizome/catalog"
	"github.com/rhizome-mesh/rhizome/engine/duckdb"
	"github.com/rhizome-mesh/rhizome/identity"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/metastore/sqlite"
	"github.com/rhizome-mesh/rhizome/serve"
	"github.com/rhizome-mesh/rhizome/server"
	"github.com/rhizome-mesh/rhizome/table"
)

// The data mesh of the data API tests: dp.shop.orders is confidential;
// ann (analytics) has a grant limited to EU rows; pia has none; card is
// shown as its last four digits.
const dataMesh = `apiVersion: rhizome/v1
kind: Domain
name: shop
owner_teams: [shop-team]
---
apiVersion: rhizome/v1
kind: Team
name: shop-team
domain: shop
members:
  - {principal: olga, roles: [technical_owner]}
  - {principal: sam, roles: [steward]}
---
apiVersion: rhizome/v1
kind: Team
name: analytics
members:
  - {principal: ann, roles: [developer]}
---
apiVersion: rhizome/v1
kind: Team
name: partners
members:
  - {principal: pia, roles: [developer]}
---
apiVersion: rhizome/v1
kind: Policy
name: data-classification
description: Restricted columns are hashed for readers below restricted
scope: global
domains_applicable: [all]
masks:
  - {classification: restricted, with: hash}
---
apiVersion: rhizome/v1
kind: Policy
name: shop-masks
scope: domain
domain: shop
masks:
  - {column: card, with: last4, when: always}
---
apiVersion: rhizome/v1
kind: DataProduct
id: dp.shop.orders
name: Shop orders
owner_team: shop-team
domain: shop
current_version: 1.0.0
sensitivity_level: confidential
contract: contract-shop-orders
---
apiVersion: v3.1.0
kind: DataContract
id: contract-shop-orders
version: 1.0.0
status: active
domain: shop
dataProduct: dp.shop.orders
schema:
  - name: orders
    properties:
      - {name: id, physicalType: BIGINT, classification: public, description: Order number}
      - {name: region, physicalType: VARCHAR, classification: internal}
      - {name: amount, physicalType: "DECIMAL(18,2)", classification: confidential}
      - {name: email, physicalType: VARCHAR, classification: restricted, tags: [pii]}
      - {name: card, physicalType: VARCHAR, classification: internal}
      - {name: ordered_at, physicalType: TIMESTAMP, classification: internal}
`

type dataEnv struct {
	t      *testing.T
	url    string
	tokens map[string]string
	log    *audit.Log
	tables *table.Catalog
	dir    string
}

func newDataEnv(t *testing.T, rows int) *dataEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	clock := rhizome.SystemClock{}
	store, err := sqlite.Open(ctx, filepath.Join(dir, "m.db"), metastore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cat := catalog.New(store, catalog.Options{Clock: clock})
	if _, err := cat.Apply(ctx, &rhizome.Principal{ID: "admin", Admin: true}, rhizome.ApplyRequest{Files: []rhizome.SourceFile{{Name: "mesh.yaml", Content: dataMesh}}}); err != nil {
		t.Fatal(err)
	}
	log := audit.Open(audit.Options{Store: store})
	t.Cleanup(func() { log.Close() })
	acc := access.New(access.Options{Store: store, Clock: clock, Audit: log})
	teams, _ := store.TeamsOf(ctx, "ann")
	req, err := acc.RequestAccess(ctx, access.Subject{ID: "ann", Teams: teams}, access.NewRequest{ProductID: "dp.shop.orders", Purpose: "analysis", Duration: "30d"})
	if err != nil {
		t.Fatal(err)
	}
	steward, _ := store.TeamsOf(ctx, "sam")
	if _, _, err := acc.Approve(ctx, access.Subject{ID: "sam", Teams: steward}, req.ID, access.Approval{RowFilter: "region = 'EU'"}); err != nil {
		t.Fatal(err)
	}
	tables, err := table.Open(ctx, table.Options{DB: store.DB(), Dialect: "sqlite", Warehouse: "file://" + filepath.Join(dir, "lake")})
	if err != nil {
		t.Fatal(err)
	}
	e := &dataEnv{t: t, log: log, tables: tables, dir: dir, tokens: map[string]string{}}
	e.publish(fmt.Sprintf(`SELECT i::BIGINT AS id, CASE WHEN i %% 2 = 0 THEN 'EU' ELSE 'US' END AS region,
  CAST(i * 1.25 AS DECIMAL(18,2)) AS amount, 'user' || i || '@example.com' AS email,
  '4111-0000-0000-' || lpad(i::VARCHAR, 4, '0') AS card,
  TIMESTAMP '2026-01-01 00:00:00' + INTERVAL (i) MINUTE AS ordered_at
FROM range(1, %d) r(i)`, rows+1))
	svc := &serve.Service{Tables: tables, Store: store, Decider: acc, Audit: log, CacheDir: filepath.Join(dir, "serve"), MaxRows: 100000}
	t.Cleanup(func() { svc.Close() })
	srv := server.New(server.Deps{Store: store, Catalog: cat, Access: acc, Tables: tables, Audit: log, Serve: svc, Version: "test"})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	e.url = ts.URL
	m := identity.Minter{Store: store, Clock: clock}
	for _, p := range []string{"ann", "pia", "admin"} {
		_, secret, err := m.Create(ctx, identity.TokenSpec{Principal: p, Admin: p == "admin"})
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[p] = secret
	}
	return e
}

func (e *dataEnv) publish(query string) {
	e.t.Helper()
	ctx := context.Background()
	work := filepath.Join(e.dir, fmt.Sprintf("work-%d", time.Now().UnixNano()))
	eng, err := duckdb.Open(ctx, duckdb.Options{AllowedDirs: []string{work}, TempDir: filepath.Join(work, "tmp")})
	if err != nil {
		e.t.Fatal(err)
	}
	defer eng.Close()
	sess, err := eng.Session(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	defer sess.Close()
	if _, err := sess.Exec(ctx, "CREATE VIEW out AS "+query); err != nil {
		e.t.Fatal(err)
	}
	f := filepath.Join(work, "part.parquet")
	if _, _, err := sess.ExportParquet(ctx, "out", f); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.tables.Publish(ctx, table.PublishRequest{Ref: table.RefFor("dp.shop.orders", "1.0.0"), Files: []string{f}, Mode: table.Replace,
		Properties: map[string]string{"product-version": "1.0.0"}}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *dataEnv) get(who, path string, header map[string]string) (*http.Response, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+e.tokens[who])
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func (e *dataEnv) post(who, path string, body any) (*http.Response, []byte) {
	e.t.Helper()
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", e.url+path, bytes.NewReader(raw))
	req.Header.Set("Authorization", "Bearer "+e.tokens[who])
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

type dataPage struct {
	Columns []serve.Column   `json:"columns"`
	Rows    []map[string]any `json:"rows"`
	Count   int              `json:"count"`
	Next    string           `json:"next_cursor"`
	Error   string           `json:"error"`
}

func TestDataAPI(t *testing.T) {
	e := newDataEnv(t, 50)
	base := "/api/v1/products/dp.shop.orders/data"

	// JSON: filters, sort, columns; masks and the grant's row filter.
	resp, body := e.get("ann", base+"?columns=id,region,email,card,amount&filter=amount:gt:10&filter=id:in:10,12,13,40&sort=-id", nil)
	var page dataPage
	if resp.StatusCode != 200 || json.Unmarshal(body, &page) != nil {
		t.Fatalf("read: %d %s", resp.StatusCode, body)
	}
	if page.Count != 3 || len(page.Rows) != 3 || page.Rows[0]["id"] != float64(40) || page.Rows[2]["id"] != float64(10) {
		t.Fatalf("rows = %s", body)
	}
	for _, r := range page.Rows {
		if r["region"] != "EU" || !strings.HasSuffix(r["card"].(string), fmt.Sprintf("%04d", int(r["id"].(float64)))) ||
			strings.Contains(r["card"].(string), "4111") {
			t.Errorf("row %v: want EU rows, card masked to its last 4", r)
		}
	}
	if page.Rows[0]["amount"] != float64(50) {
		t.Errorf("amount = %v", page.Rows[0]["amount"])
	}

	// Pagination: pages of 7 over ann's 25 rows, in order, no repeats.
	var ids []int
	cursor := ""
	for i := 0; i < 10; i++ {
		q := "?columns=id&sort=id&limit=7"
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		resp, body := e.get("ann", base+q, nil)
		var p dataPage
		if resp.StatusCode != 200 || json.Unmarshal(body, &p) != nil {
			t.Fatalf("page: %d %s", resp.StatusCode, body)
		}
		for _, r := range p.Rows {
			ids = append(ids, int(r["id"].(float64)))
		}
		if p.Next == "" {
			break
		}
		cursor = p.Next
	}
	if len(ids) != 25 || ids[0] != 2 || ids[24] != 50 {
		t.Errorf("paged ids = %v", ids)
	}

	// NDJSON via Accept; CSV with a header; the cursor in a trailer.
	resp, body = e.get("ann", base+"?columns=id,region&sort=id&limit=3", map[string]string{"Accept": "application/x-ndjson"})
	if lines := strings.Split(strings.TrimSpace(string(body)), "\n"); resp.StatusCode != 200 || len(lines) != 3 || lines[0] != `{"id":2,"region":"EU"}` {
		t.Errorf("ndjson: %d %q", resp.StatusCode, body)
	}
	if resp.Trailer.Get(server.NextCursorHeader) == "" {
		t.Errorf("ndjson: no cursor trailer")
	}
	resp, body = e.get("ann", base+"?format=csv&columns=id,amount,ordered_at&sort=id", nil)
	recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil || resp.StatusCode != 200 || len(recs) != 26 || strings.Join(recs[0], ",") != "id,amount,ordered_at" || strings.Join(recs[1], ",") != "2,2.5,2026-01-01T00:02:00Z" {
		t.Errorf("csv: %d %v %v", resp.StatusCode, err, recs[:min(len(recs), 2)])
	}

	// Arrow IPC and Parquet, read back.
	resp, body = e.get("ann", base+"?format=arrow", nil)
	rd, err := ipc.NewReader(bytes.NewReader(body))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("arrow: %d %v %s", resp.StatusCode, err, body)
	}
	n := 0
	for rd.Next() {
		n += int(rd.RecordBatch().NumRows())
	}
	if n != 25 || rd.Schema().NumFields() != 6 || rd.Schema().Field(2).Type.String() != "decimal(18, 2)" {
		t.Errorf("arrow: %d rows, schema %v", n, rd.Schema())
	}
	rd.Release()
	resp, body = e.get("ann", base+"?filter=region:eq:EU", map[string]string{"Accept": "application/vnd.apache.parquet"})
	pf, err := pqfile.NewParquetReader(bytes.NewReader(body))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("parquet: %d %v", resp.StatusCode, err)
	}
	if pf.NumRows() != 25 || pf.MetaData().Schema.NumColumns() != 6 {
		t.Errorf("parquet: %d rows, %d columns", pf.NumRows(), pf.MetaData().Schema.NumColumns())
	}
	pf.Close()
	_ = memory.DefaultAllocator

	// Errors: typed filters, unknown columns, bad cursors, no grant.
	for q, want := range map[string]int{
		"?filter=amount:gt:lots":            422,
		"?filter=id:eq:1%20OR%201=1":        422,
		"?filter=nope:eq:1":                 422,
		"?filter=id:between:1":              422,
		"?sort=nope":                        422,
		"?limit=3&cursor=garbage":           422,
		"?as_of=yesterday":                  422,
		"?format=xlsx":                      422,
		"?filter=region:eq:US":              200, // a value: no US rows for ann
		"?filter=region:eq:EU'%20OR%20'1=1": 200,
	} {
		resp, body := e.get("ann", base+q, nil)
		if resp.StatusCode != want {
			t.Errorf("%s: %d %s, want %d", q, resp.StatusCode, body, want)
		}
		if want == 200 {
			var p dataPage
			json.Unmarshal(body, &p)
			if p.Count != 0 && q != "" {
				t.Errorf("%s: %d rows leaked", q, p.Count)
			}
		}
	}
	resp, body = e.get("pia", base, nil)
	if resp.StatusCode != 403 {
		t.Errorf("pia: %d %s", resp.StatusCode, body)
	}
	resp, _ = e.get("pia", "/api/v1/products/dp.shop.orders/schema", nil)
	if resp.StatusCode != 403 {
		t.Errorf("pia schema: %d", resp.StatusCode)
	}

	// Schema.
	resp, body = e.get("ann", "/api/v1/products/dp.shop.orders/schema", nil)
	var sc serve.Schema
	if resp.StatusCode != 200 || json.Unmarshal(body, &sc) != nil {
		t.Fatalf("schema: %d %s", resp.StatusCode, body)
	}
	got := map[string]serve.SchemaColumn{}
	for _, c := range sc.Columns {
		got[c.Name] = c
	}
	if got["email"].Classification != "restricted" || got["card"].Mask != access.MaskLast4 ||
		got["id"].Description != "Order number" || got["amount"].Type != "DECIMAL(18,2)" || !sc.RowFilter || sc.Relation != `"shop"."orders"` {
		t.Errorf("schema = %s", body)
	}

	// SQL over REST.
	resp, body = e.post("ann", "/api/v1/query", map[string]string{"sql": `SELECT count(*) AS n, count(DISTINCT region) AS regions FROM shop.orders`})
	if resp.StatusCode != 200 || !strings.Contains(string(body), `{"n":25,"regions":1}`) {
		t.Errorf("query: %d %s", resp.StatusCode, body)
	}
	// Dates are dates in JSON and CSV, not midnight timestamps; a typo in
	// a product domain is 404, a relation elsewhere 403.
	resp, body = e.post("ann", "/api/v1/query", map[string]string{"sql": `SELECT DATE '2022-03-01' AS d, TIMESTAMP '2022-03-01 10:00:00' AS ts`})
	if resp.StatusCode != 200 || !strings.Contains(string(body), `{"d":"2022-03-01","ts":"2022-03-01T10:00:00Z"}`) {
		t.Errorf("dates: %d %s", resp.StatusCode, body)
	}
	resp, body = e.post("ann", "/api/v1/query", map[string]string{"sql": `SELECT DATE '2022-03-01' AS d`, "format": "csv"})
	if resp.StatusCode != 200 || string(body) != "d\n2022-03-01\n" {
		t.Errorf("dates in CSV: %d %q", resp.StatusCode, body)
	}
	resp, body = e.post("ann", "/api/v1/query", map[string]string{"sql": `SELECT * FROM shop.ordres`})
	if resp.StatusCode != 404 {
		t.Errorf("unknown product: %d %s", resp.StatusCode, body)
	}
	resp, body = e.post("ann", "/api/v1/query", map[string]string{"sql": `SELECT * FROM main.ordres`})
	if resp.StatusCode != 403 {
		t.Errorf("relation outside the domains: %d %s", resp.StatusCode, body)
	}
	resp, body = e.post("ann", "/api/v1/query", map[string]string{"sql": `SELECT * FROM read_parquet('/etc/passwd')`})
	if resp.StatusCode != 403 {
		t.Errorf("refused query: %d %s", resp.StatusCode, body)
	}
	resp, body = e.post("pia", "/api/v1/query", map[string]string{"sql": `SELECT * FROM shop.orders`, "format": "csv"})
	if resp.StatusCode != 403 {
		t.Errorf("pia query: %d %s", resp.StatusCode, body)
	}

	// Audit: reads allowed and denied, with masks and the row filter.
	if err := e.log.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	pg, err := e.log.Query(context.Background(), audit.Filter{Principal: "pia", Decision: "deny", Limit: 100})
	if err != nil || len(pg.Items) < 3 {
		t.Fatalf("pia's denials: %v, %v", pg, err)
	}
	pg, err = e.log.Query(context.Background(), audit.Filter{Principal: "ann", Action: serve.ActionExport, Limit: 100})
	if err != nil || len(pg.Items) < 3 || pg.Items[0].Masks["card"] != access.MaskLast4 || pg.Items[0].RowFilter == "" {
		t.Fatalf("ann's exports: %+v, %v", pg, err)
	}
}
