package cli

import (
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/client"
	"github.com/rhizome-mesh/rhizome/identity"
	"github.com/rhizome-mesh/rhizome/server"
)

// Where the CLI finds its server and credentials. Each setting is taken
// from the first of: its flag, its environment variable, a file in the data
// directory that 'rhizome up' maintains, a default.

const (
	defaultListen    = "127.0.0.1:8080"
	defaultServerURL = "http://" + defaultListen
	defaultDataDir   = ".rhizome"
)

// dataDirPath is --data, else $RHIZOME_HOME, else ./.rhizome.
func (a *app) dataDirPath() string {
	if a.dataDir != "" {
		return a.dataDir
	}
	if d := a.getenv("RHIZOME_HOME"); d != "" {
		return d
	}
	return defaultDataDir
}

// readServerInfo reads the server.json that a running 'rhizome up' keeps
// in its data directory; ok is false when there is none.
func readServerInfo(dataDir string) (info server.Info, ok bool, err error) {
	p := filepath.Join(dataDir, server.InfoFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return info, false, nil
	}
	if err != nil {
		return info, false, rhizome.Wrap(err, "reading %s", p)
	}
	if err := json.Unmarshal(b, &info); err != nil || info.URL == "" {
		return info, false, rhizome.Errorf(rhizome.EInvalid, "%s is not {\"url\": ..., \"pid\": ...}", p).
			WithHint("remove it if no 'rhizome up' is running from this data directory")
	}
	return info, true, nil
}

// explicitServer is --server, else $RHIZOME_SERVER; "" if neither is set.
func (a *app) explicitServer() string {
	if a.server != "" {
		return a.server
	}
	return a.getenv("RHIZOME_SERVER")
}

// serverURL is where to send requests.
func (a *app) serverURL() (string, error) {
	if s := a.explicitServer(); s != "" {
		return s, nil
	}
	info, ok, err := readServerInfo(a.dataDirPath())
	if err != nil {
		return "", err
	}
	if ok {
		return info.URL, nil
	}
	return defaultServerURL, nil
}

// tokenValue is --token, else $RHIZOME_TOKEN, else the data directory's
// admin.token, which 'rhizome up' creates; "" when there is none (the
// server then answers 401).
func (a *app) tokenValue() (string, error) {
	if a.token != "" {
		return a.token, nil
	}
	if t := a.getenv("RHIZOME_TOKEN"); t != "" {
		return t, nil
	}
	p := filepath.Join(a.dataDirPath(), identity.AdminTokenFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", rhizome.Wrap(err, "reading the token in %s", p)
	}
	return strings.TrimSpace(string(b)), nil
}

// httpClient bounds every request so that a hung server cannot hang the
// CLI; applies of large meshes get minutes.
var httpClient = &http.Client{Timeout: 5 * time.Minute}

// client returns a client of the resolved server with the resolved token.
func (a *app) client() (*client.Client, error) {
	u, err := a.serverURL()
	if err != nil {
		return nil, err
	}
	tok, err := a.tokenValue()
	if err != nil {
		return nil, err
	}
	return client.New(u, tok, httpClient), nil
}
