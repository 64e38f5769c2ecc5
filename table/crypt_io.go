package table

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"strings"

	iceio "github.com/apache/iceberg-go/io"

	"github.com/rhizome-mesh/rhizome"
)

// cryptSchemePrefix turns a storage scheme into that of an encrypted table
// on it: rhizome+file:///lake/..., rhizome+s3://bucket/....
const cryptSchemePrefix = "rhizome+"

func init() {
	for _, s := range []string{"file", "s3", "s3a"} {
		iceio.Register(cryptSchemePrefix+s, openCryptIO)
	}
}

// openCryptIO is iceberg-go's factory for the encrypted schemes: it opens
// the storage underneath and takes the data keys from ctx (Catalog.withIO
// puts them there), so every iceberg-go operation on an encrypted table
// (scans, AddFiles reading footers, expiry) goes through it.
func openCryptIO(ctx context.Context, u *url.URL, props map[string]string) (iceio.IO, error) {
	inner, err := iceio.LoadFS(ctx, props, plainLocation(u.String()))
	if err != nil {
		return nil, err
	}
	keys, _ := ctx.Value(cryptKeysKey{}).(KeyProvider)
	return &cryptIO{inner: inner, ctx: ctx, keys: keys}, nil
}

type cryptKeysKey struct{}

// withCryptKeys gives the encrypted-scheme IO the data keys.
func withCryptKeys(ctx context.Context, keys KeyProvider) context.Context {
	if keys == nil {
		return ctx
	}
	return context.WithValue(ctx, cryptKeysKey{}, keys)
}

func isEncryptedLocation(loc string) bool { return strings.HasPrefix(loc, cryptSchemePrefix) }

func plainLocation(loc string) string { return strings.TrimPrefix(loc, cryptSchemePrefix) }

// isCryptDataFile tells the files the IO encrypts: Parquet. Iceberg metadata
// is JSON, Avro and Puffin (.stats), never .parquet.
func isCryptDataFile(name string) bool { return strings.HasSuffix(name, ".parquet") }

// cryptIO encrypts the data files of an encrypted table and passes the
// rest through to the storage underneath. Names are full URIs with the
// encrypted scheme.
type cryptIO struct {
	inner iceio.IO
	ctx   context.Context // the factory's: for key lookups
	keys  KeyProvider
	// productID, when set, is whose data key new data files get; only
	// Publish sets it, so nothing else writes data files that would be
	// unreadable for want of a key.
	productID string
}

