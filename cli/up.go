package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/client"
	"github.com/rhizome-mesh/rhizome/server"
)

func (a *app) upCmd() *cobra.Command {
	var cfg server.Config
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the Rhizome server until interrupted",
		Long: `Up runs the server: the REST API and the pipeline workers, with its store in the data directory
(SQLite) or in Postgres (--metastore). When it is ready it writes
server.json (its URL) to the data directory, so that other rhizome commands
find it, and on first start an admin token in admin.token (mode 0600),
which they use by default. It stops on Ctrl-C or SIGTERM.`,
		Example: `  rhizome up --demo
  rhizome up --data /var/lib/rhizome --listen 0.0.0.0:8080 --metastore postgres://rhizome@db/rhizome`,
		Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
			dir, err := filepath.Abs(a.dataDirPath())
			if err != nil {
				return rhizome.Wrap(err, "data directory %s", a.dataDirPath())
			}
			cfg.DataDir = dir
			cfg.Version = buildVersion()
			cfg.Logger = slog.New(slog.NewTextHandler(a.stderr, nil))
			cfg.Clock = rhizome.SystemClock{}
			cfg.Stdout = a.stdout
			cfg.Getenv = a.getenv
			cfg.PGBestEffort = !cmd.Flags().Changed("pg-listen") // a busy default port only warns
			err = server.Serve(ctx, cfg)
			if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
				return nil // stopped by a signal: a clean exit
			}
			return err
		}),
	}
	f := cmd.Flags()
	f.BoolVar(&cfg.Demo, "demo", false, "apply the example mesh when the store is empty")
	f.StringVar(&cfg.Listen, "listen", defaultListen, "address of the REST API; port 0 picks a free one")
	f.StringVar(&cfg.MetastoreURL, "metastore", "", "store: empty for SQLite in the data directory, or postgres://...")
	f.StringVar(&cfg.FilesDir, "files", "", "where relative connector paths resolve (default: the working directory; with --demo, the example data)")
	f.StringVar(&cfg.Warehouse, "warehouse", "", "default table location, file:///... or s3://bucket/prefix (default: <data>/lake)")
	f.StringVar(&cfg.MasterKeyURL, "master-key", "", "master key wrapping the data keys of encrypted tables, a gocloud.dev/secrets URL (default: $RHIZOME_MASTER_KEY, else <data>/master.key, created once)")
	f.BoolVar(&cfg.WorkerOnly, "worker", false, "run pipeline workers only, no REST API (more workers for a shared Postgres metastore)")
	f.StringVar(&cfg.Environment, "environment", "production", "deployment environment; anything but production masks PII for every reader")
	f.StringVar(&cfg.PGListen, "pg-listen", "127.0.0.1:5433", `address of the SQL endpoint (Postgres wire protocol, token as password); "" turns it off`)
	f.StringVar(&cfg.PGTLSCert, "pg-tls-cert", "", "PEM certificate for the SQL endpoint; with --pg-tls-key, clients must use TLS")
	f.StringVar(&cfg.PGTLSKey, "pg-tls-key", "", "PEM private key of --pg-tls-cert")
	f.IntVar(&cfg.Workers, "workers", 2, "pipeline runs this process executes at once (processes sharing a Postgres metastore share one queue)")
	return cmd
}

// waitCmd waits for a server to be ready: for scripts and tests that start
// 'rhizome up' in the background.
func (a *app) waitCmd() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:    "wait",
		Short:  "Wait until the server answers /readyz",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				u, err := a.probe(ctx)
				if err == nil {
					fmt.Fprintf(a.stdout, "ready: %s\n", u)
					return nil
				}
				select {
				case <-ctx.Done():
					return &rhizome.Error{Code: rhizome.EUnavailable, Err: err, Hint: client.UnavailableHint,
						Message: fmt.Sprintf("the server was not ready after %s: %s", timeout, firstLineOf(err))}
				case <-tick.C:
				}
			}
		}),
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "how long to wait")
	return cmd
}

// probe asks the server whether it is ready. Without --server or
// $RHIZOME_SERVER it waits for server.json rather than trying the default
// address, where some other server may be listening.
func (a *app) probe(ctx context.Context) (string, error) {
	u := a.explicitServer()
	if u == "" {
		info, ok, err := readServerInfo(a.dataDirPath())
		if err != nil {
			return "", err // perhaps half written: try again
		}
		if !ok {
			return "", rhizome.Errorf(rhizome.EUnavailable, "no %s yet", filepath.Join(a.dataDirPath(), server.InfoFile))
		}
		u = info.URL
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return u, client.New(u, "", httpClient).Ready(ctx)
}
