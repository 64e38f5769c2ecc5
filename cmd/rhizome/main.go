// Command rhizome is Rhizome's one binary: the server ('rhizome up') and
// the command line that talks to it. Everything it does is in package cli;
// main only hands it the process's arguments, I/O, environment and signals.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/rhizome-mesh/rhizome/cli"
)

func main() {
	os.Exit(run())
}

// run is main without os.Exit, so that the deferred stop runs.
func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal, the next one kills at once.
		<-ctx.Done()
		stop()
	}()
	err := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	return cli.ExitCode(err)
}
