// Package keys owns envelope encryption keys: one random 256-bit data key
// per data product (and per version, when a product's key is renewed),
// stored only wrapped (encrypted) by a master key that a gocloud.dev/secrets
// keeper holds: a local key file by default (base64key://), a cloud KMS
// when configured. Rotating the master key re-wraps the data keys and
// touches no data, since the data keys themselves do not change.
//
// It leaves to table how data is encrypted with the keys, and to the
// caller where wrapped keys live (Store; FileStore for now, the metastore
// later) and where the master key URL comes from.
package keys

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"gocloud.dev/secrets"
	// Keepers by URL scheme: base64key:// (LocalMasterKey's) and awskms://
	// (AWS KMS, or a KMS-compatible endpoint). Other clouds' keepers
	// (gcpkms://, azurekeyvault://) register when imported here too.
	_ "gocloud.dev/secrets/awskms"
	_ "gocloud.dev/secrets/localsecrets"

	"github.com/rhizome-mesh/rhizome"
)

// KeySize is the size of a data key in bytes (AES-256).
const KeySize = 32

// WrappedKey is one version of a product's data key, encrypted by the
// master key.
type WrappedKey struct {
	ProductID string    `json:"product_id"`
	Version   int       `json:"version"` // 1, 2, ...
	Wrapped   []byte    `json:"wrapped"`
	CreatedAt time.Time `json:"created_at"`
}

// Store persists wrapped data keys.
type Store interface {
	// Get returns the product's keys, oldest version first; a product
	// without keys has none, which is not an error.
	Get(ctx context.Context, productID string) ([]WrappedKey, error)
	// Put stores k. Unless replace, it fails with rhizome.EConflict when
	// the product has k.Version already (another process created it).
	Put(ctx context.Context, k WrappedKey, replace bool) error
	// Products lists the products that have keys.
	Products(ctx context.Context) ([]string, error)
}

// Keyring hands out data keys, unwrapping them with the master key. It is
// safe for concurrent use.
type Keyring struct {
	store Store
	clock func() time.Time

	mu     sync.Mutex
	keeper *secrets.Keeper
	cache  map[string]map[int][]byte // product -> version -> plaintext key
}

// Open opens the master key keeper at masterURL (e.g. base64key://..., see
// LocalMasterKey; awskms://... when that keeper is linked in).
func Open(ctx context.Context, masterURL string, store Store) (*Keyring, error) {
	if store == nil {
		return nil, rhizome.Errorf(rhizome.EInvalid, "keys: no key store").WithHint("pass e.g. keys.NewFileStore(<data dir>/keys)")
	}
	k, err := openKeeper(ctx, masterURL)
	if err != nil {
		return nil, err
	}
	return &Keyring{store: store, clock: time.Now, keeper: k, cache: map[string]map[int][]byte{}}, nil
}

func openKeeper(ctx context.Context, masterURL string) (*secrets.Keeper, error) {
	if masterURL == "" {
		return nil, rhizome.Errorf(rhizome.EInvalid, "keys: no master key URL").
			WithHint("use keys.LocalMasterKey(dataDir) for a local key, or a KMS keeper URL such as awskms://<key-id>")
	}
	k, err := secrets.OpenKeeper(ctx, masterURL)
	if err != nil {
		// The URL may hold the key itself: never repeat it.
		return nil, &rhizome.Error{Code: rhizome.EInvalid, Err: err,
			Message: "keys: cannot open the master key keeper (" + scheme(masterURL) + ")",
			Hint:    "check the master key URL; a KMS scheme needs its gocloud.dev/secrets package linked into the binary"}
	}
	return k, nil
}

func scheme(u string) string {
	for i := 0; i < len(u); i++ {
		if u[i] == ':' {
			return u[:i] + "://"
		}
	}
	return "no scheme"
}

// Close releases the master key keeper.
func (r *Keyring) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.keeper.Close()
}

// DataKey returns the newest data key of the product and its version,
// creating (and storing wrapped) version 1 on first use.
func (r *Keyring) DataKey(ctx context.Context, productID string) ([]byte, int, error) {
	if productID == "" {
		return nil, 0, rhizome.Errorf(rhizome.EInvalid, "keys: no product id")
	}
	wks, err := r.store.Get(ctx, productID)
	if err != nil {
		return nil, 0, rhizome.Wrap(err, "keys: read the keys of %s", productID)
	}
	if len(wks) == 0 {
		return r.create(ctx, productID, 1)
	}
	newest := wks[len(wks)-1]
	key, err := r.unwrap(ctx, newest)
	if err != nil {
		return nil, 0, err
	}
	return key, newest.Version, nil
}

// NewDataKey adds a new version of the product's data key, which DataKey
// returns from now on; data encrypted under older versions stays readable.
func (r *Keyring) NewDataKey(ctx context.Context, productID string) (int, error) {
	wks, err := r.store.Get(ctx, productID)
	if err != nil {
		return 0, rhizome.Wrap(err, "keys: read the keys of %s", productID)
	}
	v := 1
	if len(wks) > 0 {
		v = wks[len(wks)-1].Version + 1
	}
	_, v, err = r.create(ctx, productID, v)
	return v, err
}

