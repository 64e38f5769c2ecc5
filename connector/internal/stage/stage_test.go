package stage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rhizome-mesh/rhizome"
)

func TestGlob(t *testing.T) {
	base := t.TempDir()
	for _, f := range []string{"data/b.csv", "data/a.csv", "data/c.json", "data/sub/d.csv"} {
		p := filepath.Join(base, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Glob(base, "data/*.csv")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || filepath.Base(got[0]) != "a.csv" || filepath.Base(got[1]) != "b.csv" {
		t.Errorf("Glob = %v", got)
	}
	if got, err := Glob(base, filepath.Join(base, "data/c.json")); err != nil || len(got) != 1 {
		t.Errorf("absolute path: %v, %v", got, err)
	}
	secret := filepath.Join(t.TempDir(), "secret.csv")
	if err := os.WriteFile(secret, []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(base, "data", "link.csv")); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		pattern string
		code    rhizome.ErrorCode
		msg     string
	}{
		{"data/*.parquet", rhizome.ENotFound, "path data/*.parquet: no file matches in " + filepath.Join(base, "data")},
		{"data/missing.csv", rhizome.ENotFound, "path data/missing.csv: no file matches in " + filepath.Join(base, "data")},
		{"data", rhizome.ENotFound, "path data: no file matches in " + base},
		{"s3://bucket/x.csv", rhizome.EInvalid, "path s3://bucket/x.csv: s3:// is not supported; local files and s3:// are"},
		{"data/[", rhizome.EInvalid, "path data/[ is not a valid glob"},
		{"../x.csv", rhizome.EForbidden, "path ../x.csv is outside the base directory " + base},
		{"data/../../x.csv", rhizome.EForbidden, "path data/../../x.csv is outside the base directory"},
		{secret, rhizome.EForbidden, "path " + secret + " is outside the base directory"},
		{"data/*.csv", rhizome.EForbidden, "path data/*.csv (link.csv is a link) is outside the base directory"},
	} {
		_, err := Glob(base, tt.pattern)
		if rhizome.Code(err) != tt.code || !strings.HasPrefix(err.Error(), tt.msg) {
			t.Errorf("Glob(%q) = %v (%s); want %s %q", tt.pattern, err, rhizome.Code(err), tt.code, tt.msg)
		}
	}
}

func TestLink(t *testing.T) {
	src := filepath.Join(t.TempDir(), "in.csv")
	if err := os.WriteFile(src, []byte("a,b\n1,2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	n, err := Link(src, dir, Name(3, src, ""))
	if err != nil || n != 8 {
		t.Fatalf("Link = %d, %v", n, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "0003-in.csv"))
	if err != nil || string(b) != "a,b\n1,2\n" {
		t.Fatalf("staged file = %q, %v", b, err)
	}
	if _, err := Link(src, dir, "0003-in.csv"); err == nil {
		t.Error("Link over an existing file succeeded")
	}
	if got := Name(12, "/x/y/part.JSON", "ndjson"); got != "0012-part.ndjson" {
		t.Errorf("Name = %q", got)
	}
}
