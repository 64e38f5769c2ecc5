// Package csv registers the csv connector: local CSV files, landed in the
// stage as RFC 4180 CSV with a header row.
package csv

import (
	"bufio"
	"context"
	stdcsv "encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"unicode/utf8"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/connector"
	"github.com/rhizome-mesh/rhizome/connector/internal/stage"
)

func init() {
	connector.Register(connector.Spec{
		Name:    "csv",
		Summary: "Local CSV files: one file or a glob.",
		Fields: []connector.Field{
			{Name: "path", Type: connector.TypeString, Required: true,
				Doc: "File or glob (`data/orders-*.csv`), relative to the base directory and beneath it. Local, or `s3://bucket/prefix/*.csv` when the server has object storage configured."},
			{Name: "columns", Type: connector.TypeList,
				Doc: "Declared schema: a list of `{name, type, required}` with DuckDB types. Empty: the engine infers it."},
			{Name: "header", Type: connector.TypeBool, Default: true,
				Doc: "Whether the first row names the columns. Without one, names come from `columns`, else column0, column1, ..."},
			{Name: "delimiter", Type: connector.TypeString, Default: ",",
				Doc: "Field separator, one character (`\\t` for tab)."},
			{Name: "quote", Type: connector.TypeString, Default: `"`,
				Doc: "Quote character. Only `\"` is supported for now."},
		},
		New: newCSV,
	})
}

type csvConn struct {
	path      string
	columns   []connector.Column
	header    bool
	delimiter rune
}

func newCSV(cfg map[string]any) (connector.Connector, error) {
	c := connector.Config(cfg)
	cols, err := c.Columns("columns")
	if err != nil {
		return nil, err
	}
	var ps []rhizome.Problem
	delim := c.String("delimiter")
	if delim == `\t` {
		delim = "\t"
	}
	r, size := utf8.DecodeRuneInString(delim)
	if size == 0 || size != len(delim) || r == '"' || r == '\r' || r == '\n' {
		ps = append(ps, rhizome.Problem{Path: "config.delimiter", Message: fmt.Sprintf("%q is not a delimiter", delim),
			Hint: "one character such as `,`, `;`, `|` or `\\t`"})
	}
	if q := c.String("quote"); q != `"` {
		ps = append(ps, rhizome.Problem{Path: "config.quote", Message: fmt.Sprintf("quote %q is not supported", q),
			Hint: "only `\"` is supported for now; remove the field"})
	}
	if len(ps) > 0 {
		return nil, rhizome.Invalid("invalid csv config", ps...)
	}
	return &csvConn{path: c.String("path"), columns: cols, header: c.Bool("header"), delimiter: r}, nil
}

func (c *csvConn) Stage(ctx context.Context, env connector.Env) (*connector.Staged, error) {
	files, err := stage.Resolve(ctx, env.BaseDir, env.Objects, c.path, filepath.Join(env.StageDir, ".fetch"))
	if err != nil {
		return nil, err
	}
	st := &connector.Staged{Format: connector.FormatCSV, Rows: -1, Columns: c.columns}
	// The stage holds plain CSV (comma, header row): link files that are
	// already plain, rewrite the others.
	plain := c.header && c.delimiter == ','
	for i, src := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		name := stage.Name(i, src, "csv")
		if plain {
			n, err := stage.Link(src, env.StageDir, name)
			if err != nil {
				return nil, err
			}
			st.Bytes += n
		} else {
			n, rows, err := c.rewrite(ctx, src, filepath.Join(env.StageDir, name))
			if err != nil {
				return nil, err
			}
			st.Bytes += n
			if st.Rows < 0 {
				st.Rows = 0
			}
			st.Rows += rows
		}
		st.Files = append(st.Files, name)
	}
	if plain {
		st.Rows = -1
	}
	env.Log().Info("staged csv", "path", c.path, "files", len(st.Files), "bytes", st.Bytes)
	return st, nil
}

// rewrite copies src to dst as comma-separated CSV with a header row.
func (c *csvConn) rewrite(ctx context.Context, src, dst string) (bytes, rows int64, err error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, 0, rhizome.Errorf(rhizome.EUnavailable, "csv %s: %v", src, err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, 0, rhizome.Errorf(rhizome.EInternal, "csv: %v", err)
	}
	defer out.Close()
	cw := &stage.CountingWriter{W: out}
	bw := bufio.NewWriterSize(cw, 1<<16)
	r := stdcsv.NewReader(bufio.NewReaderSize(in, 1<<16))
	r.Comma = c.delimiter
	r.ReuseRecord = true
	w := stdcsv.NewWriter(bw)
	first := true
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, 0, rhizome.Errorf(rhizome.EInvalid, "csv %s: %v", src, err).
				WithHint("check `delimiter` and `header` in the input port's config")
		}
		isHeader := first && c.header
		if first && !c.header {
			if err := w.Write(c.names(len(rec))); err != nil {
				return 0, 0, rhizome.Errorf(rhizome.EInternal, "csv: write %s: %v", dst, err)
			}
		}
		first = false
		if err := w.Write(rec); err != nil {
			return 0, 0, rhizome.Errorf(rhizome.EInternal, "csv: write %s: %v", dst, err)
		}
		if isHeader {
			continue
		}
		rows++
		if rows%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return 0, 0, err
			}
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return 0, 0, rhizome.Errorf(rhizome.EInternal, "csv: write %s: %v", dst, err)
	}
	if err := bw.Flush(); err != nil {
		return 0, 0, rhizome.Errorf(rhizome.EInternal, "csv: write %s: %v", dst, err)
	}
	return cw.N, rows, out.Close()
}

// names is the header of a file without one: the declared columns, else
// DuckDB's own names for unnamed columns.
func (c *csvConn) names(n int) []string {
	out := make([]string, n)
	for i := range out {
		if i < len(c.columns) {
			out[i] = c.columns[i].Name
		} else {
			out[i] = fmt.Sprintf("column%d", i)
		}
	}
	return out
}
