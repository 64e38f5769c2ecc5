package pipeline_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rhizome-mesh/rhizome/pipeline"
)

// TestPruneQuarantine: quarantined outputs older than the cutoff go, with
// the product directories they empty; newer ones stay.
func TestPruneQuarantine(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	files := map[string]time.Duration{
		"dp.a/run_old.parquet": 20 * 24 * time.Hour,
		"dp.a/run_new.parquet": time.Hour,
		"dp.b/run_old.parquet": 15 * 24 * time.Hour,
	}
	for name, age := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("PAR1"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := pipeline.PruneQuarantine(dir, now.Add(-14*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	want := []string{filepath.Join(dir, "dp.a/run_old.parquet"), filepath.Join(dir, "dp.b/run_old.parquet")}
	if !slices.Equal(removed, want) {
		t.Errorf("removed %v, want %v", removed, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "dp.a/run_new.parquet")); err != nil {
		t.Errorf("the recent quarantine file is gone: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "dp.b")); !os.IsNotExist(err) {
		t.Errorf("the emptied product dir is still there: %v", err)
	}
	if removed, err := pipeline.PruneQuarantine(filepath.Join(dir, "missing"), now); err != nil || len(removed) != 0 {
		t.Errorf("a missing quarantine dir: %v, %v", removed, err)
	}
}
