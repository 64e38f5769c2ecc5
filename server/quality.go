package server

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/access"
	"github.com/rhizome-mesh/rhizome/qreport"
	"github.com/rhizome-mesh/rhizome/quality"
	"github.com/rhizome-mesh/rhizome/table"
)

// The quality routes: get_quality_report() and on-demand checks.

// QualityChecker runs a product version's checks against its current
// snapshot and stores the results (*pipeline.Pipeline implements it).
type QualityChecker interface {
	Check(ctx context.Context, productID, version string) (*quality.Report, string, error)
}

func (s *Server) qualityRoutes(r chi.Router) {
	r.Get("/products/{id}/quality", s.handleQualityReport)
	r.Post("/products/{id}/checks", s.handleRunChecks)
}

func (s *Server) handleQualityReport(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := chi.URLParam(r, "id")
	obj, err := s.store.Get(ctx, rhizome.KindDataProduct, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var dp rhizome.DataProduct
	if err := json.Unmarshal(obj.Body, &dp); err != nil {
		s.writeError(w, r, rhizome.Wrap(err, "decoding %s", id))
		return
	}
	opt := qreport.BuildOptions{Product: &dp, Version: r.URL.Query().Get("version"), Now: s.clock.Now()}
	if h := r.URL.Query().Get("history"); h != "" {
		n, err := strconv.Atoi(h)
		if err != nil || n < 1 || n > 1000 {
			s.writeError(w, r, rhizome.Errorf(rhizome.EInvalid, "history %q: want a number from 1 to 1000", h))
			return
		}
		opt.History = n
	}
	if opt.Version == "" {
		opt.Version = dp.CurrentVersion
	}
	if known := append([]string{dp.CurrentVersion}, dp.PreviousVersions...); !slices.Contains(known, opt.Version) {
		s.writeError(w, r, rhizome.Errorf(rhizome.ENotFound, "%s has no version %q", id, opt.Version).
			WithHint("its versions: %s", strings.Join(known, ", ")))
		return
	}
	// Sampled rows follow the caller's access decision, as REST and SQL
	// reads do (access.ViaSample).
	show, err := s.sampleView(ctx, subjectOf(r), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	opt.Sample = show
	if s.tables != nil {
		snaps, err := s.tables.Snapshots(ctx, table.RefFor(id, opt.Version))
		if err != nil && rhizome.Code(err) != rhizome.ENotFound {
			s.writeError(w, r, err)
			return
		}
		for _, sn := range snaps {
			opt.Publishes = append(opt.Publishes, sn.Time)
		}
	}
	rep, err := qreport.Build(ctx, s.store, opt)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

type checkRequest struct {
	Version string `json:"version,omitempty"`
}

// CheckResponse is the answer of POST /products/{id}/checks.
type CheckResponse struct {
	RunID     string          `json:"run_id"`
	ProductID string          `json:"product_id"`
	Version   string          `json:"version"`
	Gate      string          `json:"gate"`
	At        time.Time       `json:"at"`
	Report    *quality.Report `json:"report"`
}

func (s *Server) handleRunChecks(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := chi.URLParam(r, "id")
	if s.checker == nil {
		s.writeError(w, r, rhizome.Errorf(rhizome.EUnavailable, "checks do not run in this server").WithHint("start it with `rhizome up`"))
		return
	}
	var req checkRequest
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if err := s.catalog.MayOperate(ctx, principalOf(ctx), id); err != nil {
		s.writeError(w, r, err)
		return
	}
	rep, runID, err := s.checker.Check(ctx, id, req.Version)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	version := req.Version
	if version == "" {
		if obj, err := s.store.Get(ctx, rhizome.KindDataProduct, id); err == nil {
			var dp rhizome.DataProduct
			_ = json.Unmarshal(obj.Body, &dp)
			version = dp.CurrentVersion
		}
	}
	writeJSON(w, http.StatusOK, CheckResponse{RunID: runID, ProductID: id, Version: version, Gate: rep.Gate(), At: s.clock.Now().UTC(), Report: rep})
}

// sampleView turns the caller's access decision on a product into the
// filter applied to sampled failing rows: no rows when the caller may not
// read the product or reads it through a row filter (a sample cannot be
// filtered by SQL after the fact), hidden columns dropped, masked columns
// shown as "***" (the stored value is not re-masked with the SQL mask).
func (s *Server) sampleView(ctx context.Context, subj access.Subject, productID string) (func(map[string]any) map[string]any, error) {
	if s.access == nil {
		return nil, nil
	}
	d, err := s.access.Decide(ctx, access.Request{Subject: subj, ProductID: productID, Via: access.ViaSample})
	if err != nil {
		return nil, err
	}
	if !d.Allow || d.RowFilter != "" {
		return func(map[string]any) map[string]any { return nil }, nil
	}
	cols := make(map[string]access.Column, len(d.Columns))
	for _, c := range d.Columns {
		cols[c.Name] = c
	}
	return func(row map[string]any) map[string]any {
		out := make(map[string]any, len(row))
		for k, v := range row {
			c, known := cols[k]
			switch {
			case known && c.Hidden:
			case known && c.Mask == access.MaskNone:
				out[k] = v
			default: // masked, or a column the decision does not name
				out[k] = "***"
			}
		}
		return out
	}, nil
}
