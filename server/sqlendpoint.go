package server

import (
	"context"
	"crypto/tls"
	"fmt"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/access"
	"github.com/rhizome-mesh/rhizome/identity"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/pgwire"
	"github.com/rhizome-mesh/rhizome/serve"
)

// startSQLEndpoint starts the SQL endpoint on the Postgres wire protocol
// (docs/sql-endpoint.md) at cfg.PGListen over the governed read path; ""
// turns it off. The returned stop closes it gracefully. A default address
// that is busy only warns (cfg.PGBestEffort): the REST API still starts.
func startSQLEndpoint(cfg Config, store metastore.Store, svc *serve.Service) (stop func(), err error) {
	nop := func() {}
	if cfg.PGListen == "" || svc == nil {
		return nop, nil
	}
	failures := newAuthAuditor(svc.Audit, cfg.Clock)
	pg := &pgwire.Server{
		Querier:  sqlQuerier{svc},
		SQLState: serve.SQLState,
		Authenticate: func(ctx context.Context, _, password string) (access.Subject, error) {
			p, err := identity.Authenticate(ctx, store, cfg.Clock, password)
			if err != nil {
				failures.failed(ctx, "sql", "sql", err)
				return access.Subject{}, err
			}
			return access.SubjectOf(p), nil
		},
		Logger:  cfg.Logger.With("component", "pgwire"),
		Version: cfg.Version,
	}
	if cfg.PGTLSCert != "" || cfg.PGTLSKey != "" {
		if cfg.PGTLSCert == "" || cfg.PGTLSKey == "" {
			return nop, rhizome.Errorf(rhizome.EInvalid, "the SQL endpoint's TLS needs both --pg-tls-cert and --pg-tls-key")
		}
		cert, err := tls.LoadX509KeyPair(cfg.PGTLSCert, cfg.PGTLSKey)
		if err != nil {
			return nop, rhizome.Errorf(rhizome.EInvalid, "loading the SQL endpoint's TLS certificate: %v", err)
		}
		pg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := pg.Listen(cfg.PGListen)
	if err != nil {
		if cfg.PGBestEffort {
			cfg.Logger.Warn("SQL endpoint off: its address is busy", "addr", cfg.PGListen, "err", err)
			fmt.Fprintf(cfg.Stdout, "SQL endpoint off: %s is busy (set --pg-listen)\n", cfg.PGListen)
			return nop, nil
		}
		return nop, err
	}
	done := make(chan error, 1)
	go func() { done <- pg.Serve(ln) }()
	cfg.Logger.Info("SQL endpoint ready", "url", pgwire.URL(ln.Addr()), "tls", pg.TLS != nil)
	fmt.Fprintf(cfg.Stdout, "SQL endpoint ready at %s\n", pgwire.URL(ln.Addr()))
	return func() {
		if err := pg.Close(); err != nil {
			cfg.Logger.Warn("closing the SQL endpoint", "err", err)
		}
		if err := <-done; err != nil {
			cfg.Logger.Warn("SQL endpoint", "err", err)
		}
	}, nil
}

// sqlQuerier adapts serve.Service to pgwire.Querier (pgwire does not
// import serve, which links DuckDB).
type sqlQuerier struct{ svc *serve.Service }

func (q sqlQuerier) Query(ctx context.Context, subj access.Subject, query string) (*pgwire.Result, error) {
	res, err := q.svc.Query(ctx, subj, query)
	if err != nil {
		return nil, err
	}
	return &pgwire.Result{Columns: pgColumns(res.Columns), Rows: res.Stream(), Close: res.Close}, nil
}

func (q sqlQuerier) Describe(ctx context.Context, subj access.Subject, query string) ([]pgwire.Column, error) {
	cols, err := q.svc.Describe(ctx, subj, query)
	if err != nil {
		return nil, err
	}
	return pgColumns(cols), nil
}

func pgColumns(cols []serve.Column) []pgwire.Column {
	out := make([]pgwire.Column, len(cols))
	for i, c := range cols {
		out[i] = pgwire.Column{Name: c.Name, Type: c.Type}
	}
	return out
}
