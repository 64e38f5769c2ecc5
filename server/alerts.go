package server

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/alert"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/slo"
	"github.com/rhizome-mesh/rhizome/spec"
	"github.com/rhizome-mesh/rhizome/table"
)

// The monitoring routes (alerts here, SLOs in slo.go) and the monitoring
// half of `rhizome up`: the alert manager and the SLO tracker, configured
// from the environment (see docs/monitoring.md).

func (s *Server) monitorRoutes(r chi.Router) {
	r.Get("/alerts", s.handleListAlerts)
	r.Get("/alerts/{key}", s.handleGetAlert)
	r.Get("/alerts/{key}/history", s.handleAlertHistory)
	r.Post("/alerts/{key}/ack", s.handleAckAlert)
	r.Get("/slo", s.handleListSLO)
	r.Get("/products/{id}/slo", s.handleProductSLO)
}

func (s *Server) needAlerts() error {
	if s.alerts == nil {
		return rhizome.Errorf(rhizome.EUnavailable, "alerting is not running in this server").WithHint("start it with `rhizome up`")
	}
	return nil
}

// alertKey is the {key} path segment: keys contain slashes, which clients
// escape as %2F.
func alertKey(r *http.Request) (string, error) {
	k, err := url.PathUnescape(chi.URLParam(r, "key"))
	if err != nil || k == "" {
		return "", rhizome.Errorf(rhizome.EInvalid, "bad alert key %q", chi.URLParam(r, "key")).WithHint("escape the slashes of a key as %%2F")
	}
	return k, nil
}

func (s *Server) handleListAlerts(w http.ResponseWriter, r *http.Request) {
	if err := s.needAlerts(); err != nil {
		s.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	f := alert.Filter{State: q.Get("state"), ProductID: q.Get("product"), Team: q.Get("team")}
	switch f.State {
	case "", alert.StateFiring, alert.StateAcknowledged, alert.StateResolved:
	default:
		s.writeError(w, r, rhizome.Errorf(rhizome.EInvalid, "unknown state %q", f.State).WithHint("want firing, acknowledged or resolved"))
		return
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			s.writeError(w, r, rhizome.Errorf(rhizome.EInvalid, "limit %q: want a positive number", l))
			return
		}
		f.Limit = min(n, 10000)
	}
	items, err := s.alerts.List(r.Context(), f)
	writeItems(s, w, r, items, err)
}

// alertOf is the alert key of a request to an alert's routes; it answers
// the error itself (no alerting here, a bad key) and returns false.
func (s *Server) alertOf(w http.ResponseWriter, r *http.Request) (string, bool) {
	err := s.needAlerts()
	key := ""
	if err == nil {
		key, err = alertKey(r)
	}
	if err != nil {
		s.writeError(w, r, err)
		return "", false
	}
	return key, true
}

func (s *Server) handleGetAlert(w http.ResponseWriter, r *http.Request) {
	key, ok := s.alertOf(w, r)
	if !ok {
		return
	}
	a, err := s.alerts.Get(r.Context(), key)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (s *Server) handleAlertHistory(w http.ResponseWriter, r *http.Request) {
	key, ok := s.alertOf(w, r)
	if !ok {
		return
	}
	items, err := s.alerts.History(r.Context(), key)
	writeItems(s, w, r, items, err)
}

type ackRequest struct {
	Note string `json:"note,omitempty"`
}

// handleAckAlert acknowledges an alert: those who may operate its product
// (its owners, admins) may.
func (s *Server) handleAckAlert(w http.ResponseWriter, r *http.Request) {
	key, ok := s.alertOf(w, r)
	if !ok {
		return
	}
	var req ackRequest
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	a, err := s.alerts.Get(r.Context(), key)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	p := principalOf(r.Context())
	if a.ProductID != "" {
		if err := s.catalog.MayOperate(r.Context(), p, a.ProductID); err != nil {
			if rhizome.Code(err) == rhizome.EForbidden {
				err = rhizome.Errorf(rhizome.EForbidden, "only the owners of %s (team %s) acknowledge its alerts", a.ProductID, a.Team)
			}
			s.writeError(w, r, err)
			return
		}
	} else if !p.Admin {
		s.writeError(w, r, rhizome.Errorf(rhizome.EForbidden, "only admins acknowledge an alert of no product"))
		return
	}
	acked, err := s.alerts.Ack(r.Context(), key, p.ID, req.Note)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, acked)
}

// monitoring is the alert manager and SLO tracker of one `up` process.
type monitoring struct {
	alerts *alert.Manager
	slo    *slo.Tracker
	stop   context.CancelFunc
	done   chan struct{}
}

