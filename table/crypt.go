package table

// Encryption at rest of data files (envelope encryption, issue 4).
//
// An encrypted table lives under a location with the scheme rhizome+file://
// or rhizome+s3:// (see crypt_io.go), whose IO encrypts and decrypts the
// table's Parquet data files and passes everything else through: table
// metadata, manifest lists and manifests stay plain, so that the catalog,
// planning, expiry and orphan removal work unchanged. They hold column
// names, file paths and per-file column statistics (min/max values, null
// counts), not rows. Keys come from Options.Keys: one data key per product
// (and key version), wrapped by a master key (package keys).
//
// The file format, "RZE1", is in the spirit of Iceberg's AGS1 stream
// encryption: a header, then the plaintext cut into segments of blockSize
// bytes (the last one shorter, possibly empty only for an empty file),
// each sealed with AES-256-GCM:
//
//	magic       "RZE1"
//	blockSize   uint32 big-endian (plaintext bytes per segment)
//	keyVersion  uint32 big-endian (the product's data key version)
//	salt        16 random bytes
//	idLen       uint16 big-endian
//	productID   idLen bytes
//	segments    ciphertext || 16-byte tag, each
//
// Each file has its own AES key, HKDF-SHA256(data key, salt), so that
// nonces can be the segment index (zero-padded to 12 bytes) without ever
// repeating under one key. The additional data of segment i is the header,
// i (uint64) and a flag that is 1 only for the last segment: reordered,
// dropped, truncated or appended segments and an altered header all fail
// authentication. Any segment can be opened alone, so ReadAt and Seek (how
// Parquet readers find the footer) cost one segment each; the plaintext
// size follows from the file size.

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"
	"time"

	iceio "github.com/apache/iceberg-go/io"

	"github.com/rhizome-mesh/rhizome"
)

// KeyProvider gives the data keys of products; *keys.Keyring is one.
type KeyProvider interface {
	// DataKey returns the key new data of the product is encrypted with,
	// and its version, creating it on first use.
	DataKey(ctx context.Context, productID string) ([]byte, int, error)
	// KeyByVersion returns an older (or the current) version of the key.
	KeyByVersion(ctx context.Context, productID string, v int) ([]byte, error)
}

// EncryptionAlgorithm is what an encrypted table's data files are
// encrypted with; it names the manifest's storage.encryption value.
const EncryptionAlgorithm = "AES-256"

const (
	cryptMagic      = "RZE1"
	cryptBlockSize  = 64 << 10 // small: a footer read decrypts one block
	cryptTagSize    = 16
	cryptSaltSize   = 16
	cryptFixedHdr   = 4 + 4 + 4 + cryptSaltSize + 2
	cryptMaxBlock   = 16 << 20
	cryptKDFInfo    = "rhizome RZE1 data file"
	cryptNonceSize  = 12
	cryptMaxIDBytes = 1 << 10
)

// cryptHeader is the plain header of an encrypted file.
type cryptHeader struct {
	blockSize  int
	keyVersion int
	salt       [cryptSaltSize]byte
	productID  string
	raw        []byte // as written: authenticated with every segment
}

func (h *cryptHeader) marshal() []byte {
	b := make([]byte, 0, cryptFixedHdr+len(h.productID))
	b = append(b, cryptMagic...)
	b = binary.BigEndian.AppendUint32(b, uint32(h.blockSize))
	b = binary.BigEndian.AppendUint32(b, uint32(h.keyVersion))
	b = append(b, h.salt[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.productID)))
	b = append(b, h.productID...)
	h.raw = b
	return b
}

// errNotEncrypted: a data file of an encrypted table without the header.
var errNotEncrypted = errors.New("not an RZE1 encrypted file")

// readCryptHeader reads and checks the header at the start of r.
func readCryptHeader(r io.ReaderAt) (*cryptHeader, error) {
	fixed := make([]byte, cryptFixedHdr)
	if n, err := r.ReadAt(fixed, 0); n < len(fixed) {
		if err == nil || errors.Is(err, io.EOF) {
			return nil, errNotEncrypted
		}
		return nil, err
	}
	if string(fixed[:4]) != cryptMagic {
		return nil, errNotEncrypted
	}
	h := &cryptHeader{
		blockSize:  int(binary.BigEndian.Uint32(fixed[4:])),
		keyVersion: int(binary.BigEndian.Uint32(fixed[8:])),
	}
	copy(h.salt[:], fixed[12:])
	idLen := int(binary.BigEndian.Uint16(fixed[12+cryptSaltSize:]))
	if h.blockSize < 1 || h.blockSize > cryptMaxBlock || h.keyVersion < 1 || idLen == 0 || idLen > cryptMaxIDBytes {
		return nil, fmt.Errorf("corrupt RZE1 header (block size %d, key version %d)", h.blockSize, h.keyVersion)
	}
	id := make([]byte, idLen)
	if n, err := r.ReadAt(id, cryptFixedHdr); n < idLen {
		if err == nil || errors.Is(err, io.EOF) {
			err = errors.New("truncated RZE1 header")
		}
		return nil, err
	}
	h.productID = string(id)
	h.raw = append(fixed, id...)
	return h, nil
}

