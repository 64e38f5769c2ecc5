// Package stream registers the stream connector: NDJSON batches pushed to
// `POST /api/v1/products/{id}/ports/{port}/batches`, spooled on the server,
// and staged by the run that claims them. The spool and the flushing
// belong to the top-level stream package; this package only stages.
package stream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/connector"
	"github.com/rhizome-mesh/rhizome/connector/internal/stage"
)

// Name is the connector's name in an input port's `connector:`.
const Name = "stream"

func init() {
	connector.Register(connector.Spec{
		Name:    Name,
		Summary: "NDJSON batches pushed to the server's batches endpoint, committed in micro-batches.",
		Fields: []connector.Field{
			{Name: "flush_interval", Type: connector.TypeDuration, Default: "10s",
				Doc: "A run starts when the oldest pending batch is this old."},
			{Name: "flush_rows", Type: connector.TypeInt, Default: 10000,
				Doc: "A run starts when this many rows are pending, whatever their age."},
			{Name: "columns", Type: connector.TypeList,
				Doc: "Declared schema: a list of `{name, type, required}` with DuckDB types. Empty: the engine infers it."},
		},
		New: newStream,
	})
}

type streamConn struct {
	columns []connector.Column
}

func newStream(cfg map[string]any) (connector.Connector, error) {
	if _, _, err := Thresholds(cfg); err != nil {
		return nil, err
	}
	cols, err := connector.Config(cfg).Columns("columns")
	if err != nil {
		return nil, err
	}
	return &streamConn{columns: cols}, nil
}

// Thresholds reads an input port's flush_interval and flush_rows, with the
// defaults applied: what the server's flusher watches for.
func Thresholds(cfg map[string]any) (interval time.Duration, rows int64, err error) {
	s, _ := connector.Lookup(Name)
	if ps := s.Validate(cfg); len(ps) > 0 {
		return 0, 0, rhizome.Invalid("connector stream: invalid config", ps...)
	}
	c := connector.Config(cfg)
	interval, rows = 10*time.Second, 10000
	if c.Has("flush_interval") {
		interval = c.Duration("flush_interval")
	}
	if c.Has("flush_rows") {
		rows = c.Int("flush_rows")
	}
	var ps []rhizome.Problem
	if interval <= 0 {
		ps = append(ps, rhizome.Problem{Path: "config.flush_interval", Message: fmt.Sprintf("%s is not a positive duration", interval),
			Hint: "e.g. \"10s\" or \"1m\""})
	}
	if rows <= 0 {
		ps = append(ps, rhizome.Problem{Path: "config.flush_rows", Message: fmt.Sprintf("%d is not a positive number of rows", rows)})
	}
	if len(ps) > 0 {
		return 0, 0, rhizome.Invalid("invalid stream config", ps...)
	}
	return interval, rows, nil
}

func (c *streamConn) Stage(ctx context.Context, env connector.Env) (*connector.Staged, error) {
	if env.Spool == nil || env.RunID == "" || env.ProductID == "" || env.Port == "" {
		return nil, rhizome.Errorf(rhizome.EUnavailable, "stream input %s: this process has no push spool", env.Port).
			WithHint("stream inputs are read by runs of `rhizome up`, which receives the pushed batches")
	}
	files, err := env.Spool.Claim(env.ProductID, env.Port, env.RunID)
	if err != nil {
		return nil, rhizome.Wrap(err, "claiming the pushed batches of %s", env.Port)
	}
	st := &connector.Staged{Format: connector.FormatNDJSON, Columns: c.columns}
	for i, src := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		name := stage.Name(i, src, "ndjson")
		n, err := stage.Link(src, env.StageDir, name)
		if err != nil {
			return nil, err
		}
		rows, err := countLines(filepath.Join(env.StageDir, name))
		if err != nil {
			return nil, err
		}
		st.Files = append(st.Files, name)
		st.Bytes += n
		st.Rows += rows
	}
	if len(files) == 0 {
		// An empty input, so the models run and an append adds nothing.
		name := "0000-empty.ndjson"
		if err := os.WriteFile(filepath.Join(env.StageDir, name), nil, 0o644); err != nil {
			return nil, rhizome.Errorf(rhizome.EInternal, "stream: %v", err)
		}
		st.Files = []string{name}
	}
	env.Log().Info("staged stream", "port", env.Port, "run", env.RunID, "batches", len(files), "rows", st.Rows, "bytes", st.Bytes)
	return st, nil
}

// countLines counts the rows of a spooled file: the spool wrote one
// object per line, each ending in a newline.
func countLines(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, rhizome.Errorf(rhizome.EInternal, "stream: %v", err)
	}
	defer f.Close()
	var n int64
	buf := make([]byte, 1<<16)
	for {
		k, err := f.Read(buf)
		n += int64(bytes.Count(buf[:k], []byte{'\n'}))
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return 0, rhizome.Errorf(rhizome.EInternal, "stream: %v", err)
		}
	}
}
