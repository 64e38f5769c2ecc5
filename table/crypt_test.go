package table

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	iceio "github.com/apache/iceberg-go/io"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/keys"
)

// TestCryptFormat round-trips sizes around the segment size and checks
// that random access, tampering and truncation behave.
func TestCryptFormat(t *testing.T) {
	ctx := context.Background()
	kp := cryptStaticKeys{key: cryptRandomKey(t)}
	for _, n := range []int{0, 1, cryptBlockSize - 1, cryptBlockSize, cryptBlockSize + 1, 3*cryptBlockSize + 17} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			plain := make([]byte, n)
			_, _ = rand.Read(plain)
			ct := cryptEncryptBytes(t, kp.key, plain)
			if len(ct) < n+cryptTagSize || !bytes.HasPrefix(ct, []byte(cryptMagic)) {
				t.Fatalf("ciphertext of %d bytes is %d bytes", n, len(ct))
			}
			got, err := decryptAll(ctx, kp, "x.parquet", ct)
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("round trip: %v (equal %v)", err, bytes.Equal(got, plain))
			}
			f, err := openCryptFile(ctx, kp, "x.parquet", &cryptMemFile{Reader: bytes.NewReader(ct)})
			if err != nil {
				t.Fatal(err)
			}
			if st, _ := f.Stat(); st.Size() != int64(n) {
				t.Fatalf("Stat size %d, want %d", st.Size(), n)
			}
			if end, _ := f.Seek(-min(int64(n), 8), io.SeekEnd); n > 0 {
				tail := make([]byte, min(n, 8))
				if _, err := io.ReadFull(f, tail); err != nil || !bytes.Equal(tail, plain[end:]) {
					t.Fatalf("tail after Seek: %v", err)
				}
			}
			if n > 2 {
				mid := make([]byte, n/2)
				if _, err := f.ReadAt(mid, int64(n/4)); err != nil || !bytes.Equal(mid, plain[n/4:n/4+n/2]) {
					t.Fatalf("ReadAt: %v", err)
				}
			}
			// Every byte is authenticated: header, body and tags.
			for _, at := range []int{5, len(ct) / 2, len(ct) - 1} {
				bad := bytes.Clone(ct)
				bad[at] ^= 1
				if _, err := decryptAll(ctx, kp, "x.parquet", bad); err == nil {
					t.Fatalf("flipped byte %d: no error", at)
				}
			}
			if _, err := decryptAll(ctx, cryptStaticKeys{key: cryptRandomKey(t)}, "x.parquet", ct); rhizome.Code(err) != rhizome.EForbidden || !strings.Contains(err.Error(), "authentication") {
				t.Fatalf("wrong key: got %v", err)
			}
		})
	}
	t.Run("truncated at a segment", func(t *testing.T) {
		ct := cryptEncryptBytes(t, kp.key, make([]byte, 2*cryptBlockSize+5))
		hdr := len(ct) - (2*cryptBlockSize + 5) - 3*cryptTagSize
		cut := ct[:hdr+2*(cryptBlockSize+cryptTagSize)]
		if _, err := decryptAll(ctx, kp, "x.parquet", cut); !strings.Contains(fmt.Sprint(err), "authentication") {
			t.Fatalf("truncated file: got %v", err)
		}
	})
	t.Run("plain file", func(t *testing.T) {
		_, err := decryptAll(ctx, kp, "x.parquet", []byte("PAR1 not encrypted PAR1"))
		wantCode(t, err, rhizome.EInternal)
	})
}

type cryptStaticKeys struct{ key []byte }

func (s cryptStaticKeys) DataKey(context.Context, string) ([]byte, int, error) { return s.key, 1, nil }
func (s cryptStaticKeys) KeyByVersion(context.Context, string, int) ([]byte, error) {
	return s.key, nil
}

func cryptRandomKey(t *testing.T) []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}

type cryptNopCloser struct{ *bytes.Buffer }

func (cryptNopCloser) Close() error { return nil }