func fileAEAD(dataKey []byte, salt []byte) (cipher.AEAD, error) {
	fk, err := hkdf.Key(sha256.New, dataKey, salt, cryptKDFInfo, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(fk)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func segmentNonce(i int64) []byte {
	n := make([]byte, cryptNonceSize)
	binary.BigEndian.PutUint64(n[4:], uint64(i))
	return n
}

func segmentAAD(hdr []byte, i int64, last bool) []byte {
	aad := make([]byte, 0, len(hdr)+9)
	aad = append(aad, hdr...)
	aad = binary.BigEndian.AppendUint64(aad, uint64(i))
	if last {
		return append(aad, 1)
	}
	return append(aad, 0)
}

// cryptWriter encrypts what is written to it into w. A full segment is
// sealed only when more data follows, so Close knows which one is last.
type cryptWriter struct {
	w    io.WriteCloser
	aead cipher.AEAD
	hdr  []byte
	buf  []byte
	seg  int64
	err  error
}

func newCryptWriter(w io.WriteCloser, dataKey []byte, version int, productID string) (*cryptWriter, error) {
	if len(productID) == 0 || len(productID) > cryptMaxIDBytes {
		return nil, fmt.Errorf("product id %q is empty or too long for the RZE1 header", productID)
	}
	h := &cryptHeader{blockSize: cryptBlockSize, keyVersion: version, productID: productID}
	if _, err := rand.Read(h.salt[:]); err != nil {
		return nil, err
	}
	aead, err := fileAEAD(dataKey, h.salt[:])
	if err != nil {
		return nil, err
	}
	cw := &cryptWriter{w: w, aead: aead, hdr: h.marshal(), buf: make([]byte, 0, cryptBlockSize)}
	if _, err := w.Write(cw.hdr); err != nil {
		return nil, err
	}
	return cw, nil
}

func (cw *cryptWriter) Write(p []byte) (int, error) {
	if cw.err != nil {
		return 0, cw.err
	}
	n := 0
	for len(p) > 0 {
		if len(cw.buf) == cryptBlockSize {
			if cw.err = cw.seal(false); cw.err != nil {
				return n, cw.err
			}
		}
		k := copy(cw.buf[len(cw.buf):cryptBlockSize], p)
		cw.buf = cw.buf[:len(cw.buf)+k]
		p = p[k:]
		n += k
	}
	return n, nil
}

// ReadFrom lets io.Copy use the segment buffer (FileWriter wants it).
func (cw *cryptWriter) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(struct{ io.Writer }{cw}, r)
}

func (cw *cryptWriter) seal(last bool) error {
	out := cw.aead.Seal(nil, segmentNonce(cw.seg), cw.buf, segmentAAD(cw.hdr, cw.seg, last))
	if _, err := cw.w.Write(out); err != nil {
		return err
	}
	cw.seg++
	cw.buf = cw.buf[:0]
	return nil
}

// Close seals the last segment and closes the underlying writer; an
// unclosed file fails authentication when read.
func (cw *cryptWriter) Close() error {
	if cw.err == nil {
		cw.err = cw.seal(true)
	}
	cerr := cw.w.Close()
	if cw.err != nil {
		return cw.err
	}
	if cerr != nil {
		return cerr
	}
	cw.err = errors.New("closed")
	return nil
}

// cryptFile decrypts an encrypted file for reading: Read, ReadAt and Seek
// see the plaintext, Stat its size.
type cryptFile struct {
	raw     iceio.File
	name    string
	hdr     *cryptHeader
	aead    cipher.AEAD
	segs    int64 // number of segments
	rawSize int64
	size    int64 // plaintext

	mu     sync.Mutex
	pos    int64
	cached int64 // index of the segment in plain, -1 for none
	plain  []byte
}

func openCryptFile(ctx context.Context, keys KeyProvider, name string, raw iceio.File) (*cryptFile, error) {
	hdr, err := readCryptHeader(raw)
	if err != nil {
		if errors.Is(err, errNotEncrypted) {
			return nil, rhizome.Errorf(rhizome.EInternal, "%s: data file of an encrypted table is not encrypted (%v)", name, err).
				WithHint("it was written outside Rhizome or replaced; restore it or publish again")
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if keys == nil {
		return nil, rhizome.Errorf(rhizome.EInternal, "%s is encrypted and no data keys are configured", name).
			WithHint("open the table Catalog with Options.Keys (the server's master key)")
	}
	key, err := keys.KeyByVersion(ctx, hdr.productID, hdr.keyVersion)
	if err != nil {
		return nil, rhizome.Wrap(err, "%s: data key %s v%d", name, hdr.productID, hdr.keyVersion)
	}
	aead, err := fileAEAD(key, hdr.salt[:])
	if err != nil {
		return nil, rhizome.Wrap(err, "%s", name)
	}
	rawSize, err := cryptSizeOf(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: size: %w", name, err)
	}
	f := &cryptFile{raw: raw, name: name, hdr: hdr, aead: aead, rawSize: rawSize, cached: -1}
	body := rawSize - int64(len(hdr.raw))
	seg := int64(hdr.blockSize + cryptTagSize)
	f.segs = max((body+seg-1)/seg, 1)
	if last := body - (f.segs-1)*seg; last < cryptTagSize {
		return nil, f.authError(f.segs-1, errors.New("truncated"))
	}
	f.size = body - f.segs*cryptTagSize
	// Open the last segment now: a truncated or wrong-key file fails here,
	// at open, rather than somewhere in a Parquet reader.
	if err := f.load(f.segs - 1); err != nil {
		return nil, err
	}
	return f, nil
}

func cryptSizeOf(f iceio.File) (int64, error) {
	if st, err := f.Stat(); err == nil {
		return st.Size(), nil
	}
	n, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, err
	}
	_, err = f.Seek(0, io.SeekStart)
	return n, err
}

func (f *cryptFile) authError(seg int64, err error) error {
	return &rhizome.Error{Code: rhizome.EForbidden, Err: err,
		Message: fmt.Sprintf("%s: segment %d of the encrypted data file failed authentication (AES-GCM): wrong data key or master key, or the file was altered", f.name, seg),
		Hint:    "check that the server runs with the master key the table was written under; if the key is right, the file is corrupt"}
}

// load decrypts segment i into f.plain; f.mu is held or f is not shared.
func (f *cryptFile) load(i int64) error {
	if f.cached == i {
		return nil
	}
	seg := int64(f.hdr.blockSize + cryptTagSize)
	off := int64(len(f.hdr.raw)) + i*seg
	n := min(seg, f.rawSize-off)
	ct := make([]byte, n)
	if m, err := f.raw.ReadAt(ct, off); int64(m) < n {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("%s: read segment %d: %w", f.name, i, err)
	}
	pt, err := f.aead.Open(f.plain[:0], segmentNonce(i), ct, segmentAAD(f.hdr.raw, i, i == f.segs-1))
	if err != nil {
		f.cached = -1
		return f.authError(i, err)
	}
	f.plain, f.cached = pt, i
	return nil
}

func (f *cryptFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &fs.PathError{Op: "readat", Path: f.name, Err: fs.ErrInvalid}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for n < len(p) && off < f.size {
		i := off / int64(f.hdr.blockSize)
		if err := f.load(i); err != nil {
			return n, err
		}
		k := copy(p[n:], f.plain[off-i*int64(f.hdr.blockSize):])
		n += k
		off += int64(k)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *cryptFile) Read(p []byte) (int, error) {
	f.mu.Lock()
	pos := f.pos
	f.mu.Unlock()
	if pos >= f.size {
		return 0, io.EOF
	}
	n, err := f.ReadAt(p, pos)
	f.mu.Lock()
	f.pos = pos + int64(n)
	f.mu.Unlock()
	if errors.Is(err, io.EOF) && n > 0 {
		err = nil
	}
	return n, err
}

func (f *cryptFile) Seek(offset int64, whence int) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = f.pos + offset
	case io.SeekEnd:
		abs = f.size + offset
	default:
		return 0, &fs.PathError{Op: "seek", Path: f.name, Err: fs.ErrInvalid}
	}
	if abs < 0 {
		return 0, &fs.PathError{Op: "seek", Path: f.name, Err: fs.ErrInvalid}
	}
	f.pos = abs
	return abs, nil
}

func (f *cryptFile) Stat() (fs.FileInfo, error) {
	st, err := f.raw.Stat()
	if err != nil {
		return nil, err
	}
	return cryptPlainInfo{st, f.size}, nil
}

func (f *cryptFile) Close() error { return f.raw.Close() }

// cryptPlainInfo reports the plaintext size of an encrypted file.
type cryptPlainInfo struct {
	fs.FileInfo
	size int64
}

func (i cryptPlainInfo) Size() int64 { return i.size }

// decryptAll decrypts a whole encrypted file held in memory.
func decryptAll(ctx context.Context, keys KeyProvider, name string, b []byte) ([]byte, error) {
	f, err := openCryptFile(ctx, keys, name, &cryptMemFile{Reader: bytes.NewReader(b), name: name})
	if err != nil {
		return nil, err
	}
	out := make([]byte, f.size)
	if _, err := f.ReadAt(out, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return out, nil
}

// cryptMemFile is an iceio.File over bytes.
type cryptMemFile struct {
	*bytes.Reader
	name string
}

func (m *cryptMemFile) Stat() (fs.FileInfo, error) { return cryptMemInfo{m.name, m.Size()}, nil }
func (m *cryptMemFile) Close() error               { return nil }

type cryptMemInfo struct {
	name string
	size int64
}

func (i cryptMemInfo) Name() string       { return i.name }
func (i cryptMemInfo) Size() int64        { return i.size }
func (i cryptMemInfo) Mode() fs.FileMode  { return 0o444 }
func (i cryptMemInfo) ModTime() time.Time { return time.Time{} }
func (i cryptMemInfo) IsDir() bool        { return false }
func (i cryptMemInfo) Sys() any           { return nil }
