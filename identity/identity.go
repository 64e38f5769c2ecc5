// Package identity owns API credentials: it mints bearer tokens, stores only
// their SHA-256 hashes through the metastore, authenticates a presented
// secret to a principal (with the teams that Team manifests give it), and
// bootstraps the first admin token into the data directory.
//
// Tokens are random 256-bit secrets rather than JWTs: they are checked
// against the store on every call, so revocation takes effect at once.
package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/metastore"
)

// SecretPrefix starts every token secret, so leaked secrets are easy to spot.
const SecretPrefix = "rhz_"

// AdminPrincipal is the principal of the bootstrap token.
const AdminPrincipal = "admin"

// AdminTokenFile is the bootstrap token's file name in the data directory.
const AdminTokenFile = "admin.token"

var enc = base32.StdEncoding.WithPadding(base32.NoPadding)

// Hash returns the stored form of a secret.
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// NewSecret returns a fresh token id and secret.
func NewSecret() (id, secret string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	s := strings.ToLower(enc.EncodeToString(b[:]))
	return "tok_" + s[:10], SecretPrefix + s, nil
}

// Minter creates tokens.
type Minter struct {
	Store metastore.Store
	Clock rhizome.Clock
}

// TokenSpec describes a token to create.
type TokenSpec struct {
	Principal string
	Kind      rhizome.PrincipalKind
	Admin     bool
	Name      string
	ExpiresIn time.Duration // 0: never
}

// Create makes a token for spec.Principal, creating the principal if it is
// new (with spec.Kind and spec.Admin). It returns the token and its secret,
// which is not stored and cannot be shown again.
func (m Minter) Create(ctx context.Context, spec TokenSpec) (*rhizome.Token, string, error) {
	if spec.Principal == "" {
		return nil, "", rhizome.Errorf(rhizome.EInvalid, "a token needs a principal").WithHint("pass --principal NAME")
	}
	if spec.Kind == "" {
		spec.Kind = rhizome.PrincipalUser
	}
	if spec.Kind != rhizome.PrincipalUser && spec.Kind != rhizome.PrincipalService {
		return nil, "", rhizome.Errorf(rhizome.EInvalid, "principal kind %q: want user or service", spec.Kind)
	}
	id, secret, err := NewSecret()
	if err != nil {
		return nil, "", rhizome.Wrap(err, "minting token")
	}
	now := m.Clock.Now()
	tok := &rhizome.Token{ID: id, PrincipalID: spec.Principal, Name: spec.Name, Hash: Hash(secret), CreatedAt: now}
	if spec.ExpiresIn > 0 {
		exp := now.Add(spec.ExpiresIn)
		tok.ExpiresAt = &exp
	}
	err = m.Store.Update(ctx, func(tx metastore.Tx) error {
		p, err := tx.GetPrincipal(ctx, spec.Principal)
		switch {
		case rhizome.Code(err) == rhizome.ENotFound:
			p = &rhizome.Principal{ID: spec.Principal, Kind: spec.Kind, Admin: spec.Admin, CreatedAt: now}
			if err := tx.PutPrincipal(ctx, p); err != nil {
				return err
			}
		case err != nil:
			return err
		case spec.Admin && !p.Admin:
			p.Admin = true
			if err := tx.PutPrincipal(ctx, p); err != nil {
				return err
			}
		}
		return tx.CreateToken(ctx, tok)
	})
	if err != nil {
		return nil, "", err
	}
	return tok, secret, nil
}

// Authenticate returns the principal that owns secret, with its teams.
func Authenticate(ctx context.Context, store metastore.Reader, clock rhizome.Clock, secret string) (*rhizome.Principal, error) {
	unauth := func(msg string) error {
		return rhizome.Errorf(rhizome.EUnauthorized, "%s", msg).WithHint("send Authorization: Bearer <token>; `rhizome token create` makes one")
	}
	if secret == "" {
		return nil, unauth("missing bearer token")
	}
	tok, err := store.TokenByHash(ctx, Hash(secret))
	if rhizome.Code(err) == rhizome.ENotFound {
		return nil, unauth("unknown token")
	} else if err != nil {
		return nil, err
	}
	if tok.RevokedAt != nil {
		return nil, unauth("token " + tok.ID + " was revoked")
	}
	if tok.ExpiresAt != nil && !clock.Now().Before(*tok.ExpiresAt) {
		return nil, unauth("token " + tok.ID + " expired")
	}
	p, err := store.GetPrincipal(ctx, tok.PrincipalID)
	if err != nil {
		return nil, rhizome.Wrap(err, "token %s", tok.ID)
	}
	teams, err := store.TeamsOf(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	p.Teams = teams
	return p, nil
}

// Bootstrap makes sure dataDir/admin.token holds a working admin token,
// creating the admin principal and token on first start. It returns the
// secret.
func Bootstrap(ctx context.Context, m Minter, dataDir string) (string, error) {
	path := filepath.Join(dataDir, AdminTokenFile)
	if b, err := os.ReadFile(path); err == nil {
		secret := strings.TrimSpace(string(b))
		if _, err := Authenticate(ctx, m.Store, m.Clock, secret); err == nil {
			return secret, nil
		}
		// A token from another store (e.g. a new --metastore): mint anew.
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", rhizome.Wrap(err, "reading %s", path)
	}
	_, secret, err := m.Create(ctx, TokenSpec{Principal: AdminPrincipal, Kind: rhizome.PrincipalUser, Admin: true, Name: "bootstrap"})
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", rhizome.Wrap(err, "creating data dir")
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(secret+"\n"), 0o600); err != nil {
		return "", rhizome.Wrap(err, "writing %s", tmp)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", rhizome.Wrap(err, "writing %s", path)
	}
	return secret, nil
}

// ParseBearer extracts the token from an Authorization header value.
func ParseBearer(h string) (string, error) {
	if h == "" {
		return "", nil
	}
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", fmt.Errorf("authorization scheme must be Bearer")
	}
	return strings.TrimSpace(rest), nil
}
