package server

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/slo"
	"github.com/rhizome-mesh/rhizome/table"
)

// The SLO routes (registered by monitorRoutes in alerts.go).

func (s *Server) needSLO() error {
	if s.slo == nil {
		return rhizome.Errorf(rhizome.EUnavailable, "SLO tracking is not running in this server").WithHint("start it with `rhizome up`")
	}
	return nil
}

// sloReport is a product's report with its breach events.
type sloReport struct {
	*slo.Report
	Events []slo.Event `json:"events"`
}

func (s *Server) handleProductSLO(w http.ResponseWriter, r *http.Request) {
	if err := s.needSLO(); err != nil {
		s.writeError(w, r, err)
		return
	}
	id := chi.URLParam(r, "id")
	rep, err := s.slo.Product(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	evs, err := s.slo.Events(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sloReport{Report: rep, Events: evs})
}

func (s *Server) handleListSLO(w http.ResponseWriter, r *http.Request) {
	if err := s.needSLO(); err != nil {
		s.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	reps, err := s.slo.All(r.Context(), slo.ListOptions{Team: q.Get("team"), Domain: q.Get("domain")})
	writeItems(s, w, r, reps, err)
}

// tablePublishes reads publish times from the table catalog: the commit
// times of the product version's snapshots.
type tablePublishes struct {
	tables *table.Catalog
	store  metastore.Store
}

func (p tablePublishes) PublishTimes(ctx context.Context, productID, version string) ([]time.Time, error) {
	if p.tables == nil {
		return nil, nil
	}
	if version == "" {
		o, err := p.store.Get(ctx, rhizome.KindDataProduct, productID)
		if err != nil {
			return nil, err
		}
		var dp rhizome.DataProduct
		_ = json.Unmarshal(o.Body, &dp)
		version = dp.CurrentVersion
	}
	snaps, err := p.tables.Snapshots(ctx, table.RefFor(productID, version))
	if err != nil {
		return nil, err
	}
	out := make([]time.Time, 0, len(snaps))
	for _, s := range snaps {
		out = append(out, s.Time)
	}
	return out, nil
}
