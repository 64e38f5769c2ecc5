// Package bench measures Rhizome against baselines run in the same process,
// so results read as ratios that hold across machines (see BENCHMARKS.md).
// Run with `make bench` (scripts/bench.sh); nothing here asserts a speed.
package bench

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/catalog"
	"github.com/rhizome-mesh/rhizome/identity"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/metastore/sqlite"
	"github.com/rhizome-mesh/rhizome/server"
)

var ctx = context.Background()

func openStore(tb testing.TB) metastore.Store {
	tb.Helper()
	s, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "m.db"), metastore.Options{Clock: rhizome.SystemClock{}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

const domains = 20

// meshHeader is the domains and teams that generated products refer to.
func meshHeader() string {
	var b strings.Builder
	for d := range domains {
		fmt.Fprintf(&b, "---\napiVersion: rhizome/v1\nkind: Domain\nname: d%02d\nowner_teams: [team-d%02d]\n", d, d)
		fmt.Fprintf(&b, "---\napiVersion: rhizome/v1\nkind: Team\nname: team-d%02d\ndomain: d%02d\nmembers:\n  - principal: owner%02d@example.com\n    roles: [technical_owner]\n", d, d, d)
	}
	return b.String()
}

// productYAML is one generated product manifest.
func productYAML(i int) string {
	d := i % domains
	return fmt.Sprintf(`---
apiVersion: rhizome/v1
kind: DataProduct
id: dp.d%02d.product-%06d
name: Product %d
owner_team: team-d%02d
domain: d%02d
description: Generated product number %d for benchmarks
tags: [t%d, generated]
sla: {freshness: 1 hour, availability: 99.9%%, accuracy: 99%%}
quality_metrics: {completeness: 0.98}
current_version: 1.0.%d
sensitivity_level: %s
retention_period_days: 365
output_ports:
  - {name: main, type: table}
`, d, i, i, d, d, i, i%10, i%7, rhizome.SensitivityLevels()[i%4])
}

func admin(tb testing.TB, s metastore.Store) *rhizome.Principal {
	m := identity.Minter{Store: s, Clock: rhizome.SystemClock{}}
	if _, _, err := m.Create(ctx, identity.TokenSpec{Principal: "admin", Admin: true}); err != nil {
		tb.Fatal(err)
	}
	p, err := s.GetPrincipal(ctx, "admin")
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// BenchmarkApply10k applies 10,000 generated products in one apply (parse,
// schema and semantic checks, plan, one transaction). Target: >= 2,000
// products/s on SQLite.
func BenchmarkApply10k(b *testing.B) {
	const n = 10000
	var body strings.Builder
	body.WriteString(meshHeader())
	for i := range n {
		body.WriteString(productYAML(i))
	}
	req := rhizome.ApplyRequest{Files: []rhizome.SourceFile{{Name: "gen.yaml", Content: body.String()}}}
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		s := openStore(b)
		cat := catalog.New(s, catalog.Options{})
		p := admin(b, s)
		b.StartTimer()
		res, err := cat.Apply(ctx, p, req)
		if err != nil {
			b.Fatal(err)
		}
		if res.Summary.Create != n+2*domains {
			b.Fatalf("created %d", res.Summary.Create)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "products/s")
}

// BenchmarkBareSQLiteInsert10k is Apply10k's baseline: the same 10,000
// manifests as JSON, inserted with one prepared statement in one
// transaction into a bare SQLite table (no parsing, validation or history).
func BenchmarkBareSQLiteInsert10k(b *testing.B) {
	const n = 10000
	bodies := make([][]byte, n)
	for i := range n {
		bodies[i], _ = json.Marshal(map[string]any{"id": fmt.Sprintf("dp.d%02d.product-%06d", i%domains, i), "yaml": productYAML(i)})
	}
	for b.Loop() {
		b.StopTimer()
		db, err := sql.Open("sqlite", "file:"+filepath.Join(b.TempDir(), "bare.db")+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := db.Exec(`CREATE TABLE objects (id TEXT PRIMARY KEY, body TEXT)`); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		tx, _ := db.Begin()
		st, _ := tx.Prepare(`INSERT INTO objects (id, body) VALUES (?, ?)`)
		for i := range n {
			if _, err := st.Exec(fmt.Sprintf("p%06d", i), bodies[i]); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		db.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "products/s")
}

// load100k fills a store with 100,000 products through the store (the
// apply path is measured by BenchmarkApply10k).
func load100k(b *testing.B) metastore.Store {
	const n = 100000
	s := openStore(b)
	err := s.Update(ctx, func(tx metastore.Tx) error {
		for i := range n {
			d := i % domains
			obj := &rhizome.Object{Kind: rhizome.KindDataProduct, ID: fmt.Sprintf("dp.d%02d.product-%06d", d, i),
				Body:   json.RawMessage(fmt.Sprintf(`{"id":"dp.d%02d.product-%06d","domain":"d%02d"}`, d, i, d)),
				Labels: rhizome.Labels{Domain: fmt.Sprintf("d%02d", d), OwnerTeam: fmt.Sprintf("team-d%02d", d), Sensitivity: rhizome.SensitivityLevels()[i%4], Tags: []string{fmt.Sprintf("t%d", i%10)}}}
			if _, err := tx.Put(ctx, obj, 0, "bench", "load"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func percentile(d []time.Duration, p float64) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[int(float64(len(d)-1)*p)]
}

// BenchmarkListFilter100k measures GET /api/v1/products with a filter and a
// random cursor over 100,000 products, through the real HTTP handler.
// Target: p99 < 20 ms.
func BenchmarkListFilter100k(b *testing.B) {
	s := load100k(b)
	srv := server.New(server.Deps{Store: s})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	m := identity.Minter{Store: s, Clock: rhizome.SystemClock{}}
	_, secret, err := m.Create(ctx, identity.TokenSpec{Principal: "reader"})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	filters := []string{"domain=d%02d", "sensitivity=confidential&domain=d%02d", "tag=t3&domain=d%02d", "owner_team=team-d%02d"}
	var lat []time.Duration
	b.ResetTimer()
	for b.Loop() {
		q := fmt.Sprintf(filters[rng.IntN(len(filters))], rng.IntN(domains))
		after := fmt.Sprintf("dp.d00.product-%06d", rng.IntN(100000))
		req, _ := http.NewRequest("GET", ts.URL+"/api/v1/products?limit=100&"+q+"&after="+after, nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var page struct{ Items []json.RawMessage }
		if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || resp.StatusCode != 200 {
			b.Fatalf("%d %v", resp.StatusCode, err)
		}
		resp.Body.Close()
		lat = append(lat, time.Since(start))
	}
	b.ReportMetric(float64(percentile(lat, 0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
}

// BenchmarkStartToReady starts `rhizome up --demo` on a fresh data dir and
// waits for /readyz. Target: < 1 s.
func BenchmarkStartToReady(b *testing.B) {
	var lat []time.Duration
	for b.Loop() {
		dir := b.TempDir()
		c, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		start := time.Now()
		go func() {
			done <- server.Serve(c, server.Config{DataDir: dir, Listen: "127.0.0.1:0", Demo: true})
		}()
		var url string
		for url == "" {
			if raw, err := os.ReadFile(filepath.Join(dir, server.InfoFile)); err == nil {
				var info server.Info
				if json.Unmarshal(raw, &info) == nil {
					url = info.URL
				}
			}
			select {
			case err := <-done:
				b.Fatalf("server exited: %v", err)
			case <-time.After(time.Millisecond):
			}
		}
		resp, err := http.Get(url + "/readyz")
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("readyz: %v", err)
		}
		resp.Body.Close()
		lat = append(lat, time.Since(start))
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(percentile(lat, 0.5).Microseconds())/1000, "p50-ms-to-ready")
}

// BenchmarkBareSQLiteList100k is ListFilter100k's baseline: the same pages
// (100 rows, one domain, random cursor) straight from an indexed bare
// SQLite table of 100,000 rows, without HTTP, auth or JSON.
func BenchmarkBareSQLiteList100k(b *testing.B) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(b.TempDir(), "bare.db")+"?_pragma=journal_mode(WAL)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE objects (id TEXT PRIMARY KEY, domain TEXT, body TEXT); CREATE INDEX by_domain ON objects (domain, id)`); err != nil {
		b.Fatal(err)
	}
	tx, _ := db.Begin()
	st, _ := tx.Prepare(`INSERT INTO objects VALUES (?, ?, ?)`)
	for i := range 100000 {
		d := i % domains
		id := fmt.Sprintf("dp.d%02d.product-%06d", d, i)
		if _, err := st.Exec(id, fmt.Sprintf("d%02d", d), fmt.Sprintf(`{"id":%q}`, id)); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var lat []time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		rows, err := db.Query(`SELECT id, body FROM objects WHERE domain = ? AND id > ? ORDER BY id LIMIT 100`,
			fmt.Sprintf("d%02d", rng.IntN(domains)), fmt.Sprintf("dp.d00.product-%06d", rng.IntN(100000)))
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for rows.Next() {
			var id, body string
			_ = rows.Scan(&id, &body)
			n++
		}
		rows.Close()
		lat = append(lat, time.Since(start))
	}
	b.ReportMetric(float64(percentile(lat, 0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
}
