// Package server is Rhizome's HTTP edge: the REST API under /api/v1 (see
// docs/API.md and the OpenAPI document it serves), health and readiness,
// Prometheus metrics, and the `rhizome up` process around them (store,
// bootstrap token, demo mesh, graceful shutdown). It maps rhizome.Error
// codes to HTTP statuses in one place (Status) and leaves every decision
// about manifests to catalog and every credential check to identity.
package server

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/access"
	"github.com/rhizome-mesh/rhizome/alert"
	"github.com/rhizome-mesh/rhizome/audit"
	"github.com/rhizome-mesh/rhizome/catalog"
	"github.com/rhizome-mesh/rhizome/identity"
	"github.com/rhizome-mesh/rhizome/jobs"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/retention"
	"github.com/rhizome-mesh/rhizome/rhizomeversion"
	"github.com/rhizome-mesh/rhizome/serve"
	"github.com/rhizome-mesh/rhizome/slo"
	"github.com/rhizome-mesh/rhizome/stream"
	"github.com/rhizome-mesh/rhizome/table"
)

//go:embed openapi.json
var openAPI []byte

// Server serves the API over a store.
type Server struct {
	store   metastore.Store
	catalog *catalog.Catalog
	minter  identity.Minter
	clock   rhizome.Clock
	logger  *slog.Logger
	metrics *metrics
	version string
	router  chi.Router
	jobs    *jobs.Scheduler // nil: no pipelines (pipeline routes answer 503)
	tables  *table.Catalog
	spool   *stream.Spool   // nil: no push ingestion (the batches route answers 503)
	flusher *stream.Flusher // told of each accepted batch
	// audit.go, changes.go, retention.go
	audit     *audit.Log
	broker    *Broker
	retention *retention.Enforcer
	authAudit *authAuditor // failed authentications (authaudit.go)
	closing   chan struct{}
	closeOnce sync.Once
	access    *access.Service // the access decision point, requests and grants
	checker   QualityChecker  // nil: on-demand checks answer 503
	alerts    *alert.Manager  // nil: alert routes answer 503
	slo       *slo.Tracker    // nil: SLO routes answer 503
	serve     *serve.Service  // nil: the data API answers 503 (data.go)
}

// Deps are what a Server is built from.
type Deps struct {
	Store   metastore.Store
	Catalog *catalog.Catalog
	Clock   rhizome.Clock
	Logger  *slog.Logger
	Version string
	Jobs    *jobs.Scheduler
	Tables  *table.Catalog
	Spool   *stream.Spool
	Flusher *stream.Flusher
	// Audit is the audit log (nil: none); Broker wakes change feeds when
	// this process publishes; Retention enforces retention and erasure.
	Audit     *audit.Log
	Broker    *Broker
	Retention *retention.Enforcer
	// Access decides reads and keeps grants (a production one when nil).
	Access  *access.Service
	Checker QualityChecker
	Alerts  *alert.Manager
	SLO     *slo.Tracker
	Serve   *serve.Service // the governed read path (data.go)
	// Registry collects the metrics served at /metrics (a new one when nil).
	Registry *prometheus.Registry
}

