package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/client"
)

// The data commands: rhizome query (governed SQL) and rhizome data (a
// product's rows), both through the data API (docs/data-api.md).

func init() {
	register(func(a *app) *cobra.Command { return a.queryCmd() })
	register(func(a *app) *cobra.Command { return a.dataCmd() })
}

// formatFor picks the wire format: --format, else -o json/yaml means
// json, else a table.
func (a *app) formatFor(format string, allowed ...string) (string, error) {
	if format == "" {
		if a.output == "json" || a.output == "yaml" {
			return "json", nil
		}
		return "table", nil
	}
	format = strings.ToLower(format)
	for _, f := range allowed {
		if f == format {
			return format, nil
		}
	}
	return "", rhizome.Errorf(rhizome.EInvalid, "format %q is not supported", format).WithHint("use one of: %s", strings.Join(allowed, ", "))
}

func (a *app) queryCmd() *cobra.Command {
	var format, out string
	cmd := &cobra.Command{
		Use:   "query SQL",
		Short: "Run governed SQL over the products you may read",
		Long: `Run one SQL statement (SELECT, WITH, VALUES, EXPLAIN, DESCRIBE, SHOW) on the
server's read-only engine. Products are the relations "domain"."product"
(current version) and "domain"."product_v1" (major version 1). Columns are
masked and rows filtered as your grants say; every query is audited.`,
		Example: `  rhizome query 'SELECT region, sum(amount) FROM sales.orders GROUP BY 1'
  rhizome query 'SHOW ALL TABLES'
  rhizome query 'SELECT * FROM sales.orders' --format csv --out orders.csv`,
		Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			f, err := a.formatFor(format, "table", "json", "ndjson", "csv", "arrow")
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			wire := f
			if f == "table" {
				wire = "json"
			}
			st, err := c.Query(ctx, args[0], wire)
			if err != nil {
				return err
			}
			defer st.Close()
			return a.emit(st, f, out)
		}),
	}
	cmd.Flags().StringVar(&format, "format", "", "table, json, ndjson, csv or arrow (default: table; json with -o json)")
	cmd.Flags().StringVar(&out, "out", "", "write to this file instead of stdout")
	return cmd
}

