package keys

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rhizome-mesh/rhizome"
)

func master(t *testing.T) (url, dir string) {
	t.Helper()
	dir = t.TempDir()
	u, err := LocalMasterKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	return u, dir
}

func open(t *testing.T, masterURL, keyDir string) *Keyring {
	t.Helper()
	r, err := Open(context.Background(), masterURL, NewFileStore(keyDir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func wantCode(t *testing.T, err error, code rhizome.ErrorCode) {
	t.Helper()
	if rhizome.Code(err) != code {
		t.Fatalf("got %v (code %q), want code %q", err, rhizome.Code(err), code)
	}
}

func TestLocalMasterKey(t *testing.T) {
	u, dir := master(t)
	if !strings.HasPrefix(u, "base64key://") || len(u) < 40 {
		t.Fatalf("master key URL %q", u)
	}
	st, err := os.Stat(filepath.Join(dir, MasterKeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("master key file: %v %v, want mode 0600", st, err)
	}
	again, err := LocalMasterKey(dir)
	if err != nil || again != u {
		t.Fatalf("second call made another key (%v)", err)
	}
	if err := os.Chmod(filepath.Join(dir, MasterKeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LocalMasterKey(dir)
	wantCode(t, err, rhizome.EForbidden)

	empty := t.TempDir()
	if err := os.WriteFile(filepath.Join(empty, MasterKeyFile), []byte("base64key://\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LocalMasterKey(empty)
	wantCode(t, err, rhizome.EInvalid)
}

func TestOpenInvalid(t *testing.T) {
	ctx := context.Background()
	_, err := Open(ctx, "", NewFileStore(t.TempDir()))
	wantCode(t, err, rhizome.EInvalid)
	_, err = Open(ctx, "nosuchkms://key", NewFileStore(t.TempDir()))
	wantCode(t, err, rhizome.EInvalid)
	_, err = Open(ctx, "base64key://c2VjcmV0", NewFileStore(t.TempDir()))
	wantCode(t, err, rhizome.EInvalid)
	if strings.Contains(err.Error(), "c2VjcmV0") {
		t.Fatalf("the error repeats the key: %v", err)
	}
}

func TestDataKeys(t *testing.T) {
	ctx := context.Background()
	u, _ := master(t)
	keyDir := t.TempDir()
	r := open(t, u, keyDir)

	k1, v, err := r.DataKey(ctx, "dp.customer.360")
	if err != nil || v != 1 || len(k1) != KeySize {
		t.Fatalf("DataKey: %d bytes, v%d, %v", len(k1), v, err)
	}
	if again, v, err := r.DataKey(ctx, "dp.customer.360"); err != nil || v != 1 || !bytes.Equal(again, k1) {
		t.Fatalf("second DataKey: v%d %v", v, err)
	}
	other, _, err := r.DataKey(ctx, "dp.sales/orders")
	if err != nil || bytes.Equal(other, k1) {
		t.Fatalf("another product's key: %v", err)
	}
	// The store holds the key wrapped, never in the clear.
	ents, _ := os.ReadDir(keyDir)
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(keyDir, e.Name()))
		if bytes.Contains(b, k1) || bytes.Contains(b, other) {
			t.Fatalf("%s holds a data key in the clear", e.Name())
		}
	}

	// A fresh process unwraps the same key.
	fresh := open(t, u, keyDir)
	if k, err := fresh.KeyByVersion(ctx, "dp.customer.360", 1); err != nil || !bytes.Equal(k, k1) {
		t.Fatalf("KeyByVersion from a fresh keyring: %v", err)
	}
	_, err = fresh.KeyByVersion(ctx, "dp.customer.360", 2)
	wantCode(t, err, rhizome.ENotFound)

	v2, err := r.NewDataKey(ctx, "dp.customer.360")
	if err != nil || v2 != 2 {
		t.Fatalf("NewDataKey: %d %v", v2, err)
	}
	k2, v, err := fresh.DataKey(ctx, "dp.customer.360")
	if err != nil || v != 2 || bytes.Equal(k2, k1) {
		t.Fatalf("DataKey after NewDataKey: v%d %v", v, err)
	}
	if k, err := fresh.KeyByVersion(ctx, "dp.customer.360", 1); err != nil || !bytes.Equal(k, k1) {
		t.Fatalf("old version after NewDataKey: %v", err)
	}

	wrong, _ := master(t)
	_, err = open(t, wrong, keyDir).KeyByVersion(ctx, "dp.customer.360", 1)
	wantCode(t, err, rhizome.EForbidden)
	if !strings.Contains(err.Error(), "authentication") {
		t.Fatalf("error does not say authentication failed: %v", err)
	}
}

// TestConcurrentFirstUse: keyrings racing to create a product's first key
// all end with the one that was stored.
func TestConcurrentFirstUse(t *testing.T) {
	ctx := context.Background()
	u, _ := master(t)
	keyDir := t.TempDir()
	const n = 8
	got := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		r := open(t, u, keyDir)
		wg.Go(func() {
			k, _, err := r.DataKey(ctx, "dp.race")
			if err != nil {
				t.Error(err)
			}
			got[i] = k
		})
	}
	wg.Wait()
	for i := range got {
		if !bytes.Equal(got[i], got[0]) {
			t.Fatalf("keyring %d got another key", i)
		}
	}
}

func TestRotate(t *testing.T) {
	ctx := context.Background()
	oldURL, _ := master(t)
	keyDir := t.TempDir()
	r := open(t, oldURL, keyDir)
	want := map[string][]byte{}
	for _, p := range []string{"dp.a", "dp.b"} {
		k, _, err := r.DataKey(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		want[p] = k
	}
	if _, err := r.NewDataKey(ctx, "dp.a"); err != nil {
		t.Fatal(err)
	}
	before := files(t, keyDir)

	wrong, _ := master(t)
	w := open(t, wrong, keyDir)
	err := w.Rotate(ctx, oldURL)
	wantCode(t, err, rhizome.EForbidden)
	if !bytesMapEqual(files(t, keyDir), before) {
		t.Fatal("a failed rotation changed the key store")
	}

	newURL, _ := master(t)
	if err := r.Rotate(ctx, newURL); err != nil {
		t.Fatal(err)
	}
	after := files(t, keyDir)
	if len(after) != 3 {
		t.Fatalf("after rotation: %d key files, want 3", len(after))
	}
	for name, b := range after {
		if bytes.Equal(before[name], b) {
			t.Fatalf("%s was not re-wrapped", name)
		}
	}
	for _, kr := range []*Keyring{r, open(t, newURL, keyDir)} {
		for p, k := range want {
			if got, err := kr.KeyByVersion(ctx, p, 1); err != nil || !bytes.Equal(got, k) {
				t.Fatalf("%s v1 after rotation: %v", p, err)
			}
		}
	}
	_, err = open(t, oldURL, keyDir).KeyByVersion(ctx, "dp.a", 1)
	wantCode(t, err, rhizome.EForbidden)
}

func files(t *testing.T, dir string) map[string][]byte {
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

func bytesMapEqual(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !bytes.Equal(b[k], v) {
			return false
		}
	}
	return true
}

// TestKMSKeeperRegistered: an awskms:// master key is understood (opening
// it needs AWS credentials and a KMS key, which tests do not have; the
// error must not be "unknown scheme").
func TestKMSKeeperRegistered(t *testing.T) {
	cause := func(err error) string {
		if e, ok := err.(*rhizome.Error); ok && e.Err != nil {
			return e.Err.Error()
		}
		if err != nil {
			return err.Error()
		}
		return ""
	}
	_, err := Open(context.Background(), "bogus://x", NewFileStore(t.TempDir()))
	if !strings.Contains(cause(err), "no driver registered") {
		t.Fatalf("an unknown scheme should fail with no driver registered: %v", cause(err))
	}
	_, err = Open(context.Background(), "awskms://alias/rhizome?region=us-east-1", NewFileStore(t.TempDir()))
	if strings.Contains(cause(err), "no driver registered") {
		t.Fatalf("awskms keeper not registered: %v", cause(err))
	}
}