// New returns a Server; Handler serves it.
func New(d Deps) *Server {
	if d.Clock == nil {
		d.Clock = rhizome.SystemClock{}
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Catalog == nil {
		d.Catalog = catalog.New(d.Store, catalog.Options{Clock: d.Clock, Logger: d.Logger})
	}
	if d.Access == nil {
		d.Access = access.New(access.Options{Store: d.Store, Clock: d.Clock, Logger: d.Logger, Audit: recorderOf(d.Audit)})
	}
	d.Catalog.OnApplied(func(context.Context) { d.Access.Invalidate() })
	s := &Server{access: d.Access, store: d.Store, catalog: d.Catalog, clock: d.Clock, logger: d.Logger,
		minter: identity.Minter{Store: d.Store, Clock: d.Clock}, metrics: newMetrics(d.Registry), version: d.Version,
		jobs: d.Jobs, tables: d.Tables, spool: d.Spool, flusher: d.Flusher, checker: d.Checker, alerts: d.Alerts, slo: d.SLO}
	s.initAudit(d)
	s.serve = d.Serve
	s.router = s.routes()
	return s
}

// Handler is the server's http.Handler.
func (s *Server) Handler() http.Handler { return s.router }

func (s *Server) routes() chi.Router {
	r := chi.NewRouter()
	r.Use(middleware.RequestID, s.metrics.instrument, middleware.Recoverer)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, rhizome.Errorf(rhizome.ENotFound, "no route %s %s", r.Method, r.URL.Path).WithHint("see /api/v1/openapi.json"))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: rhizome.Errorf(rhizome.EInvalid, "method %s not allowed on %s", r.Method, r.URL.Path)})
	})
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.store.Ping(ctx); err != nil {
			s.writeError(w, r, rhizome.Errorf(rhizome.EUnavailable, "metastore not answering: %v", err))
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	r.Method(http.MethodGet, "/metrics", s.metrics.handler())
	r.Route("/api/v1", func(r chi.Router) {
		// Public: editors fetch schemas, tools fetch the API description.
		r.Get("/openapi.json", func(w http.ResponseWriter, r *http.Request) {
			doc, err := OpenAPIDocument()
			if err != nil {
				s.writeError(w, r, rhizome.Wrap(err, "merging the OpenAPI document"))
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(doc)
		})
		r.Get("/version", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"version": s.version})
		})
		r.Get("/schemas", s.handleSchemas)
		r.Get("/schemas/{kind}", s.handleSchema)
		r.Group(func(r chi.Router) {
			r.Use(s.authenticate, s.auditMutations)
			r.Post("/apply", s.handleApply)
			for _, k := range rhizome.Kinds() {
				s.kindRoutes(r, k)
			}
			r.Get("/products/{id}/versions", s.handleVersions)
			r.Get("/products/{id}/versions/{version}", s.handleVersion)
			s.pipelineRoutes(r)
			s.auditRoutes(r)
			s.accessRoutes(r)
			s.qualityRoutes(r)
			s.monitorRoutes(r)
			s.dataRoutes(r)
			r.Get("/whoami", s.handleWhoAmI)
			r.Get("/principals", s.handlePrincipals)
			r.Post("/tokens", s.handleCreateToken)
			r.Get("/tokens", s.handleListTokens)
			r.Delete("/tokens/{id}", s.handleRevokeToken)
		})
	})
	return r
}

// Info is what `up` writes to DataDir/server.json once ready, so that a
// local CLI finds the server.
type Info struct {
	URL string `json:"url"`
	PID int    `json:"pid"`
}

// InfoFile is the name of that file.
const InfoFile = "server.json"

