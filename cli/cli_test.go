package cli_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/cli"
)

// result is what one Run did.
type result struct {
	err            error
	stdout, stderr string
}

func (r result) code() int { return cli.ExitCode(r.err) }

// run calls cli.Run with env as the whole environment.
func run(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	getenv := func(k string) string { return env[k] }
	err := cli.Run(context.Background(), args, strings.NewReader(stdin), &stdout, &stderr, getenv)
	return result{err, stdout.String(), stderr.String()}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("boom"), 1},
		{rhizome.Errorf(rhizome.EInternal, "x"), 1},
		{rhizome.Errorf(rhizome.EInvalid, "x"), 3},
		{rhizome.Errorf(rhizome.ETooLarge, "x"), 3},
		{rhizome.Errorf(rhizome.EConflict, "x"), 4},
		{rhizome.Errorf(rhizome.EUnauthorized, "x"), 5},
		{rhizome.Errorf(rhizome.EForbidden, "x"), 5},
		{rhizome.Errorf(rhizome.ENotFound, "x"), 6},
		{rhizome.Errorf(rhizome.EUnavailable, "x"), 7},
		{fmt.Errorf("wrapped: %w", rhizome.Errorf(rhizome.ENotFound, "x")), 6},
	}
	for _, tt := range tests {
		if got := cli.ExitCode(tt.err); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args   []string
		stderr string
	}{
		{[]string{"frobnicate"}, "error: unknown command \"frobnicate\" for \"rhizome\"\n  hint: see 'rhizome --help'\n"},
		{[]string{"get"}, "error: accepts between 1 and 2 arg(s), received 0\n  hint: see 'rhizome get --help'\n"},
		{[]string{"get", "gadgets"}, "error: unknown kind \"gadgets\": want one of domains, teams, policies, contracts, infrastructure, products\n  hint: see 'rhizome get --help'\n"},
		{[]string{"get", "products", "--colour"}, "error: unknown flag: --colour\n  hint: see 'rhizome get --help'\n"},
		{[]string{"get", "products", "-o", "xml"}, "error: unknown output format \"xml\": want table, json or yaml\n  hint: see 'rhizome get --help'\n"},
		{[]string{"apply"}, "error: no manifests: pass -f FILE, -f DIR or -f -\n  hint: see 'rhizome apply --help'\n"},
		{[]string{"apply", "-f", "x", "--expect", "dp.a.b=1"}, "error: --expect \"dp.a.b=1\": want Kind/id=REVISION, e.g. DataProduct/dp.sales.orders=3\n  hint: see 'rhizome apply --help'\n"},
		{[]string{"token", "create", "--expires", "soon"}, "error: --expires \"soon\": want a positive duration such as 720h, or 0 for none\n  hint: see 'rhizome token create --help'\n"},
		{[]string{"init", "product", "dp.a.b"}, "error: --domain is required: the domain the product belongs to, e.g. --domain sales\n  hint: see 'rhizome init product --help'\n"},
	}
	for _, tt := range tests {
		r := run(t, nil, "", tt.args...)
		if r.code() != cli.ExitUsage || r.stderr != tt.stderr || r.stdout != "" {
			t.Errorf("rhizome %s: exit %d\nstdout %q\nstderr %q\nwant stderr %q", strings.Join(tt.args, " "), r.code(), r.stdout, r.stderr, tt.stderr)
		}
	}
}

func TestHelpIsNotAnError(t *testing.T) {
	r := run(t, nil, "", "--help")
	if r.err != nil || !strings.Contains(r.stdout, "apply") || r.stderr != "" {
		t.Errorf("--help: err %v, stdout %q, stderr %q", r.err, r.stdout, r.stderr)
	}
}

func TestValidateProblems(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "typo.yaml")
	writeFile(t, p, `apiVersion: rhizome/v1
kind: Domain
name: sales
owner_teems: [sales-team]
`)
	r := run(t, nil, "", "validate", "-f", p)
	if r.code() != cli.ExitInvalid {
		t.Fatalf("exit %d, want %d; stderr %q", r.code(), cli.ExitInvalid, r.stderr)
	}
	// error: <message>, then one problem a line.
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if !strings.HasPrefix(lines[0], "error: ") || len(lines) < 2 {
		t.Fatalf("stderr %q", r.stderr)
	}
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l, "  "+p+":") {
			t.Errorf("problem line %q should start with the file:line:col", l)
		}
	}
	if !strings.Contains(r.stderr, "4:1: owner_teems: unknown field") || !strings.Contains(r.stderr, "(hint: did you mean `owner_teams`?)") {
		t.Errorf("stderr %q lacks the misspelt field and its hint", r.stderr)
	}
}

func TestValidateStdin(t *testing.T) {
	r := run(t, nil, "apiVersion: rhizome/v1\nkind: Domain\nname: sales\nowner_teams: [t]\n---\napiVersion: rhizome/v1\nkind: Team\nname: t\nmembers: [{principal: a@example.com}]\n",
		"validate", "-f", "-")
	if r.err != nil || r.stdout != "ok: 2 documents in 1 file\n" {
		t.Errorf("err %v, stdout %q, stderr %q", r.err, r.stdout, r.stderr)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
