// Package parquet registers the parquet connector: local Parquet files,
// landed in the stage as they are.
package parquet

import (
	"context"
	"io"
	"os"
	"path/filepath"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/connector"
	"github.com/rhizome-mesh/rhizome/connector/internal/stage"
)

func init() {
	connector.Register(connector.Spec{
		Name:    "parquet",
		Summary: "Local Parquet files: one file or a glob.",
		Fields: []connector.Field{
			{Name: "path", Type: connector.TypeString, Required: true,
				Doc: "File or glob (`data/part-*.parquet`), relative to the base directory and beneath it. Local, or `s3://bucket/prefix/*.parquet` when the server has object storage configured."},
			{Name: "columns", Type: connector.TypeList,
				Doc: "Declared schema: a list of `{name, type, required}` with DuckDB types. Empty: the file's own schema."},
		},
		New: func(cfg map[string]any) (connector.Connector, error) {
			c := connector.Config(cfg)
			cols, err := c.Columns("columns")
			if err != nil {
				return nil, err
			}
			return &parquetConn{path: c.String("path"), columns: cols}, nil
		},
	})
}

type parquetConn struct {
	path    string
	columns []connector.Column
}

func (c *parquetConn) Stage(ctx context.Context, env connector.Env) (*connector.Staged, error) {
	files, err := stage.Resolve(ctx, env.BaseDir, env.Objects, c.path, filepath.Join(env.StageDir, ".fetch"))
	if err != nil {
		return nil, err
	}
	st := &connector.Staged{Format: connector.FormatParquet, Rows: -1, Columns: c.columns}
	for i, src := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := checkMagic(src); err != nil {
			return nil, err
		}
		name := stage.Name(i, src, "parquet")
		n, err := stage.Link(src, env.StageDir, name)
		if err != nil {
			return nil, err
		}
		st.Bytes += n
		st.Files = append(st.Files, name)
	}
	env.Log().Info("staged parquet", "path", c.path, "files", len(st.Files), "bytes", st.Bytes)
	return st, nil
}

// checkMagic catches a file that is not Parquet (a CSV named .parquet, a
// truncated upload) here, naming the file, rather than in the engine.
func checkMagic(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return rhizome.Errorf(rhizome.EUnavailable, "parquet %s: %v", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return rhizome.Errorf(rhizome.EUnavailable, "parquet %s: %v", path, err)
	}
	var head, tail [4]byte
	notParquet := rhizome.Errorf(rhizome.EInvalid, "parquet %s: not a Parquet file (no PAR1 magic at both ends)", path).
		WithHint("check the file is complete, or use the csv or json connector")
	if fi.Size() < 12 {
		return notParquet
	}
	if _, err := io.ReadFull(f, head[:]); err != nil {
		return notParquet
	}
	if _, err := f.ReadAt(tail[:], fi.Size()-4); err != nil {
		return notParquet
	}
	if string(head[:]) != "PAR1" || string(tail[:]) != "PAR1" {
		return notParquet
	}
	return nil
}