func (a *app) dataCmd() *cobra.Command {
	var (
		columns, sort, cursor, asOf, format, out string
		filters                                  []string
		limit                                    int64
		schema                                   bool
	)
	cmd := &cobra.Command{
		Use:   "data PRODUCT",
		Short: "Read a product's rows (or its schema) as you may see them",
		Long: `Read a product's rows through the data API: masked columns and filtered rows
as your grants say, typed filters, sort, keyset pages, time travel (--as-of a
snapshot id, a version or an RFC 3339 time) and exports to CSV, Parquet or
Arrow. Every read is audited.`,
		Example: `  rhizome data dp.sales.orders --filter region:eq:EU --filter amount:gt:100 --sort -amount --limit 20
  rhizome data dp.sales.orders --columns id,amount --as-of 2026-01-31T00:00:00Z
  rhizome data dp.sales.orders --format parquet --out orders.parquet
  rhizome data dp.sales.orders --schema`,
		Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if schema {
				sc, err := c.DataSchema(ctx, args[0], asOf)
				if err != nil {
					return err
				}
				if !a.table() {
					return a.printData(sc)
				}
				fmt.Fprintf(a.stdout, "%s (version %s) as %s\n", sc.ProductID, sc.Version, sc.Relation)
				if sc.RowFilter {
					fmt.Fprintln(a.stdout, "Rows are filtered for you.")
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "COLUMN\tTYPE\tREQUIRED\tCLASSIFICATION\tMASK\tDESCRIPTION")
				for _, col := range sc.Columns {
					req := ""
					if col.Required {
						req = "yes"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", col.Name, col.Type, req, col.Classification, col.Mask, col.Description)
				}
				return tw.Flush()
			}
			f, err := a.formatFor(format, "table", "json", "ndjson", "csv", "parquet", "arrow")
			if err != nil {
				return err
			}
			opt := client.DataOptions{Filters: filters, Sort: sort, Limit: limit, Cursor: cursor, AsOf: asOf, Format: f}
			if f == "table" {
				opt.Format = "json"
			}
			if limit == 0 && cmd.Flags().Changed("limit") {
				opt.Limit = -1
			}
			for _, col := range strings.Split(columns, ",") {
				if col = strings.TrimSpace(col); col != "" {
					opt.Columns = append(opt.Columns, col)
				}
			}
			st, err := c.Data(ctx, args[0], opt)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := a.emit(st, f, out); err != nil {
				return err
			}
			if next := st.NextCursor(); next != "" && f != "json" {
				fmt.Fprintf(a.stderr, "More rows: --cursor %s\n", next)
			}
			return nil
		}),
	}
	cmd.Flags().StringVar(&columns, "columns", "", "comma-separated columns (default: all you may see)")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "column:op:value, repeatable (eq, ne, lt, le, gt, ge, in, like, is_null, not_null)")
	cmd.Flags().StringVar(&sort, "sort", "", "comma-separated columns, - for descending, e.g. -amount,id")
	cmd.Flags().Int64Var(&limit, "limit", 0, "rows per page (default 1000 for table/json/ndjson, all for csv/parquet/arrow; 0 = all)")
	cmd.Flags().StringVar(&cursor, "cursor", "", "continue after a previous page")
	cmd.Flags().StringVar(&asOf, "as-of", "", "a snapshot id, a version (1.2.0, v1) or an RFC 3339 time")
	cmd.Flags().StringVar(&format, "format", "", "table, json, ndjson, csv, parquet or arrow (default: table; json with -o json)")
	cmd.Flags().StringVar(&out, "out", "", "write to this file instead of stdout")
	cmd.Flags().BoolVar(&schema, "schema", false, "print the product's schema as you see it instead of rows")
	return cmd
}

// emit copies a stream to --out or stdout; a table is rendered from JSON.
func (a *app) emit(st *client.Stream, format, out string) error {
	w := a.stdout
	var file *os.File
	if out != "" {
		tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*")
		if err != nil {
			return rhizome.Wrap(err, "writing %s", out)
		}
		file, w = tmp, tmp
		defer os.Remove(tmp.Name())
	}
	var err error
	if format == "table" {
		err = a.renderTable(w, st)
	} else {
		_, err = io.Copy(w, st)
	}
	if err == nil && st.Error() != "" {
		err = rhizome.Errorf(rhizome.EInternal, "the server stopped the stream: %s", st.Error())
	}
	if file != nil {
		cerr := file.Close()
		if err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(file.Name(), out)
		}
	}
	if err != nil {
		return rhizome.Wrap(err, "reading the rows")
	}
	return nil
}

// renderTable prints a JSON data page as aligned columns.
func (a *app) renderTable(w io.Writer, st *client.Stream) error {
	var page struct {
		Columns []client.DataColumn          `json:"columns"`
		Rows    []map[string]json.RawMessage `json:"rows"`
		Count   int                          `json:"count"`
		Next    string                       `json:"next_cursor"`
		Error   string                       `json:"error"`
	}
	if err := json.NewDecoder(bufio.NewReader(st)).Decode(&page); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, st) // to the end, for the trailer the caller reads
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	names := make([]string, len(page.Columns))
	for i, c := range page.Columns {
		names[i] = strings.ToUpper(c.Name)
	}
	fmt.Fprintln(tw, strings.Join(names, "\t"))
	for _, r := range page.Rows {
		cells := make([]string, len(page.Columns))
		for i, c := range page.Columns {
			cells[i] = cell(r[c.Name])
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "(%d rows)\n", page.Count)
	// The caller prints the next cursor (the stream's trailer holds it).
	if page.Error != "" {
		return rhizome.Errorf(rhizome.EInternal, "the server stopped the stream: %s", page.Error)
	}
	return nil
}

func cell(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return "NULL"
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strings.NewReplacer("\t", " ", "\n", " ").Replace(s)
	}
	return string(raw)
}
