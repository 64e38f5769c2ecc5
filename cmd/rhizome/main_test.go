package main

import (
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

var update = flag.Bool("update", false, "rewrite the scripts' cmp files with the actual output")

// TestMain makes this test binary double as the rhizome command: scripts
// run `exec rhizome ...` and get the real main.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"rhizome": func() { os.Exit(run()) },
	})
}

// TestScripts runs testdata/script/*.txtar. Each script gets its own data
// directory ($WORK/data, as $RHIZOME_HOME): a script that needs a server
// starts one with `exec rhizome up --listen 127.0.0.1:0 &` and waits for
// it with `exec rhizome wait`; every later command finds it there, and the
// admin token beside it.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		UpdateScripts:       *update,
		Setup: func(env *testscript.Env) error {
			env.Setenv("RHIZOME_HOME", filepath.Join(env.WorkDir, "data"))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode": cmdExitcode,
			"envfrom":  cmdEnvfrom,
		},
	})
}

// cmdExitcode runs a command and checks its exit status:
//
//	exitcode 3 rhizome validate -f bad.yaml
//
// Its stdout and stderr are then checked as after exec.
func cmdExitcode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode N command [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exitcode: %q is not a number", args[0])
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exitcode: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("exit status %d, want %d", got, want)
	}
}

// cmdEnvfrom sets an environment variable to the trimmed content of a file
// (or of stdout or stderr, the last command's output), or to the first
// group of a regular expression matched in it:
//
//	exec rhizome token create --principal bob@example.com
//	envfrom SECRET stdout
//	envfrom TOKEN_ID stderr 'Created token (\S+)'
func cmdEnvfrom(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: envfrom VAR FILE [REGEXP]")
	}
	text := strings.TrimSpace(ts.ReadFile(args[1]))
	if len(args) == 3 {
		re, err := regexp.Compile(args[2])
		ts.Check(err)
		m := re.FindStringSubmatch(text)
		if len(m) < 2 {
			ts.Fatalf("envfrom: no match for %q in %s", args[2], args[1])
		}
		text = m[1]
	}
	ts.Setenv(args[0], text)
}