// Serve runs `rhizome up` until ctx is done: opens the store, makes sure an
// admin token exists, loads the demo mesh when asked and the store is
// empty, listens, and shuts down gracefully.
func Serve(ctx context.Context, cfg Config) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = rhizome.SystemClock{}
	}
	if cfg.Stdout == nil {
		cfg.Stdout = io.Discard
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:8080"
	}
	if cfg.Version == "" {
		cfg.Version = rhizomeversion.Version
	}
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return rhizome.Wrap(err, "creating data dir %s", cfg.DataDir)
	}
	store, err := openStore(ctx, cfg.MetastoreURL, cfg.DataDir, metastore.Options{Clock: cfg.Clock, Logger: cfg.Logger})
	if err != nil {
		return err
	}
	defer store.Close()
	auditLog := audit.Open(audit.Options{Store: store, Clock: cfg.Clock, Logger: cfg.Logger})
	defer auditLog.Close()
	minter := identity.Minter{Store: store, Clock: cfg.Clock}
	if _, err := identity.Bootstrap(ctx, minter, cfg.DataDir); err != nil {
		return err
	}
	cat := catalog.New(store, catalog.Options{Clock: cfg.Clock, Logger: cfg.Logger})
	freshDemo := false
	if cfg.Demo {
		if freshDemo, err = loadDemo(ctx, store, cat, cfg.Stdout); err != nil {
			return rhizome.Wrap(err, "loading the demo mesh")
		}
		if cfg.FilesDir == "" {
			dir, err := extractDemoData(cfg.DataDir)
			if err != nil {
				return err
			}
			cfg.FilesDir = dir
		}
	}
	reg := prometheus.NewRegistry()
	lc, err := startLifecycle(ctx, cfg, store, reg)
	if err != nil {
		return err
	}
	defer lc.stop()
	defer lc.startRetention(ctx, auditLog)()
	if freshDemo {
		lc.runDemo(ctx, cfg.Stdout)
	}
	if cfg.WorkerOnly {
		cfg.Logger.Info("worker ready", "data", cfg.DataDir)
		fmt.Fprintf(cfg.Stdout, "rhizome %s worker ready (data %s)\n", cfg.Version, cfg.DataDir)
		<-ctx.Done()
		fmt.Fprintln(cfg.Stdout, "rhizome worker stopped")
		return nil
	}
	acc := access.New(access.Options{Store: store, Clock: cfg.Clock, Logger: cfg.Logger, Environment: cfg.Environment, Audit: auditLog})
	dataSvc := newServeService(cfg, store, lc.tables, acc, auditLog) // data.go
	defer dataSvc.Close()
	if t := lc.monitor.slo; t != nil {
		dataSvc.Served = t.Served // availability counts serving, REST and SQL alike
	}
	cat.OnApplied(func(context.Context) { dataSvc.Invalidate() })
	srv := New(Deps{Access: acc, Store: store, Catalog: cat, Clock: cfg.Clock, Logger: cfg.Logger, Version: cfg.Version, Jobs: lc.jobs, Tables: lc.tables, Registry: reg,
		Spool: lc.spool, Flusher: lc.flusher, Checker: lc.pipe, Audit: auditLog, Broker: lc.broker, Retention: lc.retention, Alerts: lc.monitor.alerts, SLO: lc.monitor.slo, Serve: dataSvc})
	cat.OnApplied(func(ctx context.Context) { lc.refreshSchedules(ctx) })
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return rhizome.Errorf(rhizome.EUnavailable, "listening on %s: %v", cfg.Listen, err).WithHint("pick another address with --listen, e.g. 127.0.0.1:0")
	}
	url := "http://" + ln.Addr().String()
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	hs.RegisterOnShutdown(srv.CloseStreams)
	go func() { errc <- hs.Serve(ln) }()

	infoPath := filepath.Join(cfg.DataDir, InfoFile)
	info, _ := json.Marshal(Info{URL: url, PID: os.Getpid()})
	if err := writeFileAtomic(infoPath, info, 0o600); err != nil {
		_ = hs.Close()
		return err
	}
	defer os.Remove(infoPath)
	cfg.Logger.Info("ready", "url", url, "data", cfg.DataDir)
	fmt.Fprintf(cfg.Stdout, "rhizome %s ready at %s (data %s)\n", cfg.Version, url, cfg.DataDir)
	stopSQL, err := startSQLEndpoint(cfg, store, dataSvc) // sqlendpoint.go
	if err != nil {
		_ = hs.Close()
		return err
	}
	defer stopSQL()

	select {
	case err := <-errc:
		return rhizome.Wrap(err, "serving")
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		return rhizome.Wrap(err, "shutting down")
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	fmt.Fprintln(cfg.Stdout, "rhizome stopped")
	return nil
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return rhizome.Wrap(err, "writing %s", tmp)
	}
	return rhizome.Wrap(os.Rename(tmp, path), "writing %s", path)
}

// handlePush serves POST /products/{id}/ports/{port}/batches (see push.go).
func (s *Server) handlePush(w http.ResponseWriter, r *http.Request) {
	s.pushTo(s.spool, s.flusher)(w, r)
}
