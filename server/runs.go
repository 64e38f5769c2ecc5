package server

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/connector"
	"github.com/rhizome-mesh/rhizome/jobs"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/spec"
	"github.com/rhizome-mesh/rhizome/table"
)

// The pipeline routes: runs, their logs and lineage, snapshots, connectors.

func (s *Server) pipelineRoutes(r chi.Router) {
	r.Post("/products/{id}/runs", s.handleRun)
	r.Get("/products/{id}/runs", s.handleListRuns)
	r.Post("/products/{id}/backfill", s.handleBackfill)
	r.Post("/products/{id}/ports/{port}/batches", s.handlePush)
	r.Get("/products/{id}/snapshots", s.handleSnapshots)
	r.Get("/runs", s.handleListRuns)
	r.Get("/runs/{run}", s.handleGetRun)
	r.Get("/runs/{run}/logs", s.handleRunLogs)
	r.Get("/runs/{run}/lineage", s.handleRunLineage)
	r.Post("/runs/{run}/cancel", s.handleCancelRun)
	r.Get("/connectors", s.handleConnectors)
}

func (s *Server) needJobs() error {
	if s.jobs == nil {
		return rhizome.Errorf(rhizome.EUnavailable, "pipelines are not running in this server").WithHint("start it with `rhizome up`")
	}
	return nil
}

type runRequest struct {
	Version string `json:"version,omitempty"`
	Timeout string `json:"timeout,omitempty"`
}

func (s *Server) handleRun(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	p := principalOf(r.Context())
	if err := s.needJobs(); err != nil {
		s.writeError(w, r, err)
		return
	}
	var req runRequest
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if err := s.catalog.MayOperate(r.Context(), p, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	var timeout time.Duration
	if req.Timeout != "" {
		d, err := spec.ParseDuration(req.Timeout)
		if err != nil {
			s.writeError(w, r, rhizome.Errorf(rhizome.EInvalid, "timeout %q: want a duration such as \"30 minutes\"", req.Timeout))
			return
		}
		timeout = d
	}
	run, err := s.jobs.Enqueue(r.Context(), jobs.Request{ProductID: id, Version: req.Version, Trigger: rhizome.TriggerManual, Actor: p.ID, Timeout: timeout})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, run)
}

type backfillRequest struct {
	From string `json:"from"`
	To   string `json:"to"`
	Step string `json:"step,omitempty"`
}

func (s *Server) handleBackfill(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	p := principalOf(r.Context())
	if err := s.needJobs(); err != nil {
		s.writeError(w, r, err)
		return
	}
	var req backfillRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	from, err1 := time.Parse(time.RFC3339, req.From)
	to, err2 := time.Parse(time.RFC3339, req.To)
	if err1 != nil || err2 != nil || !from.Before(to) {
		s.writeError(w, r, rhizome.Errorf(rhizome.EInvalid, "backfill needs from < to, as RFC 3339 times").WithHint(`e.g. {"from": "2026-11-01T00:00:00Z", "to": "2026-11-08T00:00:00Z", "step": "1 day"}`))
		return
	}
	step := 24 * time.Hour
	if req.Step != "" {
		d, err := spec.ParseDuration(req.Step)
		if err != nil || d <= 0 {
			s.writeError(w, r, rhizome.Errorf(rhizome.EInvalid, "step %q: want a duration such as \"1 day\"", req.Step))
			return
		}
		step = d
	}
	if err := s.catalog.MayOperate(r.Context(), p, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	runs, err := s.jobs.Backfill(r.Context(), id, from, to, step, p.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"items": runs})
}

func (s *Server) handleListRuns(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	opt := metastore.RunListOptions{ProductID: chi.URLParam(r, "id"), State: rhizome.RunState(q.Get("state")), After: q.Get("after")}
	if opt.ProductID == "" {
		opt.ProductID = q.Get("product")
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			s.writeError(w, r, rhizome.Errorf(rhizome.EInvalid, "limit %q: want a number from 1 to 1000", l))
			return
		}
		opt.Limit = n
	}
	runs, next, err := s.store.ListRuns(r.Context(), opt)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if runs == nil {
		runs = []rhizome.Run{}
	}
	body := map[string]any{"items": runs}
	if next != "" {
		body["next"] = next
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) handleGetRun(w http.ResponseWriter, r *http.Request) {
	run, err := s.store.GetRun(r.Context(), chi.URLParam(r, "run"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, run)
}

func (s *Server) handleRunLogs(w http.ResponseWriter, r *http.Request) {
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	id := chi.URLParam(r, "run")
	if _, err := s.store.GetRun(r.Context(), id); err != nil {
		s.writeError(w, r, err)
		return
	}
	logs, err := s.store.RunLogs(r.Context(), id, after)
	writeItems(s, w, r, logs, err)
}

func (s *Server) handleRunLineage(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "run")
	if _, err := s.store.GetRun(r.Context(), id); err != nil {
		s.writeError(w, r, err)
		return
	}
	evs, err := s.store.LineageEvents(r.Context(), id)
	writeItems(s, w, r, evs, err)
}

func (s *Server) handleCancelRun(w http.ResponseWriter, r *http.Request) {
	if err := s.needJobs(); err != nil {
		s.writeError(w, r, err)
		return
	}
	id := chi.URLParam(r, "run")
	run, err := s.store.GetRun(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.catalog.MayOperate(r.Context(), principalOf(r.Context()), run.ProductID); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.jobs.Cancel(r.Context(), id); err != nil {
		s.writeError(w, r, err)
		return
	}
	run, err = s.store.GetRun(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, run)
}

func (s *Server) handleSnapshots(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	if s.tables == nil {
		s.writeError(w, r, rhizome.Errorf(rhizome.EUnavailable, "no table catalog in this server"))
		return
	}
	obj, err := s.store.Get(r.Context(), rhizome.KindDataProduct, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	version := r.URL.Query().Get("version")
	if version == "" {
		var dp rhizome.DataProduct
		_ = json.Unmarshal(obj.Body, &dp)
		version = dp.CurrentVersion
	}
	snaps, err := s.tables.Snapshots(r.Context(), table.RefFor(id, version))
	if rhizome.Code(err) == rhizome.ENotFound {
		snaps, err = nil, nil
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if snaps == nil {
		snaps = []table.Snapshot{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"product_id": id, "version": version, "items": snaps})
}

type connectorField struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Required bool   `json:"required"`
	Default  any    `json:"default,omitempty"`
	Doc      string `json:"doc"`
}

type connectorInfo struct {
	Name    string           `json:"name"`
	Summary string           `json:"summary"`
	Fields  []connectorField `json:"fields"`
}

func (s *Server) handleConnectors(w http.ResponseWriter, r *http.Request) {
	var out []connectorInfo
	for _, sp := range connector.Specs() {
		ci := connectorInfo{Name: sp.Name, Summary: sp.Summary, Fields: []connectorField{}}
		for _, f := range sp.Fields {
			ci.Fields = append(ci.Fields, connectorField{f.Name, f.Type, f.Required, f.Default, f.Doc})
		}
		out = append(out, ci)
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
}
