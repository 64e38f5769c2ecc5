// Package stage holds what the file-reading connectors share: resolving a
// configured path or glob, and landing files in the staging directory.
package stage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/rhizome-mesh/rhizome"
)

// Glob resolves pattern (a file or a filepath.Match glob, relative to
// baseDir) to the regular files it names, sorted. Files must lie beneath
// baseDir, after symbolic links too: a manifest may not read the server's
// other files. Nothing matching is ENotFound naming the pattern and the
// directory searched.
func Glob(baseDir, pattern string) ([]string, error) {
	if i := strings.Index(pattern, "://"); i > 0 {
		return nil, rhizome.Errorf(rhizome.EInvalid, "path %s: %s:// is not supported; local files and s3:// are", pattern, pattern[:i]).
			WithHint("copy the files next to the mesh or to object storage, or use the http connector")
	}
	base, err := filepath.Abs(baseDir)
	if err != nil {
		return nil, rhizome.Errorf(rhizome.EInternal, "base directory %s: %v", baseDir, err)
	}
	rel := pattern
	if filepath.IsAbs(pattern) {
		rel, _ = filepath.Rel(base, pattern)
	}
	if !filepath.IsLocal(rel) {
		return nil, outside(pattern, base)
	}
	full := filepath.Join(base, rel)
	var matches []string
	if strings.ContainsAny(rel, `*?[`) {
		m, err := filepath.Glob(full)
		if err != nil {
			return nil, rhizome.Errorf(rhizome.EInvalid, "path %s is not a valid glob: %v", pattern, err)
		}
		matches = m
	} else if _, err := os.Stat(full); err == nil {
		matches = []string{full}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, rhizome.Errorf(rhizome.EUnavailable, "path %s: %v", pattern, err)
	}
	realBase, err := filepath.EvalSymlinks(base)
	if err != nil {
		return nil, rhizome.Errorf(rhizome.EUnavailable, "base directory %s: %v", base, err)
	}
	var files []string
	for _, m := range matches {
		real, err := filepath.EvalSymlinks(m)
		if err != nil {
			continue
		}
		if r, err := filepath.Rel(realBase, real); err != nil || !filepath.IsLocal(r) {
			return nil, outside(pattern+" ("+filepath.Base(m)+" is a link)", base)
		}
		if fi, err := os.Stat(real); err == nil && fi.Mode().IsRegular() {
			files = append(files, real)
		}
	}
	if len(files) == 0 {
		return nil, rhizome.Errorf(rhizome.ENotFound, "path %s: no file matches in %s", pattern, filepath.Dir(full)).
			WithHint("relative paths resolve against %s", base)
	}
	sort.Strings(files)
	return files, nil
}

// Fetcher downloads the object-storage files a pattern names into dir.
type Fetcher interface {
	Fetch(ctx context.Context, pattern, dir string) ([]string, error)
}

// Resolve is Glob for local paths; an s3:// pattern is fetched through f
// into dir (a folder inside the stage) instead.
func Resolve(ctx context.Context, baseDir string, f Fetcher, pattern, dir string) ([]string, error) {
	if strings.HasPrefix(pattern, "s3://") {
		if f == nil {
			return nil, rhizome.Errorf(rhizome.EInvalid, "path %s: no object storage is configured for this deployment", pattern).
				WithHint("set RHIZOME_S3_ENDPOINT (S3-compatible stores), RHIZOME_S3_REGION, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for the server")
		}
		return f.Fetch(ctx, pattern, dir)
	}
	return Glob(baseDir, pattern)
}

func outside(pattern, base string) error {
	return rhizome.Errorf(rhizome.EForbidden, "path %s is outside the base directory %s", pattern, base).
		WithHint("input files must be beneath the base directory; write the path relative to it")
}

// Name is the staged name of the i-th source file: numbered, so that
// files of the same name from different directories do not collide.
func Name(i int, src, ext string) string {
	base := filepath.Base(src)
	if ext != "" {
		base = strings.TrimSuffix(base, filepath.Ext(base)) + "." + ext
	}
	return fmt.Sprintf("%04d-%s", i, base)
}

// Link lands src in dir as name: a hard link when src is on the same file
// system (no copy), else a copy. It returns the size.
func Link(src, dir, name string) (int64, error) {
	dst := filepath.Join(dir, name)
	fi, err := os.Stat(src)
	if err != nil {
		return 0, rhizome.Errorf(rhizome.EUnavailable, "stage %s: %v", src, err)
	}
	if err := os.Link(src, dst); err == nil {
		return fi.Size(), nil
	}
	in, err := os.Open(src)
	if err != nil {
		return 0, rhizome.Errorf(rhizome.EUnavailable, "stage %s: %v", src, err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, rhizome.Errorf(rhizome.EInternal, "stage %s: %v", src, err)
	}
	n, err := io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, rhizome.Errorf(rhizome.EInternal, "stage %s into %s: %v", src, dst, err)
	}
	return n, nil
}

// CountingWriter counts the bytes written through it.
type CountingWriter struct {
	W io.Writer
	N int64
}

func (c *CountingWriter) Write(p []byte) (int, error) {
	n, err := c.W.Write(p)
	c.N += int64(n)
	return n, err
}
