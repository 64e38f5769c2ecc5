// Package cli owns Rhizome's command line: the cobra command tree, where
// the server address and token come from (flags, environment, the data
// directory), how results are shown (tables for people, JSON or YAML for
// scripts), and the one mapping of errors to messages and exit codes. It
// talks to the server only through package client, reads manifests only
// through package spec, and runs the server only through server.Serve.
//
// Run takes every input and output as an argument (no os.Getenv, no
// os.Stdout), so tests call it directly.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/rhizomeversion"
)

// Exit codes, one per kind of failure, so scripts can tell them apart.
const (
	ExitOK          = 0
	ExitError       = 1 // anything not below, e.g. an internal server error
	ExitUsage       = 2 // bad flags, arguments or command
	ExitInvalid     = 3 // the input (manifests) is invalid or too large
	ExitConflict    = 4 // stale revision, or a file that already exists
	ExitDenied      = 5 // unauthorized or forbidden
	ExitNotFound    = 6
	ExitUnavailable = 7 // the server cannot be reached or is not ready
)

// ExitCode maps an error returned by Run to the process exit code.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var u *usageError
	if errors.As(err, &u) {
		return ExitUsage
	}
	switch rhizome.Code(err) {
	case rhizome.EInvalid, rhizome.ETooLarge:
		return ExitInvalid
	case rhizome.EConflict:
		return ExitConflict
	case rhizome.EUnauthorized, rhizome.EForbidden:
		return ExitDenied
	case rhizome.ENotFound:
		return ExitNotFound
	case rhizome.EUnavailable:
		return ExitUnavailable
	}
	return ExitError
}

// usageError is a mistake in how a command was called.
type usageError struct {
	err  error
	path string // e.g. "rhizome get"
}

func (e *usageError) Error() string {
	return fmt.Sprintf("%v\n  hint: see '%s --help'", e.err, e.path)
}

func (e *usageError) Unwrap() error { return e.err }

func usagef(cmd *cobra.Command, format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...), path: cmd.CommandPath()}
}

// app is one invocation: its I/O, environment and global flags.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	server  string // --server
	token   string // --token
	dataDir string // --data
	output  string // -o

	// ran is set once a command's own code starts: an error before that
	// came from parsing the command line and is a usage error.
	ran bool
}

// Run runs the command line args (without the program name). Errors are
// printed to stderr as "error: <message>", one problem per line below it,
// and returned; ExitCode(err) is the exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return nil
	}
	var u *usageError
	if !a.ran && !errors.As(err, &u) {
		if cmd == nil {
			cmd = root
		}
		err = &usageError{err: err, path: cmd.CommandPath()}
	}
	fmt.Fprintf(stderr, "error: %v\n", err)
	return err
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "rhizome",
		Short: "Rhizome: a self-serve data mesh in one binary",
		Long: `Rhizome runs a self-serve data mesh: domain teams declare domains, teams,
data products, contracts and infrastructure as manifests, and apply them.

Start a server with 'rhizome up', scaffold a product with 'rhizome init
product', check it offline with 'rhizome validate', and apply it with
'rhizome apply'.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			switch a.output {
			case "table", "json", "yaml":
				return nil
			}
			return usagef(cmd, "unknown output format %q: want table, json or yaml", a.output)
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.server, "server", "", "server URL (default: $RHIZOME_SERVER, else the running 'rhizome up' in the data directory, else http://127.0.0.1:8080)")
	pf.StringVar(&a.token, "token", "", "API token (default: $RHIZOME_TOKEN, else the data directory's admin.token)")
	pf.StringVar(&a.dataDir, "data", "", "data directory (default: $RHIZOME_HOME, else ./.rhizome)")
	pf.StringVarP(&a.output, "output", "o", "table", "output format: table, json or yaml")

	root.AddCommand(
		a.upCmd(), a.waitCmd(),
		a.applyCmd(), a.validateCmd(), a.initCmd(),
		a.getCmd(), a.describeCmd(), a.deleteCmd(), a.historyCmd(), a.versionsCmd(),
		a.schemaCmd(), a.tokenCmd(), a.whoamiCmd(), a.versionCmd(),
		a.runCmd(), a.runsCmd(), a.logsCmd(), a.cancelCmd(), a.backfillCmd(),
		a.snapshotsCmd(), a.lineageCmd(), a.connectorsCmd(), a.keysCmd(),
	)
	for _, c := range commands {
		root.AddCommand(c(a))
	}
	return root
}

// commands are the command constructors that files register from init,
// so that each area (quality, access, audit, ...) keeps its commands in its
// own file.
var commands []func(*app) *cobra.Command

// register adds command constructors to the root (call it from init).
func register(c ...func(*app) *cobra.Command) { commands = append(commands, c...) }

// run adapts a command's code to cobra, marking that parsing is over.
func (a *app) run(fn func(ctx context.Context, cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		a.ran = true
		return fn(cmd.Context(), cmd, args)
	}
}

// parseKind reads a KIND argument.
func parseKind(cmd *cobra.Command, s string) (rhizome.Kind, error) {
	k, ok := rhizome.ParseKind(s)
	if !ok {
		var names []string
		for _, k := range rhizome.Kinds() {
			names = append(names, k.Plural())
		}
		return "", usagef(cmd, "unknown kind %q: want one of %s", s, strings.Join(names, ", "))
	}
	return k, nil
}

// buildVersion is rhizomeversion.Version (set with -ldflags), else the
// module version when built with go install.
func buildVersion() string {
	v := rhizomeversion.Version
	if v != "dev" {
		return v
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return v
}

// plural is "1 document" or "2 documents" ("1 property", "2 properties").
func plural(n int, word string) string {
	switch {
	case n == 1:
	case strings.HasSuffix(word, "y") && !strings.ContainsAny(word[len(word)-2:len(word)-1], "aeiou"):
		word = strings.TrimSuffix(word, "y") + "ies"
	default:
		word += "s"
	}
	return fmt.Sprintf("%d %s", n, word)
}