// monitorEnv reads a duration setting from the environment.
func monitorEnv(cfg Config, name string, def time.Duration) (time.Duration, error) {
	v := cfg.Getenv(name)
	if v == "" {
		return def, nil
	}
	d, err := spec.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, rhizome.Errorf(rhizome.EInvalid, "%s=%q: want a duration such as \"30s\" or \"30 minutes\"", name, v)
	}
	return d, nil
}

// startMonitoring builds the alert manager (delivering and ticking) and the
// SLO tracker; the API process (not a --worker) also ticks the tracker.
func startMonitoring(cfg Config, store metastore.Store, tables *table.Catalog, reg *prometheus.Registry) (*monitoring, error) {
	settings := map[string]time.Duration{}
	for name, def := range map[string]time.Duration{
		"RHIZOME_ALERT_GROUP_WAIT": 30 * time.Second, "RHIZOME_ALERT_REPEAT_INTERVAL": 4 * time.Hour,
		"RHIZOME_ALERT_ESCALATION_DELAY": 30 * time.Minute, "RHIZOME_ALERT_TICK": 5 * time.Second,
		"RHIZOME_SLO_WINDOW": 30 * 24 * time.Hour, "RHIZOME_SLO_TICK": 30 * time.Second,
	} {
		d, err := monitorEnv(cfg, name, def)
		if err != nil {
			return nil, err
		}
		settings[name] = d
	}
	var smtp *alert.SMTP
	if addr := cfg.Getenv("RHIZOME_SMTP_ADDR"); addr != "" {
		smtp = &alert.SMTP{Addr: addr, From: cfg.Getenv("RHIZOME_SMTP_FROM"), Username: cfg.Getenv("RHIZOME_SMTP_USERNAME"), Password: cfg.Getenv("RHIZOME_SMTP_PASSWORD")}
		if smtp.From == "" {
			smtp.From = "rhizome@localhost"
		}
	}
	am := alert.New(alert.Options{Store: store, Clock: cfg.Clock, Logger: cfg.Logger, Registry: reg,
		GroupWait: settings["RHIZOME_ALERT_GROUP_WAIT"], RepeatInterval: settings["RHIZOME_ALERT_REPEAT_INTERVAL"],
		EscalationDelay: settings["RHIZOME_ALERT_ESCALATION_DELAY"], SlackWebhook: cfg.Getenv("RHIZOME_SLACK_WEBHOOK"), SMTP: smtp})
	am.Start(settings["RHIZOME_ALERT_TICK"])
	tr := slo.New(slo.Options{Store: store, Publishes: tablePublishes{tables, store}, Clock: cfg.Clock, Logger: cfg.Logger,
		Window: settings["RHIZOME_SLO_WINDOW"], Alerts: am, Registry: reg})
	ctx, cancel := context.WithCancel(context.Background())
	m := &monitoring{alerts: am, slo: tr, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		if cfg.WorkerOnly {
			return
		}
		t := time.NewTicker(settings["RHIZOME_SLO_TICK"])
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := tr.Tick(ctx); err != nil && ctx.Err() == nil {
					cfg.Logger.Warn("slo: tick", "err", err)
				}
			}
		}
	}()
	return m, nil
}

// close stops the SLO ticks, flushes the serving counts and drains the
// alert deliveries (at most 10s).
func (m *monitoring) close(logger interface{ Warn(string, ...any) }) {
	m.stop()
	<-m.done
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.slo.Flush(ctx); err != nil {
		logger.Warn("slo: flushing serving counts", "err", err)
	}
	if err := m.alerts.Close(ctx); err != nil {
		logger.Warn("alerts: draining deliveries", "err", err)
	}
}

// runFinished raises run_failed when a run fails for good, and clears it
// when a later run of the product succeeds.
func (m *monitoring) runFinished(run *rhizome.Run) {
	if m == nil {
		return
	}
	c := alert.Condition{Key: alert.KindRunFailed + "/" + run.ProductID, Kind: alert.KindRunFailed, ProductID: run.ProductID, Severity: "critical"}
	switch run.State {
	case rhizome.RunFailed:
		c.Firing = true
		c.Summary = "run " + run.ID + " failed: " + oneLine(run.Error)
		c.Details = map[string]any{"run_id": run.ID, "error": run.Error, "trigger": string(run.Trigger)}
		if run.FinishedAt != nil {
			c.At = *run.FinishedAt
		}
	case rhizome.RunSucceeded:
		c.Summary = "run " + run.ID + " succeeded"
	default:
		return
	}
	m.alerts.Observe(context.Background(), c)
}

// oneLine joins an error's lines, at most 300 characters.
func oneLine(s string) string {
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	s = strings.Join(parts, " ")
	if r := []rune(s); len(r) > 300 {
		return string(r[:300]) + "…"
	}
	return s
}