func cryptEncryptBytes(t *testing.T, key, plain []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := newCryptWriter(cryptNopCloser{&buf}, key, 1, "dp.test")
	if err != nil {
		t.Fatal(err)
	}
	// Odd write sizes cross segment boundaries.
	for p := plain; len(p) > 0; {
		k := min(len(p), 1000)
		if _, err := w.Write(p[:k]); err != nil {
			t.Fatal(err)
		}
		p = p[k:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

const cryptSecretMarker = "SECRET-MARKER-c0ffee"

// cryptSecrets returns n rows whose names hold cryptSecretMarker.
func cryptSecrets(from, n int) rows {
	r := rows{schema: idName}
	for i := from; i < from+n; i++ {
		r.json = append(r.json, fmt.Sprintf(`{"id": %d, "name": "%s-%d"}`, i, cryptSecretMarker, i))
	}
	return r
}

// cryptKeyEnv is a keyring on a local master key and a file key store.
type cryptKeyEnv struct {
	dataDir, keyDir, master string
	ring                    *keys.Keyring
}

func newCryptKeyEnv(t *testing.T) *cryptKeyEnv {
	t.Helper()
	k := &cryptKeyEnv{dataDir: t.TempDir()}
	k.keyDir = filepath.Join(k.dataDir, "keys")
	var err error
	if k.master, err = keys.LocalMasterKey(k.dataDir); err != nil {
		t.Fatal(err)
	}
	k.ring = openCryptRing(t, k.master, k.keyDir)
	return k
}

func openCryptRing(t *testing.T, master, keyDir string) *keys.Keyring {
	t.Helper()
	r, err := keys.Open(context.Background(), master, keys.NewFileStore(keyDir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// cryptRawFile is a data file as stored: its bytes and, on local storage, its
// modification time.
type cryptRawFile struct {
	data  []byte
	mtime time.Time
}

func (e *env) raw(t *testing.T, uri string) cryptRawFile {
	t.Helper()
	loc := plainLocation(uri)
	if p, ok := localPath(loc); ok {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return cryptRawFile{b, st.ModTime()}
	}
	fsys, err := iceio.LoadFS(e.cat.withIO(context.Background()), e.cat.props, loc)
	if err != nil {
		t.Fatal(err)
	}
	b, err := fsys.(iceio.ReadFileIO).ReadFile(loc)
	if err != nil {
		t.Fatal(err)
	}
	return cryptRawFile{data: b}
}

// scanRows counts rows through iceberg-go's own scan of the table, the
// encrypted IO decrypting underneath.
func (e *env) scanRows(ctx context.Context, c *Catalog, ref Ref) (int64, error) {
	ctx = c.withIO(ctx)
	tbl, err := c.load(ctx, ref)
	if err != nil {
		return 0, err
	}
	at, err := tbl.Scan().ToArrowTable(ctx)
	if err != nil {
		return 0, err
	}
	defer at.Release()
	return at.NumRows(), nil
}

func (e *env) publishEncrypted(t *testing.T, ref Ref, mode Mode, files ...rows) *Snapshot {
	t.Helper()
	var paths []string
	for _, r := range files {
		p := e.parquetFile(t, r)
		// The check that stored files lack the marker means something
		// only if the plaintext has it (uncompressed).
		if b, err := os.ReadFile(p); err != nil || !bytes.Contains(b, []byte(cryptSecretMarker)) {
			t.Fatalf("fixture %s does not hold %s in the clear (%v)", p, cryptSecretMarker, err)
		}
		paths = append(paths, p)
	}
	time.Sleep(3 * time.Millisecond)
	s, err := e.cat.Publish(context.Background(), PublishRequest{Ref: ref, Files: paths, Mode: mode, Encrypt: true, ProductID: "dp.customer.360"})
	if err != nil {
		t.Fatalf("publish %s encrypted: %v", ref, err)
	}
	return s
}

func TestEncryptedTable(t *testing.T) {
	for _, b := range []backend{{"sqlite", "file"}, {"sqlite", "s3"}} {
		t.Run(b.String(), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			k := newCryptKeyEnv(t)
			e := newCryptEnv(t, b, func(o *Options) { o.Keys = k.ring })
			ref := RefFor("dp.customer.360", "1.0.0")

			s := e.publishEncrypted(t, ref, Replace, cryptSecrets(0, 100))
			if s.Rows != 100 {
				t.Fatalf("snapshot rows %d, want 100", s.Rows)
			}
			e.publishEncrypted(t, ref, Append, cryptSecrets(100, 50))
			if n, err := e.scanRows(ctx, e.cat, ref); err != nil || n != 150 {
				t.Fatalf("iceberg-go scan: %d rows, %v; want 150", n, err)
			}

			uris, _, err := e.cat.DataFiles(ctx, ref, AsOf{})
			if err != nil || len(uris) != 2 {
				t.Fatalf("DataFiles: %v %v", uris, err)
			}
			before := map[string]cryptRawFile{}
			for _, u := range uris {
				if !strings.HasPrefix(u, "rhizome+"+b.storage+"://") {
					t.Fatalf("data file %s: want the encrypted scheme", u)
				}
				r := e.raw(t, u)
				if bytes.Contains(r.data, []byte(cryptSecretMarker)) {
					t.Fatalf("%s holds the plaintext marker", u)
				}
				if bytes.HasSuffix(r.data, []byte("PAR1")) || bytes.HasPrefix(r.data, []byte("PAR1")) || !bytes.HasPrefix(r.data, []byte(cryptMagic)) {
					t.Fatalf("%s: want an RZE1 file, not Parquet", u)
				}
				before[u] = r
			}

			// Readable decrypts into a private directory for DuckDB.
			dir := t.TempDir()
			files, err := e.cat.Readable(ctx, ref, AsOf{}, dir)
			if err != nil {
				t.Fatal(err)
			}
			var total int64
			for _, f := range files {
				if filepath.Dir(f) != dir {
					t.Fatalf("readable file %s is not in %s", f, dir)
				}
				total += parquetRows(t, f)
			}
			if total != 150 {
				t.Fatalf("readable files hold %d rows, want 150", total)
			}
			// Time travel reads the first snapshot's files.
			if files, err := e.cat.Readable(ctx, ref, AsOf{SnapshotID: s.ID}, t.TempDir()); err != nil || len(files) != 1 || parquetRows(t, files[0]) != 100 {
				t.Fatalf("readable as of the first snapshot: %v %v", files, err)
			}

			// Orphan removal must recognise the encrypted files as live.
			if removed, err := e.cat.RemoveOrphans(ctx, ref, time.Now()); err != nil || len(removed) != 0 {
				t.Fatalf("RemoveOrphans removed %v (%v); want nothing", removed, err)
			}

			t.Run("wrong master key", func(t *testing.T) {
				other, err := keys.LocalMasterKey(t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				c := e.reopen(t, openCryptRing(t, other, k.keyDir))
				_, err = c.Readable(ctx, ref, AsOf{}, t.TempDir())
				wantCryptAuthFailure(t, err)
				_, err = e.scanRows(ctx, c, ref)
				if err == nil || !strings.Contains(err.Error(), "authentication") {
					t.Fatalf("scan with the wrong master key: got %v", err)
				}
			})
			t.Run("wrong data key", func(t *testing.T) {
				c := e.reopen(t, cryptStaticKeys{key: cryptRandomKey(t)})
				_, err := c.Readable(ctx, ref, AsOf{}, t.TempDir())
				wantCryptAuthFailure(t, err)
				if !strings.Contains(err.Error(), "AES-GCM") {
					t.Fatalf("want the data file's GCM failure, got %v", err)
				}
			})
			t.Run("no keys", func(t *testing.T) {
				c := e.reopen(t, nil)
				_, err := c.Readable(ctx, ref, AsOf{}, t.TempDir())
				wantCode(t, err, rhizome.EInternal)
				_, err = c.Publish(ctx, PublishRequest{Ref: ref, Files: []string{e.parquetFile(t, people(0, 1))}, Mode: Append})
				wantCode(t, err, rhizome.EInvalid)
			})

			if b.storage != "file" {
				return
			}
			t.Run("rotation", func(t *testing.T) {
				keyFiles := cryptReadDir(t, k.keyDir)
				newMaster, err := keys.LocalMasterKey(t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				if err := k.ring.Rotate(ctx, newMaster); err != nil {
					t.Fatal(err)
				}
				after := cryptReadDir(t, k.keyDir)
				if len(after) != len(keyFiles) || len(after) == 0 {
					t.Fatalf("key files %v became %v", keyFiles, after)
				}
				for name, b := range keyFiles {
					if bytes.Equal(after[name], b) {
						t.Fatalf("key file %s did not change", name)
					}
				}
				for u, r := range before {
					now := e.raw(t, u)
					if !bytes.Equal(now.data, r.data) || !now.mtime.Equal(r.mtime) {
						t.Fatalf("rotation touched data file %s", u)
					}
				}
				// A fresh process with the new master key reads the data;
				// one with the old key no longer can.
				c := e.reopen(t, openCryptRing(t, newMaster, k.keyDir))
				if n, err := e.scanRows(ctx, c, ref); err != nil || n != 150 {
					t.Fatalf("after rotation: %d rows, %v", n, err)
				}
				c = e.reopen(t, openCryptRing(t, k.master, k.keyDir))
				_, err = c.Readable(ctx, ref, AsOf{}, t.TempDir())
				wantCryptAuthFailure(t, err)
			})
		})
	}
}

func wantCryptAuthFailure(t *testing.T, err error) {
	t.Helper()
	wantCode(t, err, rhizome.EForbidden)
	if !strings.Contains(err.Error(), "authentication") {
		t.Fatalf("error does not say authentication failed: %v", err)
	}
}

// TestEncryptionIsPerTable: a plain table beside an encrypted one stays
// plain, and a table keeps the encryption it was created with.
func TestEncryptionIsPerTable(t *testing.T) {
	ctx := context.Background()
	k := newCryptKeyEnv(t)
	e := newCryptEnv(t, backend{"sqlite", "file"}, func(o *Options) { o.Keys = k.ring })
	plain, enc := RefFor("dp.sales.orders", "1.0.0"), RefFor("dp.customer.360", "1.0.0")

	e.publish(t, plain, Replace, nil, cryptSecrets(0, 10))
	files, _, err := e.cat.DataFiles(ctx, plain, AsOf{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || !bytes.HasSuffix(b, []byte("PAR1")) {
			t.Fatalf("plain table file %s is not Parquet (%v)", f, err)
		}
	}
	if rf, err := e.cat.Readable(ctx, plain, AsOf{}, t.TempDir()); err != nil || !cryptSameFiles(rf, files) {
		t.Fatalf("Readable of a local plain table: %v %v, want its files %v", rf, err, files)
	}
	if n, _ := e.icebergRows(t, plain); n != 10 {
		t.Fatalf("plain table: %d rows through a separate catalog", n)
	}

	_, err = e.cat.Publish(ctx, PublishRequest{Ref: plain, Files: []string{e.parquetFile(t, people(0, 1))}, Mode: Append, Encrypt: true})
	wantCode(t, err, rhizome.EConflict)

	e.publishEncrypted(t, enc, Replace, cryptSecrets(0, 10))
	// Asking for no encryption still encrypts: no downgrade.
	if _, err := e.cat.Publish(ctx, PublishRequest{Ref: enc, Files: []string{e.parquetFile(t, cryptSecrets(10, 5))}, Mode: Append, ProductID: "dp.customer.360"}); err != nil {
		t.Fatal(err)
	}
	files, _, err = e.cat.DataFiles(ctx, enc, AsOf{})
	if err != nil || len(files) != 2 {
		t.Fatal(files, err)
	}
	for _, f := range files {
		if !bytes.HasPrefix(e.raw(t, f).data, []byte(cryptMagic)) {
			t.Fatalf("%s is not encrypted", f)
		}
	}
	// A new data key version encrypts new files; old ones still read.
	if v, err := k.ring.NewDataKey(ctx, "dp.customer.360"); err != nil || v != 2 {
		t.Fatalf("NewDataKey: %d %v", v, err)
	}
	e.publishEncrypted(t, enc, Append, cryptSecrets(15, 5))
	if n, err := e.scanRows(ctx, e.cat, enc); err != nil || n != 20 {
		t.Fatalf("scan after a new data key: %d %v", n, err)
	}

	// Expiry deletes an encrypted table's replaced files.
	e.publishEncrypted(t, enc, Replace, cryptSecrets(0, 3))
	if _, err := e.cat.Expire(ctx, enc, time.Now().Add(time.Second), 1); err != nil {
		t.Fatal(err)
	}
	if n, err := e.scanRows(ctx, e.cat, enc); err != nil || n != 3 {
		t.Fatalf("after expiry: %d %v", n, err)
	}
	// A file no snapshot references goes, the live ones stay.
	live, _, err := e.cat.DataFiles(ctx, enc, AsOf{})
	if err != nil || len(live) != 1 {
		t.Fatal(live, err)
	}
	orphan := strings.TrimSuffix(live[0], ".parquet") + "-orphan.parquet"
	p, _ := localPath(plainLocation(orphan))
	if err := os.WriteFile(p, []byte("left behind"), 0o600); err != nil {
		t.Fatal(err)
	}
	if removed, err := e.cat.RemoveOrphans(ctx, enc, time.Now()); err != nil || !cryptSameFiles(removed, []string{orphan}) {
		t.Fatalf("RemoveOrphans: %v %v; want %s", removed, err, orphan)
	}
	if n, err := e.scanRows(ctx, e.cat, enc); err != nil || n != 3 {
		t.Fatalf("after orphan removal: %d %v", n, err)
	}
}

func cryptSameFiles(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }

func cryptReadDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

// newCryptEnv is newEnv with the Catalog's options changed.
func newCryptEnv(t *testing.T, b backend, set func(*Options)) *env {
	t.Helper()
	e := newEnv(t, b)
	set(&e.opt)
	e.cat = e.open(t)
	return e
}

// reopen opens another Catalog on e's database and storage, as another
// process would, with the given keys.
func (e *env) reopen(t *testing.T, kp KeyProvider) *Catalog {
	t.Helper()
	opt := e.opt
	opt.Keys = kp
	c, err := Open(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
