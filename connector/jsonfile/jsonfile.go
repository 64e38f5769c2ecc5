// Package jsonfile registers the json connector: local JSON files holding
// an array of objects or NDJSON, landed in the stage as NDJSON.
package jsonfile

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/connector"
	"github.com/rhizome-mesh/rhizome/connector/internal/stage"
)

func init() {
	connector.Register(connector.Spec{
		Name:    "json",
		Summary: "Local JSON files: an array of objects, or NDJSON (one object per line).",
		Fields: []connector.Field{
			{Name: "path", Type: connector.TypeString, Required: true,
				Doc: "File or glob (`data/events-*.json`), relative to the base directory and beneath it. Local, or `s3://bucket/prefix/*.json` when the server has object storage configured."},
			{Name: "format", Type: connector.TypeString, Default: "auto",
				Doc: "`array` (a JSON array of objects), `ndjson` (one object per line) or `auto` (by the first character of each file)."},
			{Name: "columns", Type: connector.TypeList,
				Doc: "Declared schema: a list of `{name, type, required}` with DuckDB types. Empty: the engine infers it."},
		},
		New: newJSON,
	})
}

type jsonConn struct {
	path    string
	format  string
	columns []connector.Column
}

func newJSON(cfg map[string]any) (connector.Connector, error) {
	c := connector.Config(cfg)
	cols, err := c.Columns("columns")
	if err != nil {
		return nil, err
	}
	f := c.String("format")
	switch f {
	case "auto", "array", "ndjson":
	default:
		return nil, rhizome.Invalid("invalid json config", rhizome.Problem{Path: "config.format",
			Message: fmt.Sprintf("format %q is not one of `auto`, `array`, `ndjson`", f)})
	}
	return &jsonConn{path: c.String("path"), format: f, columns: cols}, nil
}

func (c *jsonConn) Stage(ctx context.Context, env connector.Env) (*connector.Staged, error) {
	files, err := stage.Resolve(ctx, env.BaseDir, env.Objects, c.path, filepath.Join(env.StageDir, ".fetch"))
	if err != nil {
		return nil, err
	}
	st := &connector.Staged{Format: connector.FormatNDJSON, Columns: c.columns}
	known := true // rows are counted only when every file is rewritten
	for i, src := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		format := c.format
		if format == "auto" {
			if format, err = sniff(src); err != nil {
				return nil, err
			}
		}
		name := stage.Name(i, src, "ndjson")
		if format == "ndjson" {
			n, err := stage.Link(src, env.StageDir, name)
			if err != nil {
				return nil, err
			}
			st.Bytes += n
			known = false
		} else {
			n, rows, err := arrayToNDJSON(ctx, src, filepath.Join(env.StageDir, name))
			if err != nil {
				return nil, err
			}
			st.Bytes += n
			st.Rows += rows
		}
		st.Files = append(st.Files, name)
	}
	if !known {
		st.Rows = -1
	}
	env.Log().Info("staged json", "path", c.path, "files", len(st.Files), "bytes", st.Bytes)
	return st, nil
}

// sniff tells an array from NDJSON by the first non-space byte.
func sniff(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", rhizome.Errorf(rhizome.EUnavailable, "json %s: %v", path, err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	for {
		b, err := r.ReadByte()
		if err != nil {
			return "ndjson", nil // empty: nothing to convert
		}
		switch b {
		case ' ', '\t', '\r', '\n', 0xEF, 0xBB, 0xBF: // space or a UTF-8 BOM
			continue
		case '[':
			return "array", nil
		}
		return "ndjson", nil
	}
}

// arrayToNDJSON streams the elements of the array in src to dst, one per
// line, without holding the array in memory.
func arrayToNDJSON(ctx context.Context, src, dst string) (written, rows int64, err error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, 0, rhizome.Errorf(rhizome.EUnavailable, "json %s: %v", src, err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, 0, rhizome.Errorf(rhizome.EInternal, "json: %v", err)
	}
	defer out.Close()
	cw := &stage.CountingWriter{W: out}
	w := bufio.NewWriterSize(cw, 1<<16)
	br := bufio.NewReaderSize(in, 1<<16)
	if bom, _ := br.Peek(3); string(bom) == "\ufeff" {
		br.Discard(3) // exported by Windows tools; not JSON
	}
	dec := json.NewDecoder(br)
	bad := func(err error) error {
		return rhizome.Errorf(rhizome.EInvalid, "json %s: byte %d: %v", src, dec.InputOffset(), err).
			WithHint("want a JSON array of objects; for one object per line set `format: ndjson`")
	}
	if tok, err := dec.Token(); err != nil {
		return 0, 0, bad(err)
	} else if d, ok := tok.(json.Delim); !ok || d != '[' {
		return 0, 0, bad(fmt.Errorf("the file does not start with an array"))
	}
	var buf bytes.Buffer
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return 0, 0, bad(err)
		}
		if rows%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return 0, 0, err
			}
		}
		buf.Reset()
		if err := json.Compact(&buf, raw); err != nil {
			return 0, 0, bad(err)
		}
		buf.WriteByte('\n')
		if _, err := w.Write(buf.Bytes()); err != nil {
			return 0, 0, rhizome.Errorf(rhizome.EInternal, "json: write %s: %v", dst, err)
		}
		rows++
	}
	if _, err := dec.Token(); err != nil && !errors.Is(err, io.EOF) {
		return 0, 0, bad(err)
	}
	if err := w.Flush(); err != nil {
		return 0, 0, rhizome.Errorf(rhizome.EInternal, "json: write %s: %v", dst, err)
	}
	return cw.N, rows, out.Close()
}
