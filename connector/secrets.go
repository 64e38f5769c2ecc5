package connector

import (
	"context"
	"errors"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/rhizome-mesh/rhizome"
)

// SecretResolver turns a secret reference from a config ("env:PG_DSN",
// "file:/run/secrets/pg") into the secret. Errors name the reference,
// never the value.
type SecretResolver interface {
	Secret(ctx context.Context, ref string) (string, error)
}

var secretSchemes = []string{"env", "file"}

// EnvSecrets resolves "env:NAME" from the environment. Product manifests
// are written by many teams: set Prefix so that a manifest can reach the
// variables meant as secrets (RHIZOME_SECRET_*), not every variable of the
// server.
type EnvSecrets struct {
	Getenv func(string) string // nil: os.Getenv
	Prefix string              // when set, only names starting with it resolve
}

func (e EnvSecrets) Secret(_ context.Context, ref string) (string, error) {
	name, ok := strings.CutPrefix(ref, "env:")
	if !ok || name == "" {
		return "", badRef(ref, "env:NAME")
	}
	if !strings.HasPrefix(name, e.Prefix) {
		return "", rhizome.Errorf(rhizome.EForbidden, "secret %s: only environment variables named %s* are secrets", ref, e.Prefix)
	}
	get := e.Getenv
	if get == nil {
		get = os.Getenv
	}
	v := get(name)
	if v == "" {
		return "", rhizome.Errorf(rhizome.EInvalid, "secret %s: the environment variable %s is not set", ref, name).
			WithHint("set %s in the environment of the rhizome server", name)
	}
	return v, nil
}

// FileSecrets resolves "file:/path" to the file's content without its
// trailing newline (as Docker and Kubernetes mount secrets). Only files
// beneath Dir resolve, symbolic links included; an empty Dir refuses all.
type FileSecrets struct {
	Dir string // e.g. /run/secrets
}

func (fs FileSecrets) Secret(_ context.Context, ref string) (string, error) {
	path, ok := strings.CutPrefix(ref, "file:")
	if !ok || path == "" {
		return "", badRef(ref, "file:/path")
	}
	rel, err := filepath.Rel(fs.Dir, path)
	if fs.Dir == "" || err != nil || !filepath.IsAbs(path) || !filepath.IsLocal(rel) {
		return "", rhizome.Errorf(rhizome.EForbidden, "secret %s: not in the secrets directory %q", ref, fs.Dir).
			WithHint("secret files must be beneath the server's secrets directory")
	}
	root, err := os.OpenRoot(fs.Dir)
	if err != nil {
		return "", rhizome.Errorf(rhizome.EUnavailable, "secret %s: the secrets directory: %v", ref, errors.Unwrap(err))
	}
	defer root.Close()
	b, err := root.ReadFile(rel)
	if errors.Is(err, iofs.ErrNotExist) {
		return "", rhizome.Errorf(rhizome.EInvalid, "secret %s: no such file", ref)
	}
	if err != nil {
		return "", rhizome.Errorf(rhizome.EForbidden, "secret %s: cannot read the file: %v", ref, errors.Unwrap(err))
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// Secrets resolves env: and file: references: the usual SecretResolver.
type Secrets struct {
	Env  EnvSecrets
	File FileSecrets
}

func (s Secrets) Secret(ctx context.Context, ref string) (string, error) {
	switch {
	case strings.HasPrefix(ref, "env:"):
		return s.Env.Secret(ctx, ref)
	case strings.HasPrefix(ref, "file:"):
		return s.File.Secret(ctx, ref)
	}
	return "", badRef(ref, "env:NAME or file:/path")
}

// ResolveSecret resolves ref with env.Secrets, failing clearly when the
// pipeline gave no resolver.
func ResolveSecret(ctx context.Context, env Env, ref string) (string, error) {
	if env.Secrets == nil {
		return "", rhizome.Errorf(rhizome.EInternal, "secret %s: no secret resolver in this environment", ref)
	}
	return env.Secrets.Secret(ctx, ref)
}

func badRef(ref, want string) error {
	// Show at most the scheme: a malformed reference may be the secret itself.
	scheme, _, found := strings.Cut(ref, ":")
	if !found || strings.ContainsAny(scheme, "/@ ") || len(scheme) > 16 {
		return rhizome.Errorf(rhizome.EInvalid, "not a secret reference").WithHint("write %s, not the secret itself", want)
	}
	return rhizome.Errorf(rhizome.EInvalid, "secret reference with scheme %q is not valid", scheme).
		WithHint("write %s", want)
}