func (c *cryptIO) Open(name string) (iceio.File, error) {
	f, err := c.inner.Open(plainLocation(name))
	if err != nil || !isCryptDataFile(name) {
		return f, err
	}
	cf, err := openCryptFile(c.ctx, c.keys, name, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return cf, nil
}

func (c *cryptIO) ReadFile(name string) ([]byte, error) {
	var b []byte
	var err error
	if r, ok := c.inner.(iceio.ReadFileIO); ok {
		b, err = r.ReadFile(plainLocation(name))
	} else {
		f, oerr := c.inner.Open(plainLocation(name))
		if oerr != nil {
			return nil, oerr
		}
		defer f.Close()
		b, err = io.ReadAll(f)
	}
	if err != nil || !isCryptDataFile(name) {
		return b, err
	}
	return decryptAll(c.ctx, c.keys, name, b)
}

func (c *cryptIO) Remove(name string) error { return c.inner.Remove(plainLocation(name)) }

func (c *cryptIO) writable() (iceio.WriteFileIO, error) {
	w, ok := c.inner.(iceio.WriteFileIO)
	if !ok {
		return nil, fmt.Errorf("storage underneath cannot be written")
	}
	return w, nil
}

func (c *cryptIO) Create(name string) (iceio.FileWriter, error) {
	w, err := c.writable()
	if err != nil {
		return nil, err
	}
	if !isCryptDataFile(name) {
		return w.Create(plainLocation(name))
	}
	if c.productID == "" || c.keys == nil {
		return nil, rhizome.Errorf(rhizome.EInternal, "%s: the data files of an encrypted table are written by table.Publish only", name)
	}
	key, version, err := c.keys.DataKey(c.ctx, c.productID)
	if err != nil {
		return nil, rhizome.Wrap(err, "%s: data key of %s", name, c.productID)
	}
	out, err := w.Create(plainLocation(name))
	if err != nil {
		return nil, err
	}
	cw, err := newCryptWriter(out, key, version, c.productID)
	if err != nil {
		out.Close()
		_ = c.inner.Remove(plainLocation(name))
		return nil, err
	}
	return cw, nil
}

func (c *cryptIO) WriteFile(name string, p []byte) error {
	if !isCryptDataFile(name) {
		w, err := c.writable()
		if err != nil {
			return err
		}
		return w.WriteFile(plainLocation(name), p)
	}
	w, err := c.Create(name)
	if err != nil {
		return err
	}
	if _, err := w.Write(p); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// WalkDir lists the storage underneath with names in the encrypted scheme
// (orphan removal compares them with the manifests').
func (c *cryptIO) WalkDir(root string, fn fs.WalkDirFunc) error {
	l, ok := c.inner.(iceio.ListableIO)
	if !ok {
		return fmt.Errorf("storage underneath %s cannot be listed", root)
	}
	return l.WalkDir(plainLocation(root), func(p string, d fs.DirEntry, err error) error {
		if !isEncryptedLocation(p) && strings.Contains(p, "://") {
			p = cryptSchemePrefix + p
		} else if !isEncryptedLocation(p) {
			p = cryptSchemePrefix + "file://" + p
		}
		return fn(p, d, err)
	})
}

// MkdirAll lets Publish's copy create local directories.
func (c *cryptIO) MkdirAll(p string) error {
	if m, ok := c.inner.(iceio.MkdirAllIO); ok {
		return m.MkdirAll(plainLocation(p))
	}
	return nil
}

// cryptForWriting returns the table's IO set to encrypt new data files for
// productID; an IO that is not encrypted is returned as is.
func cryptForWriting(fsys iceio.IO, productID string) iceio.IO {
	c, ok := fsys.(*cryptIO)
	if !ok {
		return fsys
	}
	w := *c
	w.productID = productID
	return &w
}

// encryptedLocation is where an encrypted table goes: loc (or, for "",
// the default, <warehouse>/<namespace>.db/<name>) on the encrypted scheme.
func (c *Catalog) encryptedLocation(ref Ref, loc string) string {
	if loc == "" {
		loc = strings.TrimSuffix(c.props["warehouse"], "/") + "/" + ref.Namespace + ".db/" + ref.Name
	}
	return cryptSchemePrefix + loc
}

// checkEncryption compares the publish's wish with the table's location,
// fixed when the table was created. Publishes to an encrypted table
// always encrypt (asking for less never downgrades a table).
func (c *Catalog) checkEncryption(req PublishRequest, tableLocation string) error {
	enc := isEncryptedLocation(tableLocation)
	if (enc || req.Encrypt) && c.keys == nil {
		return rhizome.Errorf(rhizome.EInvalid, "table %s: encryption needs data keys and this server has none", req.Ref).
			WithHint("configure a master key (the server's local default, or a KMS keeper URL)")
	}
	if req.Encrypt && !enc {
		return rhizome.Errorf(rhizome.EConflict, "table %s was created without encryption at rest", req.Ref).
			WithHint("encryption is fixed when a table is created: publish a new major version, or drop storage.encryption")
	}
	return nil
}

// encryptionProductID is the key owner of a publish: the product, or the
// table when the request names none.
func encryptionProductID(req PublishRequest) string {
	if req.ProductID != "" {
		return req.ProductID
	}
	return req.Ref.String()
}

// Readable returns local plaintext Parquet files of a snapshot, for engines
// (DuckDB) that read files: for a plain file:// table the table's own
// files, otherwise copies in dir, downloaded and, for an encrypted table,
// decrypted. The copies are plaintext: dir should be private to the
// process (0700), and the caller deletes them when done.
func (c *Catalog) Readable(ctx context.Context, ref Ref, at AsOf, dir string) ([]string, error) {
	files, _, err := c.DataFiles(ctx, ref, at)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(files))
	for _, f := range files {
		p, err := c.Fetch(ctx, f, dir)
		if err != nil {
			return nil, rhizome.Wrap(err, "table %s", ref)
		}
		out = append(out, p)
	}
	return out, nil
}
