package server

import (
	"context"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/identity"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/spec"
)

type ctxKey int

const principalKey ctxKey = iota

func principalOf(ctx context.Context) *rhizome.Principal {
	p, _ := ctx.Value(principalKey).(*rhizome.Principal)
	return p
}

// authenticate puts the caller's principal in the request context.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret, err := identity.ParseBearer(r.Header.Get("Authorization"))
		if err != nil {
			err = rhizome.Errorf(rhizome.EUnauthorized, "%v", err).WithHint("send Authorization: Bearer <token>")
			s.authAudit.failed(r.Context(), "rest:"+remoteIP(r), "rest", err)
			s.writeError(w, r, err)
			return
		}
		p, err := identity.Authenticate(r.Context(), s.store, s.clock, secret)
		if err != nil {
			s.authAudit.failed(r.Context(), "rest:"+remoteIP(r), "rest", err)
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey, p)))
	})
}

// kindRoutes registers the object routes of one kind.
func (s *Server) kindRoutes(r chi.Router, kind rhizome.Kind) {
	base := "/" + kind.Plural()
	r.Get(base, s.handleList(kind))
	r.Get(base+"/{id}", s.handleGet(kind))
	r.Put(base+"/{id}", s.handlePut(kind))
	r.Delete(base+"/{id}", s.handleDelete(kind))
	r.Get(base+"/{id}/history", s.handleHistory(kind))
}

func (s *Server) handleList(kind rhizome.Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		opt := metastore.ListOptions{
			Kind: kind, Domain: q.Get("domain"), OwnerTeam: q.Get("owner_team"),
			Sensitivity: q.Get("sensitivity"), Tag: q.Get("tag"), Member: q.Get("member"),
			After: q.Get("after"),
		}
		if l := q.Get("limit"); l != "" {
			n, err := strconv.Atoi(l)
			if err != nil || n < 1 || n > 1000 {
				s.writeError(w, r, rhizome.Errorf(rhizome.EInvalid, "limit %q: want a number from 1 to 1000", l))
				return
			}
			opt.Limit = n
		}
		page, err := s.store.List(r.Context(), opt)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if page.Items == nil {
			page.Items = []*rhizome.Object{}
		}
		writeJSON(w, http.StatusOK, page)
	}
}

func (s *Server) handleGet(kind rhizome.Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		obj, err := s.store.Get(r.Context(), kind, chi.URLParam(r, "id"))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		w.Header().Set("ETag", strconv.Quote(strconv.FormatInt(obj.Revision, 10)))
		writeJSON(w, http.StatusOK, obj)
	}
}

// ifMatch reads an If-Match revision; AnyRevision when absent.
func ifMatch(r *http.Request) (int64, error) {
	h := strings.TrimSpace(r.Header.Get("If-Match"))
	if h == "" || h == "*" {
		return metastore.AnyRevision, nil
	}
	n, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(h, "W/"), `"`), 10, 64)
	if err != nil || n < 0 {
		return 0, rhizome.Errorf(rhizome.EInvalid, "If-Match %q: want a revision number such as \"3\"", h)
	}
	return n, nil
}

func (s *Server) handlePut(kind rhizome.Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := chi.URLParam(r, "id")
		exp, err := ifMatch(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		body, err := readBody(w, r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		name := kind.Plural() + "/" + id
		if doc, err := spec.DecodeOne(name, body); err == nil && (doc.Kind != kind || doc.ID != id) {
			s.writeError(w, r, rhizome.Errorf(rhizome.EInvalid, "the body is %s/%s but the URL names %s/%s", doc.Kind, doc.ID, kind, id).
				WithHint("PUT each manifest to its own URL, or POST several to /api/v1/apply"))
			return
		}
		req := rhizome.ApplyRequest{Files: []rhizome.SourceFile{{Name: name, Content: string(body)}}, DryRun: r.URL.Query().Get("dry_run") == "true"}
		if exp != metastore.AnyRevision {
			req.Expected = map[string]int64{string(kind) + "/" + id: exp}
		}
		s.apply(w, r, req)
	}
}

func (s *Server) handleDelete(kind rhizome.Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		exp, err := ifMatch(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		res, err := s.catalog.Delete(r.Context(), principalOf(r.Context()), kind, chi.URLParam(r, "id"), exp)
		s.applied(w, r, res, err)
	}
}

func (s *Server) handleHistory(kind rhizome.Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		revs, err := s.store.History(r.Context(), kind, chi.URLParam(r, "id"))
		writeItems(s, w, r, revs, err)
	}
}

