package duckdb

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestRowCountCSVView checks that counting a CSV view's lines agrees with
// DuckDB's own count, and that it steps aside where lines are not records.
func TestRowCountCSVView(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		files []string
		opts  map[string]string
		fast  bool // countCSV may answer
	}{
		{"plain", []string{"a,b\n1,x\n2,y\n3,z\n"}, nil, true},
		{"no final newline", []string{"a,b\n1,x\n2,y"}, nil, true},
		{"header only", []string{"a,b\n"}, nil, true},
		{"no header", []string{"1,2\n3,4\n5,6\n"}, map[string]string{"header": "false"}, true},
		{"no header, sniffed", []string{"1,2\n3,4\n5,6\n"}, nil, true},
		{"one column", []string{"a\n1\n2\n"}, nil, true},
		{"one column, blank line", []string{"a\n1\n\n2\n"}, nil, false},
		{"two files", []string{"a,b\n1,x\n", "a,b\n2,y\n3,z\n"}, nil, true},
		{"semicolons", []string{"a;b\n1;x\n2;y\n"}, map[string]string{"delimiter": ";"}, true},
		{"quoted newline", []string{"a,b\n1,\"x\ny\"\n2,z\n"}, nil, false},
		{"quotes, no newline in them", []string{"a,b\n1,\"x\"\n2,z\n"}, nil, false},
		{"blank line", []string{"a,b\n1,x\n\n2,y\n"}, nil, false},
		{"crlf", []string{"a,b\r\n1,x\r\n2,y\r\n"}, nil, false},
		{"skip", []string{"junk\na,b\n1,x\n"}, map[string]string{"skip": "1"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, work := newSession(t)
			var paths []string
			for i, body := range tt.files {
				p := filepath.Join(work, fmt.Sprintf("f%d.csv", i))
				must(t, os.WriteFile(p, []byte(body), 0o600))
				paths = append(paths, p)
			}
			src := Source{Format: "csv", Paths: paths, Options: tt.opts}
			must(t, s.Register(ctx, "t", src))
			var want int64
			must(t, s.conn.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&want))
			got, err := s.RowCount(ctx, "t")
			must(t, err)
			if got != want {
				t.Errorf("RowCount = %d, DuckDB counts %d", got, want)
			}
			n, ok := s.countCSV(ctx, src)
			if ok != tt.fast {
				t.Errorf("countCSV answered %v, want %v", ok, tt.fast)
			}
			if ok && n != want {
				t.Errorf("countCSV = %d, DuckDB counts %d", n, want)
			}
		})
	}
}

// TestRegisterInferredIsView: an input without declared columns is a view
// (nothing copied) that still has a schema, refuses a second registration
// and exports.
func TestRegisterInferredIsView(t *testing.T) {
	ctx := context.Background()
	s, work := newSession(t)
	must(t, s.Register(ctx, "orders", Source{Format: "csv", Paths: []string{fixture("orders.csv")}}))
	var tables int
	must(t, s.conn.QueryRowContext(ctx, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'orders'").Scan(&tables))
	if tables != 0 {
		t.Errorf("orders was materialised")
	}
	if _, err := s.Schema(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	if err := s.Register(ctx, "ORDERS", Source{Format: "csv", Paths: []string{fixture("orders.csv")}}); err == nil {
		t.Error("registered a view's name twice")
	}
	must(t, s.RunModels(ctx, []Model{{Name: "out", SQL: "SELECT * FROM orders", View: true}}, []string{"orders"}))
	rows, _, err := s.ExportParquet(ctx, "out", filepath.Join(work, "out.parquet"))
	must(t, err)
	n, err := s.RowCount(ctx, "orders")
	must(t, err)
	if rows != n || rows == 0 {
		t.Errorf("exported %d rows, input has %d", rows, n)
	}
}

// TestViewModelRuntimeError: a runtime error of a view model surfaces at
// the export, as the model's error, positioned in the manifest.
func TestViewModelRuntimeError(t *testing.T) {
	ctx := context.Background()
	s, work := newSession(t)
	must(t, s.Register(ctx, "people", Source{Format: "csv", Paths: []string{fixture("people.csv")}}))
	must(t, s.RunModels(ctx, []Model{{Name: "a", SQL: "SELECT CAST(name AS INTEGER) AS n FROM people", File: "dp.yaml", Line: 3, View: true}}, []string{"people"}))
	out := filepath.Join(work, "a.parquet")
	_, _, err := s.ExportParquet(ctx, "a", out)
	wantInvalid(t, err, "model a failed", "Could not convert string 'Ada'", "pipeline.models[0].sql", "TRY_CAST")
	if _, serr := os.Stat(out); !os.IsNotExist(serr) {
		t.Errorf("a failed export left %s", out)
	}
}
