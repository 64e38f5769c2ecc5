package duckdb

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

const benchRows = 1_000_000

// writeBenchCSV writes benchRows rows of five typical columns.
func writeBenchCSV(b *testing.B, path string) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintln(w, "id,customer,amount,ordered_at,category")
	cats := []string{"books", "games", "garden", "kitchen", "toys"}
	for i := range benchRows {
		fmt.Fprintf(w, "%d,customer-%d,%d.%02d,2025-%02d-%02d %02d:%02d:%02d,%s\n",
			i, i%50_000, i%1000, i%100, 1+i%12, 1+i%28, i%24, i%60, (i/60)%60, cats[i%len(cats)])
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCSVToParquet measures loading a 1M-row CSV into a sandboxed
// session and exporting it, against DuckDB doing the same in one COPY on a
// bare connection.
func BenchmarkCSVToParquet(b *testing.B) {
	dir := b.TempDir()
	csv := filepath.Join(dir, "orders.csv")
	writeBenchCSV(b, csv)
	ctx := context.Background()
	declared := []Column{{"id", "BIGINT", true}, {"customer", "VARCHAR", false}, {"amount", "DECIMAL(10,2)", false},
		{"ordered_at", "TIMESTAMP", false}, {"category", "VARCHAR", false}}
	report := func(b *testing.B, rows int64) {
		if rows != benchRows {
			b.Fatalf("rows = %d", rows)
		}
		b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	}
	for _, mode := range []struct {
		name string
		cols []Column
	}{{"engine/inferred", nil}, {"engine/declared", declared}} {
		b.Run(mode.name, func(b *testing.B) {
			var rows int64
			for i := 0; b.Loop(); i++ {
				e, err := Open(ctx, Options{AllowedDirs: []string{dir}, TempDir: filepath.Join(dir, "tmp")})
				if err != nil {
					b.Fatal(err)
				}
				s, err := e.Session(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if err := s.Register(ctx, "orders", Source{Format: "csv", Paths: []string{csv}, Columns: mode.cols}); err != nil {
					b.Fatal(err)
				}
				if rows, _, err = s.ExportParquet(ctx, "orders", filepath.Join(dir, fmt.Sprintf("out-%d.parquet", i))); err != nil {
					b.Fatal(err)
				}
				s.Close()
				e.Close()
			}
			report(b, rows)
		})
	}
	b.Run("baseline", func(b *testing.B) {
		db, err := sql.Open("duckdb", "")
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		var rows int64
		for i := 0; b.Loop(); i++ {
			out := filepath.Join(dir, fmt.Sprintf("base-%d.parquet", i))
			q := fmt.Sprintf("COPY (SELECT * FROM read_csv(%s)) TO %s (FORMAT parquet, COMPRESSION zstd)", quoteLit(csv), quoteLit(out))
			if err := db.QueryRowContext(ctx, q).Scan(&rows); err != nil {
				b.Fatal(err)
			}
		}
		report(b, rows)
	})
}