func (s *Server) handleVersions(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	if _, err := s.store.Get(r.Context(), rhizome.KindDataProduct, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	vs, err := s.store.Versions(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if vs == nil {
		vs = []rhizome.ProductVersion{}
	}
	// Newest first by semantic version, not by when it was recorded.
	sort.SliceStable(vs, func(i, j int) bool { return spec.CompareVersions(vs[i].Version, vs[j].Version) > 0 })
	writeJSON(w, http.StatusOK, map[string]any{"items": vs})
}

func (s *Server) handleVersion(w http.ResponseWriter, r *http.Request) {
	v, err := s.store.Version(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "version"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) handleApply(w http.ResponseWriter, r *http.Request) {
	var req rhizome.ApplyRequest
	if isJSON(r) {
		if err := decodeJSON(w, r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
	} else {
		body, err := readBody(w, r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		q := r.URL.Query()
		req = rhizome.ApplyRequest{Files: []rhizome.SourceFile{{Name: "request", Content: string(body)}},
			DryRun: q.Get("dry_run") == "true", Prune: q.Get("prune") == "true"}
	}
	s.apply(w, r, req)
}

func (s *Server) apply(w http.ResponseWriter, r *http.Request, req rhizome.ApplyRequest) {
	res, err := s.catalog.Apply(r.Context(), principalOf(r.Context()), req)
	s.applied(w, r, res, err)
}

func (s *Server) applied(w http.ResponseWriter, r *http.Request, res *rhizome.ApplyResult, err error) {
	if err != nil {
		s.metrics.applies.WithLabelValues(string(rhizome.Code(err))).Inc()
		s.writeError(w, r, err)
		return
	}
	result := "applied"
	if res.DryRun {
		result = "dry_run"
	}
	s.metrics.applies.WithLabelValues(result).Inc()
	if res.Applied {
		for _, c := range res.Changes {
			s.metrics.changes.WithLabelValues(string(c.Kind), string(c.Action)).Inc()
		}
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) handleSchemas(w http.ResponseWriter, r *http.Request) {
	var kinds []rhizome.Kind
	kinds = append(kinds, spec.SchemaKinds()...)
	writeJSON(w, http.StatusOK, map[string]any{"items": kinds})
}

func (s *Server) handleSchema(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "kind")
	kind, ok := rhizome.ParseKind(name)
	var b []byte
	if ok {
		b, ok = spec.Schema(kind)
	}
	if !ok {
		s.writeError(w, r, rhizome.Errorf(rhizome.ENotFound, "no schema for kind %q", name).WithHint("GET /api/v1/schemas lists the kinds"))
		return
	}
	w.Header().Set("Content-Type", "application/schema+json")
	_, _ = w.Write(b)
}

func (s *Server) handleWhoAmI(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, principalOf(r.Context()))
}

type tokenRequest struct {
	Principal string                `json:"principal"`
	Kind      rhizome.PrincipalKind `json:"kind"`
	Name      string                `json:"name"`
	Admin     bool                  `json:"admin"`
	ExpiresIn string                `json:"expires_in"`
}

func (s *Server) handleCreateToken(w http.ResponseWriter, r *http.Request) {
	caller := principalOf(r.Context())
	var req tokenRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Principal == "" {
		req.Principal = caller.ID
	}
	if !caller.Admin && (req.Principal != caller.ID || req.Admin) {
		s.writeError(w, r, rhizome.Errorf(rhizome.EForbidden, "%s may only create tokens for itself", caller.ID).WithHint("ask an admin to create tokens for others or admin tokens"))
		return
	}
	var exp time.Duration
	if req.ExpiresIn != "" {
		d, err := spec.ParseDuration(req.ExpiresIn)
		if err != nil || d <= 0 {
			s.writeError(w, r, rhizome.Errorf(rhizome.EInvalid, "expires_in %q: want a duration such as \"720h\" or \"30 days\"", req.ExpiresIn))
			return
		}
		exp = d
	}
	tok, secret, err := s.minter.Create(r.Context(), identity.TokenSpec{Principal: req.Principal, Kind: req.Kind, Admin: req.Admin, Name: req.Name, ExpiresIn: exp})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"token": tok, "secret": secret})
}

func (s *Server) handleListTokens(w http.ResponseWriter, r *http.Request) {
	caller := principalOf(r.Context())
	who := caller.ID
	if caller.Admin {
		who = r.URL.Query().Get("principal")
	}
	toks, err := s.store.ListTokens(r.Context(), who)
	writeItems(s, w, r, toks, err)
}

func (s *Server) handleRevokeToken(w http.ResponseWriter, r *http.Request) {
	caller := principalOf(r.Context())
	id := chi.URLParam(r, "id")
	err := s.store.Update(r.Context(), func(tx metastore.Tx) error {
		if !caller.Admin {
			toks, err := tx.ListTokens(r.Context(), caller.ID)
			if err != nil {
				return err
			}
			mine := false
			for _, t := range toks {
				mine = mine || t.ID == id
			}
			if !mine {
				return rhizome.Errorf(rhizome.EForbidden, "%s may only revoke its own tokens", caller.ID)
			}
		}
		return tx.RevokeToken(r.Context(), id)
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handlePrincipals(w http.ResponseWriter, r *http.Request) {
	if !principalOf(r.Context()).Admin {
		s.writeError(w, r, rhizome.Errorf(rhizome.EForbidden, "only admins list principals"))
		return
	}
	ps, err := s.store.ListPrincipals(r.Context())
	writeItems(s, w, r, ps, err)
}
