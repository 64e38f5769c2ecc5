package server

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/audit"
	"github.com/rhizome-mesh/rhizome/pipeline"
	"github.com/rhizome-mesh/rhizome/retention"
)

// Retention and erasure: the routes, and the schedule that `rhizome up`
// runs (see docs/retention.md).

// DefaultRetentionInterval is how often `rhizome up` enforces retention;
// $RHIZOME_RETENTION_INTERVAL (a Go duration; "off" disables) changes it.
const DefaultRetentionInterval = 24 * time.Hour

func (s *Server) needRetention() error {
	if s.retention == nil {
		return rhizome.Errorf(rhizome.EUnavailable, "retention is not running in this server").WithHint("start it with `rhizome up`")
	}
	return nil
}

// handleRetentionEnforce serves POST /products/{id}/retention/enforce
// (the product's operators and admins).
func (s *Server) handleRetentionEnforce(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	p := principalOf(r.Context())
	if err := s.needRetention(); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.catalog.MayOperate(r.Context(), p, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.retention.Enforce(r.Context(), id, p.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

type erasureRequest struct {
	Key      string   `json:"key,omitempty"`
	Value    string   `json:"value"`
	Products []string `json:"products,omitempty"`
	Reason   string   `json:"reason,omitempty"`
}

// handleErasure serves POST /erasure: admins, or a steward of the owner
// team of every product the erasure reaches.
func (s *Server) handleErasure(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r.Context())
	if err := s.needRetention(); err != nil {
		s.writeError(w, r, err)
		return
	}
	var body erasureRequest
	if err := decodeJSON(w, r, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	req := retention.ErasureRequest{Key: body.Key, Value: body.Value, Products: body.Products, Reason: body.Reason, Actor: p.ID}
	targets, err := s.retention.Targets(r.Context(), req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !p.Admin {
		var refused []string
		for _, dp := range targets {
			if !s.isSteward(r.Context(), p.ID, dp.OwnerTeam) {
				refused = append(refused, dp.ID)
			}
		}
		if len(refused) > 0 {
			s.recordDenied(r, "erasure", refused)
			s.writeError(w, r, rhizome.Errorf(rhizome.EForbidden, "only admins and stewards of the owner team erase from %s", strings.Join(refused, ", ")).
				WithHint("ask an admin, or name only products whose owner team lists you with the steward role"))
			return
		}
	}
	rep, err := s.retention.Erase(r.Context(), req)
	if err != nil && rep == nil {
		s.writeError(w, r, err)
		return
	}
	if err != nil {
		s.logger.Error("erasure failed", "products", rep.Failed, "err", err)
	}
	writeJSON(w, http.StatusOK, rep) // Failed names the products that failed
}

func (s *Server) recordDenied(r *http.Request, action string, products []string) {
	if s.audit == nil {
		return
	}
	e := audit.Entry{Actor: principalOf(r.Context()).ID, Action: action, Via: "rest", Decision: audit.Deny,
		Products: products, Reason: "not a steward of the owner team"}
	if len(products) > 0 {
		e.ProductID = products[0]
	}
	_ = s.audit.Record(context.WithoutCancel(r.Context()), e)
}

// isSteward reports whether principal holds the steward role in team.
func (s *Server) isSteward(ctx context.Context, principal, team string) bool {
	o, err := s.store.Get(ctx, rhizome.KindTeam, team)
	if err != nil {
		return false
	}
	var t rhizome.Team
	if json.Unmarshal(o.Body, &t) != nil {
		return false
	}
	return t.HasRole(principal, rhizome.RoleSteward)
}

// startRetention makes the lifecycle's retention enforcer and enforces
// every product's retention period now and then (daily by default). It
// returns the function that stops the schedule.
func (lc *lifecycle) startRetention(ctx context.Context, log *audit.Log) (stop func()) {
	lc.retention = retention.New(retention.Options{Store: lc.store, Tables: lc.tables, WorkDir: filepath.Join(lc.cfg.DataDir, "work"),
		Clock: lc.cfg.Clock, Logger: lc.cfg.Logger, Audit: log, OnPublished: lc.broker.Notify})
	every := DefaultRetentionInterval
	if v := lc.cfg.Getenv("RHIZOME_RETENTION_INTERVAL"); v != "" {
		if v == "off" {
			return func() {}
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			lc.cfg.Logger.Warn("RHIZOME_RETENTION_INTERVAL is not a duration; enforcing daily", "value", v)
		} else {
			every = d
		}
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				res, err := lc.retention.EnforceAll(ctx, "rhizome")
				if err != nil {
					lc.cfg.Logger.Warn("retention", "err", err)
				}
				for _, r := range res {
					if r.RowsDeleted > 0 || r.SnapshotsExpired > 0 {
						lc.cfg.Logger.Info("retention enforced", "product", r.ProductID, "rows_deleted", r.RowsDeleted, "snapshots_expired", r.SnapshotsExpired)
					}
				}
				lc.pruneQuarantine()
			}
		}
	}()
	return func() { cancel(); <-done }
}

// DefaultQuarantineKeep is how long the quality gate's quarantined outputs
// are kept for inspection (RHIZOME_QUARANTINE_KEEP overrides it).
const DefaultQuarantineKeep = 14 * 24 * time.Hour

// pruneQuarantine deletes quarantined outputs older than the keep period;
// it runs with each retention sweep.
func (lc *lifecycle) pruneQuarantine() {
	keep := DefaultQuarantineKeep
	if v := lc.cfg.Getenv("RHIZOME_QUARANTINE_KEEP"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			lc.cfg.Logger.Warn("RHIZOME_QUARANTINE_KEEP is not a duration; keeping quarantined outputs 14 days", "value", v)
		} else {
			keep = d
		}
	}
	removed, err := pipeline.PruneQuarantine(filepath.Join(lc.cfg.DataDir, "quarantine"), lc.cfg.Clock.Now().Add(-keep))
	if err != nil {
		lc.cfg.Logger.Warn("pruning the quarantine", "err", err)
	}
	if len(removed) > 0 {
		lc.cfg.Logger.Info("quarantine pruned", "files", len(removed))
	}
}
