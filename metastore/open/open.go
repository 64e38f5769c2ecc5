// Package open owns the choice of metastore backend from a URL, so that
// the server and the CLI name a store the same way and neither imports the
// backends itself:
//
//	""                          SQLite at <data dir>/metastore.db
//	sqlite:///abs/path.db       SQLite at an absolute path
//	sqlite:relative/path.db     SQLite relative to the working directory
//	postgres://... postgresql://...  Postgres
package open

import (
	"context"
	"path/filepath"
	"strings"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/metastore/postgres"
	"github.com/rhizome-mesh/rhizome/metastore/sqlite"
)

// DefaultFile is the SQLite file in the data directory.
const DefaultFile = "metastore.db"

const forms = `"" (SQLite in the data directory), sqlite:///abs/path.db, sqlite:relative/path.db, or postgres://user:password@host:5432/db`

// Open opens the metastore that url names; dataDir is where the default
// SQLite file lives.
func Open(ctx context.Context, url, dataDir string, opt metastore.Options) (metastore.Store, error) {
	url = strings.TrimSpace(url)
	switch {
	case url == "":
		if dataDir == "" {
			return nil, rhizome.Errorf(rhizome.EInvalid, "metastore: no metastore URL and no data directory").
				WithHint("set the data directory, or a metastore URL: %s", forms)
		}
		return sqlite.Open(ctx, filepath.Join(dataDir, DefaultFile), opt)
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		return postgres.Open(ctx, url, opt)
	case strings.HasPrefix(url, "sqlite:"):
		path, err := sqlitePath(url)
		if err != nil {
			return nil, err
		}
		return sqlite.Open(ctx, path, opt)
	}
	return nil, rhizome.Errorf(rhizome.EInvalid, "metastore: %q is not a metastore URL", redact(url)).
		WithHint("use %s", forms)
}

// sqlitePath takes the path out of sqlite:///abs or sqlite:rel. A host
// (sqlite://host/x) is refused rather than guessed at.
func sqlitePath(url string) (string, error) {
	rest := strings.TrimPrefix(url, "sqlite:")
	switch {
	case strings.HasPrefix(rest, "///"):
		rest = rest[2:]
	case strings.HasPrefix(rest, "//"):
		return "", rhizome.Errorf(rhizome.EInvalid, "metastore: %q names a host; SQLite is a local file", url).
			WithHint("use sqlite:///abs/path.db (three slashes) or sqlite:relative/path.db")
	}
	if rest == "" || strings.ContainsAny(rest, "?#") {
		return "", rhizome.Errorf(rhizome.EInvalid, "metastore: %q has no usable file path", url).
			WithHint("use sqlite:///abs/path.db or sqlite:relative/path.db, without query parameters")
	}
	return filepath.Clean(rest), nil
}

// redact hides what may be a password in an unrecognized URL.
func redact(url string) string {
	if at := strings.LastIndex(url, "@"); at >= 0 {
		if scheme := strings.Index(url, "://"); scheme >= 0 && scheme < at {
			return url[:scheme+3] + "***" + url[at:]
		}
	}
	return url
}
