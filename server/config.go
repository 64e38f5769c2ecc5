package server

import (
	"io"
	"log/slog"

	"github.com/rhizome-mesh/rhizome"
)

// Config configures the server that `rhizome up` runs.
type Config struct {
	// DataDir holds the embedded metastore, the admin token and
	// server.json (default ./.rhizome or $RHIZOME_HOME; resolved by the CLI).
	DataDir string
	// Listen is the REST address (default 127.0.0.1:8080); port 0 picks one.
	Listen string
	// MetastoreURL selects the store: empty for SQLite in DataDir,
	// postgres://... for Postgres.
	MetastoreURL string
	// Demo applies the example mesh when the store is empty, and runs its
	// pipelines.
	Demo bool
	// FilesDir is where relative paths in connector configs resolve
	// (default: the working directory; with Demo, the extracted example
	// data).
	FilesDir string
	// Warehouse is the default table location (default DataDir/lake).
	Warehouse string
	// Workers is how many runs this process executes at once (default 2).
	Workers int
	// MasterKeyURL is the master key that wraps the per-product data keys
	// of encrypted tables: a gocloud.dev/secrets keeper URL (default: a
	// local key created once in DataDir/master.key; RHIZOME_MASTER_KEY).
	MasterKeyURL string
	// WorkerOnly runs pipeline workers without the REST API: more
	// processes for one shared (Postgres) metastore and job queue.
	WorkerOnly bool
	// Getenv reads the environment (object storage settings:
	// RHIZOME_S3_ENDPOINT, RHIZOME_S3_REGION, AWS_ACCESS_KEY_ID,
	// AWS_SECRET_ACCESS_KEY; connector secrets RHIZOME_SECRET_*). Default
	// os.Getenv.
	Getenv func(string) string
	// Environment is the deployment's environment: production (default),
	// or any other name (staging, dev, demo...), where PII is masked for
	// every reader (docs/access.md).
	Environment string
	// PGListen is the SQL endpoint's address (Postgres wire protocol,
	// docs/sql-endpoint.md); "" turns it off. PGBestEffort makes a busy
	// address a warning (the CLI's default address). PGTLSCert and
	// PGTLSKey (PEM files) turn on TLS, which clients must then use.
	PGListen, PGTLSCert, PGTLSKey string
	PGBestEffort                  bool
	// Version is the build version shown by /api/v1/version.
	Version string

	Logger *slog.Logger
	Clock  rhizome.Clock
	// Stdout receives the human start-up lines ("ready at ...").
	Stdout io.Writer
}
