package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"
)

func TestProbe(t *testing.T) {
	db, err := sql.Open("duckdb", "")
	if err != nil { t.Fatal(err) }
	ctx := context.Background()
	c, _ := db.Conn(ctx)
	for _, q := range []string{os.Getenv("Q1"), os.Getenv("Q2"), os.Getenv("Q3"), os.Getenv("Q4")} {
		if q == "" { continue }
		rows, err := c.QueryContext(ctx, q)
		if err != nil { fmt.Printf("ERR %q: %v\n", q, err); continue }
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols)); ptrs := make([]any, len(cols))
			for i := range vals { ptrs[i] = &vals[i] }
			rows.Scan(ptrs...)
			fmt.Println(vals...)
		}
		if err := rows.Err(); err != nil { fmt.Printf("ROWERR %v\n", err) }
		rows.Close()
	}
}
