package server

import (
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/access"
	"github.com/rhizome-mesh/rhizome/audit"
)

// The access routes: requests, approvals, grants, and the explanation of
// a decision (see docs/access.md). Decisions themselves are access's.

func (s *Server) accessRoutes(r chi.Router) {
	r.With(selfAudited).Post("/access-requests", s.handleAccessRequest)
	r.Get("/access-requests", s.handleListAccessRequests)
	r.Get("/access-requests/{id}", s.handleGetAccessRequest)
	r.With(selfAudited).Post("/access-requests/{id}/approve", s.handleApproveAccess)
	r.With(selfAudited).Post("/access-requests/{id}/deny", s.handleDenyAccess)
	r.Get("/grants", s.handleListGrants)
	r.With(selfAudited).Delete("/grants/{id}", s.handleRevokeGrant)
	r.Get("/products/{id}/access", s.handleExplainAccess)
}

func subjectOf(r *http.Request) access.Subject { return access.SubjectOf(principalOf(r.Context())) }

func (s *Server) handleAccessRequest(w http.ResponseWriter, r *http.Request) {
	var in access.NewRequest
	if err := decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	if in.ProductID == "" {
		s.writeError(w, r, rhizome.Invalid("an access request names a product", rhizome.Problem{Path: "product_id", Message: "missing"}))
		return
	}
	req, err := s.access.RequestAccess(r.Context(), subjectOf(r), in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, req)
}

func (s *Server) handleListAccessRequests(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	mine, _ := strconv.ParseBool(q.Get("mine"))
	reqs, err := s.access.ListRequests(r.Context(), subjectOf(r), access.RequestFilter{ProductID: q.Get("product"), State: q.Get("state"), Mine: mine})
	writeItems(s, w, r, reqs, err)
}

func (s *Server) handleGetAccessRequest(w http.ResponseWriter, r *http.Request) {
	req, err := s.access.GetRequest(r.Context(), subjectOf(r), chi.URLParam(r, "id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, req)
}

// approveResponse is the answer to an approval.
type approveResponse struct {
	Request *access.AccessRequest `json:"request"`
	Grant   *access.Grant         `json:"grant"`
}

func (s *Server) handleApproveAccess(w http.ResponseWriter, r *http.Request) {
	var a access.Approval
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, &a); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	req, g, err := s.access.Approve(r.Context(), subjectOf(r), chi.URLParam(r, "id"), a)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, approveResponse{Request: req, Grant: g})
}

type denyRequest struct {
	Reason string `json:"reason"`
}

func (s *Server) handleDenyAccess(w http.ResponseWriter, r *http.Request) {
	var in denyRequest
	if err := decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	req, err := s.access.Deny(r.Context(), subjectOf(r), chi.URLParam(r, "id"), in.Reason)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, req)
}

func (s *Server) handleListGrants(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	gs, err := s.access.ListGrants(r.Context(), subjectOf(r), access.GrantFilter{ProductID: q.Get("product"), Principal: q.Get("principal"), State: q.Get("state")})
	writeItems(s, w, r, gs, err)
}

func (s *Server) handleRevokeGrant(w http.ResponseWriter, r *http.Request) {
	g, err := s.access.Revoke(r.Context(), subjectOf(r), chi.URLParam(r, "id"), r.URL.Query().Get("reason"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, g)
}

func (s *Server) handleExplainAccess(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d, err := s.access.Explain(r.Context(), subjectOf(r), chi.URLParam(r, "id"), q.Get("principal"), q.Get("via"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// recorderOf is l as an audit.Recorder: nil (not a nil *audit.Log) when
// there is no log.
func recorderOf(l *audit.Log) audit.Recorder {
	if l == nil {
		return nil
	}
	return l
}
