package stream_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/connector"
	streamconn "github.com/rhizome-mesh/rhizome/connector/stream"
	"github.com/rhizome-mesh/rhizome/stream"
)

func open(t *testing.T, cfg map[string]any) connector.Connector {
	t.Helper()
	c, err := connector.Open("stream", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestStagesClaimedBatches(t *testing.T) {
	sp, err := stream.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, b := range [][2]string{{"b1", "{\"id\":1}\n{\"id\":2}\n"}, {"b2", `{"id":3}`}} {
		if _, err := sp.Put(ctx, "dp.clicks", "events", b[0], strings.NewReader(b[1]), 1<<20); err != nil {
			t.Fatal(err)
		}
	}
	c := open(t, map[string]any{"columns": []any{map[string]any{"name": "id", "type": "bigint"}}})
	dir := t.TempDir()
	env := connector.Env{StageDir: dir, ProductID: "dp.clicks", Port: "events", RunID: "run_1", Spool: sp}
	st, err := c.Stage(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	if st.Format != connector.FormatNDJSON || st.Rows != 3 || len(st.Files) != 2 ||
		!slices.Equal(st.Columns, []connector.Column{{Name: "id", Type: "BIGINT"}}) {
		t.Fatalf("Staged = %+v", st)
	}
	var all string
	var size int64
	for _, f := range st.Files {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		all += string(b)
		size += int64(len(b))
	}
	if all != "{\"id\":1}\n{\"id\":2}\n{\"id\":3}\n" || st.Bytes != size {
		t.Errorf("staged %q (%d bytes), Bytes = %d", all, size, st.Bytes)
	}
	// The run holds them now: nothing is pending.
	if files, _, _, _ := sp.Pending("dp.clicks", "events"); len(files) != 0 {
		t.Errorf("still pending: %v", files)
	}

	// A retried attempt of the same run stages the same batches.
	dir2 := t.TempDir()
	env.StageDir = dir2
	if st2, err := c.Stage(ctx, env); err != nil || st2.Rows != 3 || len(st2.Files) != 2 {
		t.Errorf("retried Stage = %+v, %v", st2, err)
	}
}

func TestStagesEmptyInput(t *testing.T) {
	sp, err := stream.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st, err := open(t, nil).Stage(context.Background(), connector.Env{StageDir: dir, ProductID: "dp.clicks", Port: "events", RunID: "run_1", Spool: sp})
	if err != nil {
		t.Fatal(err)
	}
	if st.Format != connector.FormatNDJSON || st.Rows != 0 || st.Bytes != 0 || len(st.Files) != 1 {
		t.Fatalf("Staged = %+v", st)
	}
	if fi, err := os.Stat(filepath.Join(dir, st.Files[0])); err != nil || fi.Size() != 0 {
		t.Errorf("empty stage file: %v, %v", fi, err)
	}
}

type failingSpool struct{}

func (failingSpool) Claim(string, string, string) ([]string, error) {
	return nil, rhizome.Errorf(rhizome.EInternal, "disk gone")
}

func TestStageErrors(t *testing.T) {
	c := open(t, nil)
	_, err := c.Stage(context.Background(), connector.Env{StageDir: t.TempDir(), Port: "events"})
	if rhizome.Code(err) != rhizome.EUnavailable || !strings.Contains(err.Error(), "no push spool") {
		t.Errorf("without a spool: %v", err)
	}
	var none *stream.Spool
	_, err = c.Stage(context.Background(), connector.Env{StageDir: t.TempDir(), ProductID: "p", Port: "events", RunID: "r", Spool: none})
	if rhizome.Code(err) != rhizome.EUnavailable {
		t.Errorf("nil *Spool: %v", err)
	}
	_, err = c.Stage(context.Background(), connector.Env{StageDir: t.TempDir(), ProductID: "p", Port: "events", RunID: "r", Spool: failingSpool{}})
	var e *rhizome.Error
	if !errors.As(err, &e) || !strings.Contains(err.Error(), "disk gone") {
		t.Errorf("failing spool: %v", err)
	}
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg      map[string]any
		interval time.Duration
		rows     int64
		problem  string
	}{
		{nil, 10 * time.Second, 10000, ""},
		{map[string]any{"flush_interval": "2m", "flush_rows": 500}, 2 * time.Minute, 500, ""},
		{map[string]any{"flush_interval": "soon"}, 0, 0, "config.flush_interval"},
		{map[string]any{"flush_interval": "-1s"}, 0, 0, "config.flush_interval"},
		{map[string]any{"flush_rows": 0}, 0, 0, "config.flush_rows"},
		{map[string]any{"flush_row": 5}, 0, 0, "config.flush_row"},
	} {
		interval, rows, err := streamconn.Thresholds(tc.cfg)
		if tc.problem == "" {
			if err != nil || interval != tc.interval || rows != tc.rows {
				t.Errorf("Thresholds(%v) = %v, %d, %v", tc.cfg, interval, rows, err)
			}
			continue
		}
		ps := rhizome.ProblemsOf(err)
		if len(ps) != 1 || ps[0].Path != tc.problem {
			t.Errorf("Thresholds(%v): problems %v, want one at %s", tc.cfg, ps, tc.problem)
		}
		if _, err := connector.Open("stream", tc.cfg); rhizome.Code(err) != rhizome.EInvalid {
			t.Errorf("Open(%v) = %v, want invalid", tc.cfg, err)
		}
	}
}
