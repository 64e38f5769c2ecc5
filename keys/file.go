package keys

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gocloud.dev/secrets/localsecrets"

	"github.com/rhizome-mesh/rhizome"
)

// MasterKeyFile is the name of the local master key in the data directory.
const MasterKeyFile = "master.key"

// LocalMasterKey returns the URL of the local master key kept in
// dataDir/master.key (mode 0600), creating the key on first use. Whoever
// can read that file can read every encrypted table: keep it out of
// backups of the data, or use a KMS keeper instead.
func LocalMasterKey(dataDir string) (string, error) {
	p := filepath.Join(dataDir, MasterKeyFile)
	if b, err := os.ReadFile(p); err == nil {
		return checkMasterKeyFile(p, b)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", rhizome.Wrap(err, "keys: read the master key")
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", rhizome.Wrap(err, "keys: create %s", dataDir)
	}
	key, err := localsecrets.NewRandomKey()
	if err != nil {
		return "", rhizome.Wrap(err, "keys: generate the master key")
	}
	u := localsecrets.Scheme + "://" + base64.URLEncoding.EncodeToString(key[:])
	// O_EXCL: of two processes starting at once, one key wins.
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return LocalMasterKey(dataDir)
	}
	if err != nil {
		return "", rhizome.Wrap(err, "keys: create the master key %s", p)
	}
	if _, err := f.WriteString(u + "\n"); err != nil {
		f.Close()
		os.Remove(p)
		return "", rhizome.Wrap(err, "keys: write the master key %s", p)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", rhizome.Wrap(err, "keys: write the master key %s", p)
	}
	if err := f.Close(); err != nil {
		return "", rhizome.Wrap(err, "keys: write the master key %s", p)
	}
	return u, nil
}

func checkMasterKeyFile(p string, b []byte) (string, error) {
	if st, err := os.Stat(p); err == nil && st.Mode().Perm()&0o077 != 0 {
		return "", rhizome.Errorf(rhizome.EForbidden, "keys: the master key %s is readable by other users (mode %v)", p, st.Mode().Perm()).
			WithHint("chmod 600 %s", p)
	}
	u := strings.TrimSpace(string(b))
	if !strings.HasPrefix(u, localsecrets.Scheme+"://") || len(u) == len(localsecrets.Scheme)+3 {
		// An empty base64key:// would make a new random key each start.
		return "", rhizome.Errorf(rhizome.EInvalid, "keys: %s does not hold a %s:// master key", p, localsecrets.Scheme).
			WithHint("restore it from a backup; without it the encrypted tables cannot be read")
	}
	return u, nil
}

// FileStore keeps wrapped keys as JSON files in a directory, one file per
// product and version: <product id, escaped>.v<version>.json.
type FileStore struct{ dir string }

// NewFileStore returns a store in dir (created 0700 when first written).
func NewFileStore(dir string) *FileStore { return &FileStore{dir: dir} }

func (s *FileStore) path(productID string, v int) string {
	return filepath.Join(s.dir, url.PathEscape(productID)+".v"+strconv.Itoa(v)+".json")
}

// Get implements Store.
func (s *FileStore) Get(ctx context.Context, productID string) ([]WrappedKey, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []WrappedKey
	for _, e := range ents {
		p, v, ok := parseName(e.Name())
		if !ok || p != productID {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.dir, e.Name()))
		if err != nil {
			return nil, err
		}
		var wk WrappedKey
		if err := json.Unmarshal(b, &wk); err != nil || wk.ProductID != productID || wk.Version != v {
			return nil, rhizome.Errorf(rhizome.EInternal, "keys: %s is not the wrapped key its name says", filepath.Join(s.dir, e.Name()))
		}
		out = append(out, wk)
	}
	slices.SortFunc(out, func(a, b WrappedKey) int { return a.Version - b.Version })
	return out, nil
}

func parseName(name string) (productID string, v int, ok bool) {
	base, ok := strings.CutSuffix(name, ".json")
	if !ok {
		return "", 0, false
	}
	i := strings.LastIndex(base, ".v")
	if i < 0 {
		return "", 0, false
	}
	v, err := strconv.Atoi(base[i+2:])
	if err != nil || v < 1 {
		return "", 0, false
	}
	p, err := url.PathUnescape(base[:i])
	if err != nil {
		return "", 0, false
	}
	return p, v, true
}

// Put implements Store. A new key is linked into place, so that of two
// processes creating the same version exactly one succeeds; a replaced key
// is renamed into place, so that readers see the old or the new file.
func (s *FileStore) Put(ctx context.Context, k WrappedKey, replace bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if k.ProductID == "" || k.Version < 1 {
		return rhizome.Errorf(rhizome.EInvalid, "keys: bad wrapped key %q v%d", k.ProductID, k.Version)
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.dir, ".tmp-"+randomName())
	if err := writeFileSync(tmp, b); err != nil {
		return err
	}
	defer os.Remove(tmp)
	dst := s.path(k.ProductID, k.Version)
	if replace {
		return os.Rename(tmp, dst)
	}
	if err := os.Link(tmp, dst); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return rhizome.Errorf(rhizome.EConflict, "keys: %s already has data key version %d", k.ProductID, k.Version)
		}
		return err
	}
	return nil
}

// Products implements Store.
func (s *FileStore) Products(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if p, _, ok := parseName(e.Name()); ok && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out, nil
}

func writeFileSync(p string, b []byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func randomName() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}
