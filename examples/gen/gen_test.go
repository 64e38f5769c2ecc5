package main

import (
	"bytes"
	"encoding/csv"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// dataDir holds the committed output; tests run in the package directory.
const dataDir = "../data"

func TestGenerateIsDeterministic(t *testing.T) {
	a, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	b, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != len(b) {
		t.Fatalf("%d files, then %d", len(a), len(b))
	}
	for i := range a {
		if a[i].Name != b[i].Name || !bytes.Equal(a[i].Data, b[i].Data) {
			t.Errorf("%s: two runs differ", a[i].Name)
		}
	}
}

// TestCommittedDataIsCurrent fails when examples/data was edited by hand or
// the generator changed without `go run ./examples/gen`.
func TestCommittedDataIsCurrent(t *testing.T) {
	out := t.TempDir()
	if err := run([]string{"-out", out}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	generated := csvFiles(t, out)
	committed := csvFiles(t, dataDir)
	if !slices.Equal(generated, committed) {
		t.Fatalf("examples/data holds %v, the generator writes %v", committed, generated)
	}
	for _, name := range generated {
		want, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dataDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("examples/data/%s is stale: run `go run ./examples/gen`", name)
		}
	}
}

func csvFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.csv"))
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range names {
		names[i] = filepath.Base(n)
	}
	return names
}

func TestReferentialIntegrity(t *testing.T) {
	files, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	tables := map[string][]map[string]string{}
	for _, f := range files {
		tables[strings.TrimSuffix(f.Name, ".csv")] = readCSV(t, f)
	}
	keys := func(table, col string) map[string]map[string]string {
		m := map[string]map[string]string{}
		for _, row := range tables[table] {
			if _, dup := m[row[col]]; dup {
				t.Errorf("%s.%s: duplicate %q", table, col, row[col])
			}
			m[row[col]] = row
		}
		return m
	}
	customers := keys("customers", "customer_id")
	products := keys("products", "product_id")
	orders := keys("orders", "order_id")
	campaigns := keys("campaigns", "campaign_id")
	keys("campaign_touches", "touch_id")
	keys("support_tickets", "ticket_id")

	for _, o := range tables["orders"] {
		c, ok := customers[o["customer_id"]]
		if !ok {
			t.Fatalf("order %s: no customer %s", o["order_id"], o["customer_id"])
		}
		if o["order_date"] < c["signup_date"] {
			t.Errorf("order %s on %s precedes signup %s", o["order_id"], o["order_date"], c["signup_date"])
		}
	}
	for _, it := range tables["order_items"] {
		if _, ok := orders[it["order_id"]]; !ok {
			t.Errorf("order item: no order %s", it["order_id"])
		}
		if _, ok := products[it["product_id"]]; !ok {
			t.Errorf("order item: no product %s", it["product_id"])
		}
	}
	for _, tc := range tables["campaign_touches"] {
		c, ok := campaigns[tc["campaign_id"]]
		if !ok {
			t.Fatalf("touch %s: no campaign %s", tc["touch_id"], tc["campaign_id"])
		}
		if d := tc["touched_at"][:10]; d < c["start_date"] || d > c["end_date"] {
			t.Errorf("touch %s on %s is outside campaign %s", tc["touch_id"], d, c["campaign_id"])
		}
		if _, ok := customers[tc["customer_id"]]; !ok {
			t.Errorf("touch %s: no customer %s", tc["touch_id"], tc["customer_id"])
		}
	}
	for _, tk := range tables["support_tickets"] {
		if _, ok := customers[tk["customer_id"]]; !ok {
			t.Errorf("ticket %s: no customer %s", tk["ticket_id"], tk["customer_id"])
		}
		if id := tk["order_id"]; id != "" && orders[id]["customer_id"] != tk["customer_id"] {
			t.Errorf("ticket %s: order %s is not customer %s's", tk["ticket_id"], id, tk["customer_id"])
		}
	}
}

func readCSV(t *testing.T, f File) []map[string]string {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(f.Data)).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", f.Name, err)
	}
	var rows []map[string]string
	for _, rec := range recs[1:] {
		row := map[string]string{}
		for i, h := range recs[0] {
			row[h] = rec[i]
		}
		rows = append(rows, row)
	}
	return rows
}
