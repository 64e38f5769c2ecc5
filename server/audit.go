package server

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/audit"
)

// The audit routes (the log, its export and verification), the retention
// and erasure routes (retention.go) and the change feed (changes.go); and
// the middleware that audits every mutating request.

func (s *Server) auditRoutes(r chi.Router) {
	r.Get("/audit", s.handleAudit)
	r.Get("/audit/export", s.handleAuditExport)
	r.Post("/audit/verify", s.handleAuditVerify)
	r.Post("/products/{id}/retention/enforce", s.handleRetentionEnforce)
	r.Post("/erasure", s.handleErasure)
	r.Get("/products/{id}/changes", s.handleChanges)
}

// initAudit takes the audit log, the change broker and the retention
// enforcer from d (a broker of its own when d has none: the feed then
// polls).
func (s *Server) initAudit(d Deps) {
	s.audit, s.broker, s.retention = d.Audit, d.Broker, d.Retention
	if s.audit != nil {
		s.authAudit = newAuthAuditor(s.audit, s.clock)
	}
	s.closing = make(chan struct{})
	if s.broker == nil {
		s.broker = NewBroker()
	}
}

// Audit is the server's audit log (nil when it keeps none), for the
// edges that audit data access themselves.
func (s *Server) Audit() *audit.Log { return s.audit }

// auditMutations records every request that is not a GET (or HEAD or
// OPTIONS) once it is answered: Action "<METHOD> <route pattern>", the
// caller, the product when the route names one, allow or deny (401/403)
// and the status.
type selfAuditedKey struct{}

// selfAudited marks routes whose handlers (or the services they call)
// record their own audit entry (access requests and grants, SQL queries),
// so that auditMutations does not record a second, vaguer one when they
// succeed (refusals are still recorded here).
func selfAudited(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := r.Context().Value(selfAuditedKey{}).(*bool); ok {
			*p = true
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) auditMutations(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.audit == nil || r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions {
			next.ServeHTTP(w, r)
			return
		}
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		self := new(bool)
		r = r.WithContext(context.WithValue(r.Context(), selfAuditedKey{}, self))
		next.ServeHTTP(ww, r)
		status := ww.Status()
		if status == 0 {
			status = http.StatusOK
		}
		if *self && status < 400 {
			return // the handler recorded its own, more precise entry
		}
		pattern := r.URL.Path
		rc := chi.RouteContext(r.Context())
		if rc != nil {
			if p := rc.RoutePattern(); p != "" {
				pattern = p
			}
		}
		e := audit.Entry{Action: r.Method + " " + pattern, Via: "rest", Decision: audit.Allow, Query: r.URL.RequestURI(),
			Details: map[string]any{"status": status}}
		if p := principalOf(r.Context()); p != nil {
			e.Actor = p.ID
		}
		if status == http.StatusUnauthorized || status == http.StatusForbidden {
			e.Decision, e.Reason = audit.Deny, http.StatusText(status)
		}
		if rc != nil {
			if id := rc.URLParam("id"); id != "" {
				if strings.HasPrefix(pattern, "/api/v1/products/{id}") {
					e.ProductID = id
				} else {
					e.Details["object"] = id
				}
			}
			for _, k := range []string{"run", "port"} {
				if v := rc.URLParam(k); v != "" {
					e.Details[k] = v
				}
			}
		}
		if e.Actor == "" {
			e.Actor = "anonymous"
		}
		if err := s.audit.Record(context.WithoutCancel(r.Context()), e); err != nil {
			s.logger.Error("audit: recording a request", "action", e.Action, "err", err)
		}
	})
}

func (s *Server) needAudit() error {
	if s.audit == nil {
		return rhizome.Errorf(rhizome.EUnavailable, "this server keeps no audit log").WithHint("start it with `rhizome up`")
	}
	return nil
}

func needAdmin(p *rhizome.Principal, what string) error {
	if p == nil || !p.Admin {
		return rhizome.Errorf(rhizome.EForbidden, "only admins may %s", what)
	}
	return nil
}

// auditFilter reads the query parameters of the audit routes.
func auditFilter(r *http.Request, now time.Time) (audit.Filter, error) {
	q := r.URL.Query()
	f := audit.Filter{ProductID: q.Get("product"), Principal: q.Get("principal"), Action: q.Get("action"),
		Decision: q.Get("decision"), Cursor: q.Get("cursor")}
	var problems []rhizome.Problem
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(t.name); v != "" {
			at, err := parseSince(v, now)
			if err != nil {
				problems = append(problems, rhizome.Problem{Path: t.name, Message: err.Error(), Hint: `an RFC 3339 time or a duration back from now, e.g. 2026-11-01T00:00:00Z or 24h`})
				continue
			}
			*t.dst = at
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			problems = append(problems, rhizome.Problem{Path: "limit", Message: "not a page size", Hint: "1..1000"})
		}
		f.Limit = n
	}
	if len(problems) > 0 {
		return f, rhizome.Invalid("bad audit query", problems...)
	}
	return f, nil
}

// parseSince reads an RFC 3339 time, or a Go duration counted back from
// now.
func parseSince(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return time.Time{}, rhizome.Errorf(rhizome.EInvalid, "%q is neither a time nor a duration", v)
	}
	return now.Add(-d), nil
}

// handleAudit serves GET /audit: admins see every entry; others the
// entries about a product they operate (product=...) or their own.
func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request) {
	if err := s.needAudit(); err != nil {
		s.writeError(w, r, err)
		return
	}
	f, err := auditFilter(r, s.clock.Now())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	p := principalOf(r.Context())
	if !p.Admin {
		switch {
		case f.ProductID != "":
			if err := s.catalog.MayOperate(r.Context(), p, f.ProductID); err != nil {
				s.writeError(w, r, rhizome.Errorf(rhizome.EForbidden, "only admins and the owners of %s read its audit entries", f.ProductID))
				return
			}
		case f.Principal != "" && f.Principal != p.ID:
			s.writeError(w, r, rhizome.Errorf(rhizome.EForbidden, "only admins read other principals' audit entries").WithHint("ask with product=<a product you own>, or for your own"))
			return
		default:
			f.Principal = p.ID
		}
	}
	page, err := s.audit.Query(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// handleAuditExport serves GET /audit/export: the entries as JSON lines,
// oldest first (admins).
func (s *Server) handleAuditExport(w http.ResponseWriter, r *http.Request) {
	if err := s.needAudit(); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := needAdmin(principalOf(r.Context()), "export the audit log"); err != nil {
		s.writeError(w, r, err)
		return
	}
	f, err := auditFilter(r, s.clock.Now())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Content-Disposition", `attachment; filename="audit.jsonl"`)
	n, err := s.audit.Export(r.Context(), w, f)
	if err != nil {
		// The status is sent: say it in the log.
		s.logger.Error("audit export failed", "written", n, "err", err)
	}
}

// handleAuditVerify serves POST /audit/verify (admins).
func (s *Server) handleAuditVerify(w http.ResponseWriter, r *http.Request) {
	if err := s.needAudit(); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := needAdmin(principalOf(r.Context()), "verify the audit log"); err != nil {
		s.writeError(w, r, err)
		return
	}
	v, err := s.audit.Verify(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}
