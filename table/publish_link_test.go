package table

import (
	"context"
	"os"
	"strings"
	"testing"
)

// TestPublishLinksLocalFiles: publishing to a local table on the files'
// filesystem hard-links them into the lake (no byte copy), leaves the
// caller's files in place, and the table reads back the same rows.
func TestPublishLinksLocalFiles(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, backend{"sqlite", "file"})
	ref := RefFor("dp.link.test", "1.0.0")
	src := e.parquetFile(t, people(0, 5))
	if _, err := e.cat.Publish(ctx, PublishRequest{Ref: ref, Files: []string{src}, Mode: Replace}); err != nil {
		t.Fatal(err)
	}
	si, err := os.Stat(src)
	if err != nil {
		t.Fatalf("the published file is gone from where the caller left it: %v", err)
	}
	files, _, err := e.cat.DataFiles(ctx, ref, AsOf{})
	if err != nil || len(files) != 1 {
		t.Fatalf("data files %v, %v", files, err)
	}
	li, err := os.Stat(strings.TrimPrefix(files[0], "file://"))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(si, li) {
		t.Errorf("%s was copied, not linked", files[0])
	}
	if n, _ := e.icebergRows(t, ref); n != 5 {
		t.Errorf("table has %d rows, want 5", n)
	}
}