// create makes version v of the product's key. If another process made
// it first, theirs wins: it is the one data may already be encrypted with.
func (r *Keyring) create(ctx context.Context, productID string, v int) ([]byte, int, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, 0, rhizome.Wrap(err, "keys: generate a data key")
	}
	r.mu.Lock()
	wrapped, err := r.keeper.Encrypt(ctx, key)
	r.mu.Unlock()
	if err != nil {
		return nil, 0, rhizome.Wrap(err, "keys: wrap the data key of %s with the master key", productID)
	}
	wk := WrappedKey{ProductID: productID, Version: v, Wrapped: wrapped, CreatedAt: r.clock().UTC()}
	if err := r.store.Put(ctx, wk, false); err != nil {
		if rhizome.Code(err) != rhizome.EConflict {
			return nil, 0, rhizome.Wrap(err, "keys: store the data key of %s", productID)
		}
		k, err := r.KeyByVersion(ctx, productID, v)
		return k, v, err
	}
	r.remember(productID, v, key)
	return slices.Clone(key), v, nil
}

// KeyByVersion returns version v of the product's data key; ENotFound if
// there is none.
func (r *Keyring) KeyByVersion(ctx context.Context, productID string, v int) ([]byte, error) {
	r.mu.Lock()
	k, ok := r.cache[productID][v]
	r.mu.Unlock()
	if ok {
		return slices.Clone(k), nil
	}
	wks, err := r.store.Get(ctx, productID)
	if err != nil {
		return nil, rhizome.Wrap(err, "keys: read the keys of %s", productID)
	}
	for _, wk := range wks {
		if wk.Version == v {
			return r.unwrap(ctx, wk)
		}
	}
	return nil, rhizome.Errorf(rhizome.ENotFound, "keys: %s has no data key version %d", productID, v).
		WithHint("the key store may be incomplete or from another installation")
}

func (r *Keyring) unwrap(ctx context.Context, wk WrappedKey) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if k, ok := r.cache[wk.ProductID][wk.Version]; ok {
		return slices.Clone(k), nil
	}
	key, err := r.keeper.Decrypt(ctx, wk.Wrapped)
	if err == nil && len(key) != KeySize {
		err = fmt.Errorf("unwrapped %d bytes, want %d", len(key), KeySize)
	}
	if err != nil {
		return nil, unwrapError(wk, err)
	}
	r.rememberLocked(wk.ProductID, wk.Version, key)
	return slices.Clone(key), nil
}

func unwrapError(wk WrappedKey, err error) error {
	return &rhizome.Error{Code: rhizome.EForbidden, Err: err,
		Message: fmt.Sprintf("keys: the master key cannot unwrap data key %s v%d: authentication failed (%v)", wk.ProductID, wk.Version, err),
		Hint:    "use the master key the data keys were wrapped with (after a rotation, the new one)"}
}

func (r *Keyring) remember(productID string, v int, key []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rememberLocked(productID, v, key)
}

func (r *Keyring) rememberLocked(productID string, v int, key []byte) {
	m := r.cache[productID]
	if m == nil {
		m = map[int][]byte{}
		r.cache[productID] = m
	}
	m[v] = slices.Clone(key)
}

// Rotate re-wraps every data key with the master key at newMasterURL and
// uses it from then on. Data files are not touched: their data keys do not
// change. It unwraps every key before storing any, so a wrong current
// master key changes nothing. If storing fails part way, the keys that
// failed are still wrapped by the old master key: keep it until a
// rotation succeeds.
func (r *Keyring) Rotate(ctx context.Context, newMasterURL string) error {
	next, err := openKeeper(ctx, newMasterURL)
	if err != nil {
		return err
	}
	products, err := r.store.Products(ctx)
	if err != nil {
		next.Close()
		return rhizome.Wrap(err, "keys: list the products with keys")
	}
	var all []WrappedKey
	var plain [][]byte
	for _, p := range products {
		wks, err := r.store.Get(ctx, p)
		if err != nil {
			next.Close()
			return rhizome.Wrap(err, "keys: read the keys of %s", p)
		}
		for _, wk := range wks {
			k, err := r.unwrap(ctx, wk)
			if err != nil {
				next.Close()
				return rhizome.Wrap(err, "keys: rotate")
			}
			all = append(all, wk)
			plain = append(plain, k)
		}
	}
	for i := range all {
		if all[i].Wrapped, err = next.Encrypt(ctx, plain[i]); err != nil {
			next.Close()
			return rhizome.Wrap(err, "keys: wrap %s v%d with the new master key", all[i].ProductID, all[i].Version)
		}
	}
	var failed []error
	for _, wk := range all {
		if err := r.store.Put(ctx, wk, true); err != nil {
			failed = append(failed, fmt.Errorf("%s v%d: %w", wk.ProductID, wk.Version, err))
		}
	}
	r.mu.Lock()
	old := r.keeper
	r.keeper = next
	r.mu.Unlock()
	old.Close()
	if len(failed) > 0 {
		return &rhizome.Error{Code: rhizome.EInternal, Err: errors.Join(failed...),
			Message: fmt.Sprintf("keys: rotation stored %d of %d keys: %v", len(all)-len(failed), len(all), errors.Join(failed...)),
			Hint:    "keep the old master key; fix the key store and rotate again"}
	}
	return nil
}
