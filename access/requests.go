package access

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/audit"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/spec"
)

// Record collections.
const (
	CollectionRequest = "access.request"
	CollectionGrant   = "access.grant"
)

// States of requests and grants. Expired is never stored: a grant (and its
// request) is expired once its expiry has passed, which Decide and the
// lists evaluate at the time they run.
const (
	StatePending  = "pending"
	StateApproved = "approved"
	StateDenied   = "denied"
	StateActive   = "active" // a grant in force
	StateRevoked  = "revoked"
	StateExpired  = "expired"
)

// Approver roles recorded on grants.
const (
	ApproverAdmin = "admin"
	ApproverAuto  = "auto"
)

// AccessRequest is a consumer's request to read a product.
type AccessRequest struct {
	ID        string     `json:"id"`
	ProductID string     `json:"product_id"`
	Columns   []string   `json:"columns,omitempty"`
	Purpose   string     `json:"purpose"`
	Duration  string     `json:"duration,omitempty"`
	Requester string     `json:"requester"`
	State     string     `json:"state"`
	DecidedBy string     `json:"decided_by,omitempty"`
	Reason    string     `json:"reason,omitempty"`
	RowFilter string     `json:"row_filter,omitempty"`
	GrantID   string     `json:"grant_id,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	DecidedAt *time.Time `json:"decided_at,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// Grant lets a principal read a product.
type Grant struct {
	ID        string   `json:"id"`
	RequestID string   `json:"request_id,omitempty"`
	ProductID string   `json:"product_id"`
	Principal string   `json:"principal"`
	Columns   []string `json:"columns,omitempty"` // empty: every column
	Purpose   string   `json:"purpose"`
	RowFilter string   `json:"row_filter,omitempty"`
	// Clearance is the level the grant reads up to: restricted when the
	// product's steward approved it with a purpose and an expiry, else
	// confidential.
	Clearance    string     `json:"clearance"`
	ApprovedBy   string     `json:"approved_by"`
	ApproverRole string     `json:"approver_role"` // steward, technical_owner, business_owner, admin or auto
	State        string     `json:"state"`         // active, revoked, or (shown) expired
	CreatedAt    time.Time  `json:"created_at"`
	ExpiresAt    *time.Time `json:"expires_at,omitempty"`
	RevokedAt    *time.Time `json:"revoked_at,omitempty"`
	RevokedBy    string     `json:"revoked_by,omitempty"`
	Reason       string     `json:"reason,omitempty"`
}

func (g *Grant) activeAt(now time.Time) bool {
	return g.State == StateActive && (g.ExpiresAt == nil || now.Before(*g.ExpiresAt))
}

func randomID(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// ---- grants in memory ----

type grantSet struct {
	grants   []Grant // active (stored state), newest first
	loadedAt time.Time
}

// activeGrant returns principal's newest grant in force on a product, or
// else its newest expired one (for the reason of a denial).
func (s *Service) activeGrant(ctx context.Context, productID, principal string, now time.Time) (active, expired *Grant, err error) {
	s.mu.Lock()
	gs := s.grants[productID]
	s.mu.Unlock()
	if gs == nil || !s.fresh(gs.loadedAt) {
		gs = &grantSet{loadedAt: time.Now()}
		recs, err := s.store.ListRecords(ctx, metastore.RecordQuery{Collection: CollectionGrant, ProductID: productID, State: StateActive, Desc: true, Limit: 10000})
		if err != nil {
			return nil, nil, err
		}
		for _, r := range recs {
			var g Grant
			if err := json.Unmarshal(r.Body, &g); err != nil {
				return nil, nil, rhizome.Wrap(err, "reading grant %s", r.ID)
			}
			gs.grants = append(gs.grants, g)
		}
		s.mu.Lock()
		s.grants[productID] = gs
		s.mu.Unlock()
	}
	var lapsed *Grant
	for i := range gs.grants {
		g := &gs.grants[i]
		if g.Principal != principal {
			continue
		}
		if g.activeAt(now) {
			return g, nil, nil
		}
		if lapsed == nil {
			lapsed = g
		}
	}
	return nil, lapsed, nil
}

// ---- who may approve ----

// approverRole returns the role under which actor may decide requests for
// a product: steward, technical_owner or business_owner of its owner
// team, or admin; EForbidden otherwise.
func approverRole(pi *productInfo, actor Subject) (string, error) {
	if pi.owners != nil {
		for _, role := range []string{rhizome.RoleSteward, rhizome.RoleTechnicalOwner, rhizome.RoleBusinessOwner} {
			if pi.owners.HasRole(actor.ID, role) {
				return role, nil
			}
		}
	}
	if actor.Admin {
		return ApproverAdmin, nil
	}
	return "", rhizome.Errorf(rhizome.EForbidden, "%s may not decide access to %s: only its owner team's owners and stewards, or admins, may", actor.ID, pi.id).
		WithHint("ask a technical_owner, business_owner or steward of team %s", pi.ownerTeam)
}

func (pi *productInfo) stewards() []string {
	var out []string
	if pi.owners != nil {
		for _, m := range pi.owners.Members {
			if slices.Contains(m.Roles, rhizome.RoleSteward) {
				out = append(out, m.Principal)
			}
		}
	}
	return out
}

// ---- requests ----

// NewRequest is what a consumer asks for.
type NewRequest struct {
	ProductID string   `json:"product_id"`
	Columns   []string `json:"columns,omitempty"`
	Purpose   string   `json:"purpose"`
	Duration  string   `json:"duration,omitempty"`
}

// parseDuration reads a grant duration against the limits.
func (s *Service) parseDuration(field, v string, restricted bool) (time.Duration, error) {
	d, err := spec.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, rhizome.Invalid("bad duration", rhizome.Problem{Path: field, Message: fmt.Sprintf("%q is not a duration", v), Hint: "e.g. 30d, 2 weeks, 12h"})
	}
	max := s.opt.MaxDuration
	if restricted && s.opt.MaxRestrictedDuration < max {
		max = s.opt.MaxRestrictedDuration
	}
	if d > max {
		return 0, rhizome.Invalid("duration too long", rhizome.Problem{Path: field, Message: fmt.Sprintf("%s is longer than the %s allowed", v, days(max)), Hint: "ask for " + days(max) + " or less"})
	}
	return d, nil
}

func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

func (pi *productInfo) checkColumns(field string, cols []string) error {
	if len(pi.columns) == 0 {
		return nil
	}
	var problems []rhizome.Problem
	for i, c := range cols {
		if pi.byName[c] == nil {
			var names []string
			for _, cm := range pi.columns {
				names = append(names, cm.name)
			}
			problems = append(problems, rhizome.Problem{Path: fmt.Sprintf("%s[%d]", field, i), Message: fmt.Sprintf("%s has no column %q", pi.id, c), Hint: "its columns: " + strings.Join(names, ", ")})
		}
	}
	if len(problems) > 0 {
		return rhizome.Invalid("unknown columns", problems...)
	}
	return nil
}

// RequestAccess files a request by actor. When one of the product's
// auto-approval rules matches, it comes back approved, with its grant.
func (s *Service) RequestAccess(ctx context.Context, actor Subject, in NewRequest) (*AccessRequest, error) {
	pi, err := s.product(ctx, in.ProductID)
	if err != nil {
		return nil, err
	}
	restricted := pi.level == rhizome.SensitivityRestricted
	var problems []rhizome.Problem
	if strings.TrimSpace(in.Purpose) == "" {
		problems = append(problems, rhizome.Problem{Path: "purpose", Message: "a request states its purpose", Hint: `e.g. --purpose "churn model for Q3"`})
	}
	if in.Duration == "" && restricted {
		problems = append(problems, rhizome.Problem{Path: "duration", Message: in.ProductID + " is restricted: a request states how long it needs access", Hint: "e.g. --duration 30d (at most " + days(s.opt.MaxRestrictedDuration) + ")"})
	}
	if len(problems) > 0 {
		return nil, rhizome.Invalid("incomplete access request", problems...)
	}
	if in.Duration != "" {
		if _, err := s.parseDuration("duration", in.Duration, restricted); err != nil {
			return nil, err
		}
	}
	if err := pi.checkColumns("columns", in.Columns); err != nil {
		return nil, err
	}
	if actor.Admin || slices.Contains(actor.Teams, pi.ownerTeam) {
		return nil, rhizome.Errorf(rhizome.EConflict, "%s already reads %s (owner team or admin); no request needed", actor.ID, pi.id)
	}
	now := s.clock.Now()
	req := &AccessRequest{ID: s.opt.NewID("ar_"), ProductID: pi.id, Columns: in.Columns, Purpose: strings.TrimSpace(in.Purpose),
		Duration: in.Duration, Requester: actor.ID, State: StatePending, CreatedAt: now}
	err = s.store.Update(ctx, func(tx metastore.Tx) error {
		pending, err := tx.ListRecords(ctx, metastore.RecordQuery{Collection: CollectionRequest, ProductID: pi.id, Subject: actor.ID, State: StatePending, Limit: 1})
		if err != nil {
			return err
		}
		if len(pending) > 0 {
			return rhizome.Errorf(rhizome.EConflict, "%s already has a pending request for %s: %s", actor.ID, pi.id, pending[0].ID).
				WithHint("wait for its decision, or ask an owner of %s", pi.ownerTeam)
		}
		return tx.InsertRecord(ctx, requestRecord(req))
	})
	if err != nil {
		return nil, err
	}
	s.record(ctx, audit.Entry{At: now, Actor: actor.ID, Action: "access.request", ProductID: pi.id, Columns: req.Columns, Decision: audit.Allow,
		Reason: req.Purpose, Details: map[string]any{"request_id": req.ID, "duration": req.Duration}})
	if rule := pi.autoRule(actor, in.Duration, s); rule != nil && !restricted {
		a := Approval{RowFilter: rule.RowFilter, Reason: "auto-approved by the product's access.auto_approve rule"}
		if in.Duration == "" && rule.MaxDuration != "" {
			a.Duration = rule.MaxDuration
		}
		done, _, err := s.decide(ctx, Subject{ID: ApproverAuto}, ApproverAuto, pi, req.ID, a)
		if err != nil {
			// A rule that cannot approve leaves the request to a person.
			s.logger.Warn("access: auto-approval failed; the request waits", "product", pi.id, "request", req.ID, "err", err)
			return req, nil
		}
		return done, nil
	}
	return req, nil
}

// autoRule returns the first auto-approval rule that matches a request.
func (pi *productInfo) autoRule(actor Subject, duration string, s *Service) *AutoApprove {
	for i := range pi.autoApprove {
		r := &pi.autoApprove[i]
		if r.Principal != "" && r.Principal != actor.ID || r.Team != "" && !slices.Contains(actor.Teams, r.Team) || r.Team == "" && r.Principal == "" {
			continue
		}
		if r.MaxDuration != "" {
			max, err := spec.ParseDuration(r.MaxDuration)
			if err != nil || max <= 0 {
				s.logger.Warn("access: auto-approval rule has a bad max_duration; not used", "product", pi.id, "max_duration", r.MaxDuration)
				continue
			}
			if d, err := spec.ParseDuration(duration); duration != "" && (err != nil || d > max) {
				continue
			}
		}
		if r.RowFilter != "" && CheckExpr(r.RowFilter) != nil {
			s.logger.Warn("access: auto-approval rule has a bad row filter; not used", "product", pi.id)
			continue
		}
		return r
	}
	return nil
}

// Approval is how an approver grants a request; every field is optional.
type Approval struct {
	// Duration (or Expires) overrides the request's duration.
	Duration string     `json:"duration,omitempty"`
	Expires  *time.Time `json:"expires,omitempty"`
	// RowFilter limits the rows the grantee sees (a SQL boolean
	// expression over the product's columns, e.g. region = 'EU').
	RowFilter string `json:"row_filter,omitempty"`
	// Columns limits the columns (default: the request's, else all).
	Columns []string `json:"columns,omitempty"`
	Reason  string   `json:"reason,omitempty"`
}

// Approve grants a pending request. Owners (technical_owner,
// business_owner) and stewards of the product's owner team, and admins,
// may; a restricted product needs its steward, a purpose and an expiry.
func (s *Service) Approve(ctx context.Context, actor Subject, id string, a Approval) (*AccessRequest, *Grant, error) {
	req, err := s.getRequest(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	pi, err := s.product(ctx, req.ProductID)
	if err != nil {
		return nil, nil, err
	}
	role, err := approverRole(pi, actor)
	if err != nil {
		return nil, nil, err
	}
	return s.decide(ctx, actor, role, pi, id, a)
}

// decide approves request id as actor in role.
func (s *Service) decide(ctx context.Context, actor Subject, role string, pi *productInfo, id string, a Approval) (*AccessRequest, *Grant, error) {
	now := s.clock.Now()
	restricted := pi.level == rhizome.SensitivityRestricted
	var problems []rhizome.Problem
	if a.RowFilter != "" {
		if err := CheckExpr(a.RowFilter); err != nil {
			problems = append(problems, rhizome.Problem{Path: "row_filter", Message: err.Error(), Hint: "a boolean expression over the product's columns, e.g. region = 'EU'"})
		}
	}
	if err := pi.checkColumns("columns", a.Columns); err != nil {
		problems = append(problems, rhizome.ProblemsOf(err)...)
	}
	if len(problems) > 0 {
		return nil, nil, rhizome.Invalid("bad approval", problems...)
	}
	var out *AccessRequest
	var grant *Grant
	err := s.store.Update(ctx, func(tx metastore.Tx) error {
		rec, err := tx.GetRecord(ctx, CollectionRequest, id)
		if err != nil {
			return notFoundRequest(id, err)
		}
		var req AccessRequest
		if err := json.Unmarshal(rec.Body, &req); err != nil {
			return rhizome.Wrap(err, "reading request %s", id)
		}
		if req.State != StatePending {
			return rhizome.Errorf(rhizome.EConflict, "request %s is %s, not pending", id, req.State)
		}
		if req.Requester == actor.ID {
			return rhizome.Errorf(rhizome.EForbidden, "%s may not approve its own request", actor.ID)
		}
		var expires *time.Time
		switch {
		case a.Expires != nil:
			if !a.Expires.After(now) {
				return rhizome.Invalid("bad approval", rhizome.Problem{Path: "expires", Message: "the expiry is in the past"})
			}
			t := a.Expires.UTC()
			if _, err := s.parseDuration("expires", t.Sub(now).String(), restricted); err != nil {
				return err
			}
			expires = &t
		case a.Duration != "" || req.Duration != "":
			field, v := "duration", a.Duration
			if v == "" {
				field, v = "request.duration", req.Duration
			}
			d, err := s.parseDuration(field, v, restricted)
			if err != nil {
				return err
			}
			t := now.Add(d)
			expires = &t
		}
		clearance := rhizome.SensitivityConfidential
		if role == rhizome.RoleSteward && req.Purpose != "" && expires != nil {
			clearance = rhizome.SensitivityRestricted
		}
		if restricted && clearance != rhizome.SensitivityRestricted {
			switch {
			case role != rhizome.RoleSteward:
				return rhizome.Errorf(rhizome.EForbidden, "%s is restricted: only its steward may approve access, and %s is not one", pi.id, actor.ID).
					WithHint("ask %s", strings.Join(orNone(pi.stewards()), " or "))
			default:
				return rhizome.Invalid("a restricted grant needs a purpose and an expiry", rhizome.Problem{Path: "duration", Message: "no expiry", Hint: "approve with --duration, e.g. 30d"})
			}
		}
		cols := a.Columns
		if len(cols) == 0 {
			cols = req.Columns
		}
		g := &Grant{ID: s.opt.NewID("gr_"), RequestID: req.ID, ProductID: req.ProductID, Principal: req.Requester, Columns: cols,
			Purpose: req.Purpose, RowFilter: a.RowFilter, Clearance: clearance, ApprovedBy: actor.ID, ApproverRole: role,
			State: StateActive, CreatedAt: now, ExpiresAt: expires, Reason: a.Reason}
		req.State, req.DecidedBy, req.DecidedAt, req.Reason = StateApproved, actor.ID, &now, a.Reason
		req.RowFilter, req.GrantID, req.ExpiresAt = a.RowFilter, g.ID, expires
		if err := tx.PutRecord(ctx, requestRecord(&req)); err != nil {
			return err
		}
		out, grant = &req, g
		return tx.InsertRecord(ctx, grantRecord(g))
	})
	if err != nil {
		return nil, nil, err
	}
	s.changed(pi.id)
	s.record(ctx, audit.Entry{At: now, Actor: actor.ID, Action: "access.approve", ProductID: pi.id, Columns: grant.Columns, Decision: audit.Allow,
		Reason: a.Reason, RowFilter: grant.RowFilter,
		Details: map[string]any{"request_id": id, "grant_id": grant.ID, "principal": grant.Principal, "role": role, "expires": grant.ExpiresAt}})
	return out, grant, nil
}

func orNone(ss []string) []string {
	if len(ss) == 0 {
		return []string{"an admin to name a steward in the owner team"}
	}
	return ss
}

func notFoundRequest(id string, err error) error {
	if rhizome.Code(err) == rhizome.ENotFound {
		return rhizome.Errorf(rhizome.ENotFound, "no access request %q", id).WithHint("rhizome access list shows them")
	}
	return err
}

// Deny refuses a pending request, with a reason.
func (s *Service) Deny(ctx context.Context, actor Subject, id, reason string) (*AccessRequest, error) {
	if strings.TrimSpace(reason) == "" {
		return nil, rhizome.Invalid("a denial gives its reason", rhizome.Problem{Path: "reason", Message: "empty", Hint: `e.g. --reason "use dp.customer.360 instead"`})
	}
	req, err := s.getRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	pi, err := s.product(ctx, req.ProductID)
	if err != nil {
		return nil, err
	}
	if _, err := approverRole(pi, actor); err != nil {
		return nil, err
	}
	now := s.clock.Now()
	err = s.store.Update(ctx, func(tx metastore.Tx) error {
		rec, err := tx.GetRecord(ctx, CollectionRequest, id)
		if err != nil {
			return notFoundRequest(id, err)
		}
		if err := json.Unmarshal(rec.Body, req); err != nil {
			return err
		}
		if req.State != StatePending {
			return rhizome.Errorf(rhizome.EConflict, "request %s is %s, not pending", id, req.State)
		}
		req.State, req.DecidedBy, req.DecidedAt, req.Reason = StateDenied, actor.ID, &now, reason
		return tx.PutRecord(ctx, requestRecord(req))
	})
	if err != nil {
		return nil, err
	}
	s.changed(pi.id)
	s.record(ctx, audit.Entry{At: now, Actor: actor.ID, Action: "access.deny", ProductID: pi.id, Decision: audit.Deny, Reason: reason,
		Details: map[string]any{"request_id": id, "principal": req.Requester}})
	return req, nil
}

// Revoke ends a grant at once. The product's approvers, admins and the
// grantee may.
func (s *Service) Revoke(ctx context.Context, actor Subject, grantID, reason string) (*Grant, error) {
	rec, err := s.store.GetRecord(ctx, CollectionGrant, grantID)
	if err != nil {
		if rhizome.Code(err) == rhizome.ENotFound {
			return nil, rhizome.Errorf(rhizome.ENotFound, "no grant %q", grantID).WithHint("rhizome access list --grants shows them")
		}
		return nil, err
	}
	var g Grant
	if err := json.Unmarshal(rec.Body, &g); err != nil {
		return nil, rhizome.Wrap(err, "reading grant %s", grantID)
	}
	pi, err := s.product(ctx, g.ProductID)
	if err != nil {
		return nil, err
	}
	if g.Principal != actor.ID {
		if _, err := approverRole(pi, actor); err != nil {
			return nil, err
		}
	}
	now := s.clock.Now()
	err = s.store.Update(ctx, func(tx metastore.Tx) error {
		rec, err := tx.GetRecord(ctx, CollectionGrant, grantID)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(rec.Body, &g); err != nil {
			return err
		}
		if g.State == StateRevoked {
			return rhizome.Errorf(rhizome.EConflict, "grant %s was revoked already", grantID)
		}
		g.State, g.RevokedAt, g.RevokedBy = StateRevoked, &now, actor.ID
		if reason != "" {
			g.Reason = reason
		}
		if err := tx.PutRecord(ctx, grantRecord(&g)); err != nil {
			return err
		}
		if g.RequestID == "" {
			return nil
		}
		rrec, err := tx.GetRecord(ctx, CollectionRequest, g.RequestID)
		if rhizome.Code(err) == rhizome.ENotFound {
			return nil
		} else if err != nil {
			return err
		}
		var req AccessRequest
		if err := json.Unmarshal(rrec.Body, &req); err != nil {
			return err
		}
		req.State = StateRevoked
		return tx.PutRecord(ctx, requestRecord(&req))
	})
	if err != nil {
		return nil, err
	}
	s.changed(g.ProductID)
	s.record(ctx, audit.Entry{At: now, Actor: actor.ID, Action: "access.revoke", ProductID: g.ProductID, Decision: audit.Allow, Reason: reason,
		Details: map[string]any{"grant_id": g.ID, "principal": g.Principal}})
	return &g, nil
}

func (s *Service) getRequest(ctx context.Context, id string) (*AccessRequest, error) {
	rec, err := s.store.GetRecord(ctx, CollectionRequest, id)
	if err != nil {
		return nil, notFoundRequest(id, err)
	}
	var req AccessRequest
	if err := json.Unmarshal(rec.Body, &req); err != nil {
		return nil, rhizome.Wrap(err, "reading request %s", id)
	}
	return &req, nil
}

// GetRequest returns one request, with its state as of now, if actor may
// see it (its requester, the product's approvers, admins).
func (s *Service) GetRequest(ctx context.Context, actor Subject, id string) (*AccessRequest, error) {
	req, err := s.getRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	if !s.maySee(ctx, actor, req.ProductID, req.Requester) {
		return nil, rhizome.Errorf(rhizome.ENotFound, "no access request %q", id)
	}
	req.State = requestState(req, s.clock.Now())
	return req, nil
}

func requestState(r *AccessRequest, now time.Time) string {
	if r.State == StateApproved && r.ExpiresAt != nil && !now.Before(*r.ExpiresAt) {
		return StateExpired
	}
	return r.State
}

func grantState(g *Grant, now time.Time) string {
	if g.State == StateActive && g.ExpiresAt != nil && !now.Before(*g.ExpiresAt) {
		return StateExpired
	}
	return g.State
}

// maySee: the principal concerned, admins, and members of the product's
// owner team see requests and grants.
func (s *Service) maySee(ctx context.Context, actor Subject, productID, principal string) bool {
	if actor.Admin || actor.ID == principal {
		return true
	}
	pi, err := s.product(ctx, productID)
	return err == nil && pi.ownerTeam != "" && slices.Contains(actor.Teams, pi.ownerTeam)
}

// RequestFilter selects requests.
type RequestFilter struct {
	ProductID string
	State     string // pending, approved, denied, revoked, expired
	Mine      bool   // only actor's own requests
}

// ListRequests returns the requests actor may see, newest first.
func (s *Service) ListRequests(ctx context.Context, actor Subject, f RequestFilter) ([]AccessRequest, error) {
	q := metastore.RecordQuery{Collection: CollectionRequest, ProductID: f.ProductID, Desc: true, Limit: 10000}
	if f.Mine {
		q.Subject = actor.ID
	}
	if f.State == StatePending || f.State == StateDenied {
		q.State = f.State
	}
	recs, err := s.store.ListRecords(ctx, q)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	out := []AccessRequest{}
	for _, r := range recs {
		var req AccessRequest
		if err := json.Unmarshal(r.Body, &req); err != nil {
			return nil, rhizome.Wrap(err, "reading request %s", r.ID)
		}
		req.State = requestState(&req, now)
		if f.State != "" && req.State != f.State || !s.maySee(ctx, actor, req.ProductID, req.Requester) {
			continue
		}
		out = append(out, req)
	}
	return out, nil
}

// GrantFilter selects grants.
type GrantFilter struct {
	ProductID string
	Principal string
	State     string // active, revoked, expired
}

// ListGrants returns the grants actor may see, newest first.
func (s *Service) ListGrants(ctx context.Context, actor Subject, f GrantFilter) ([]Grant, error) {
	q := metastore.RecordQuery{Collection: CollectionGrant, ProductID: f.ProductID, Subject: f.Principal, Desc: true, Limit: 10000}
	if f.State == StateRevoked {
		q.State = f.State
	}
	recs, err := s.store.ListRecords(ctx, q)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	out := []Grant{}
	for _, r := range recs {
		var g Grant
		if err := json.Unmarshal(r.Body, &g); err != nil {
			return nil, rhizome.Wrap(err, "reading grant %s", r.ID)
		}
		g.State = grantState(&g, now)
		if f.State != "" && g.State != f.State || !s.maySee(ctx, actor, g.ProductID, g.Principal) {
			continue
		}
		out = append(out, g)
	}
	return out, nil
}

// Explain returns the decision for principal (actor itself when empty)
// reading a product. Explaining for someone else needs an admin or a
// member of the product's owner team.
func (s *Service) Explain(ctx context.Context, actor Subject, productID, principal, via string) (*Decision, error) {
	subj := actor
	if principal != "" && principal != actor.ID {
		pi, err := s.product(ctx, productID)
		if err != nil {
			return nil, err
		}
		if !actor.Admin && !slices.Contains(actor.Teams, pi.ownerTeam) {
			return nil, rhizome.Errorf(rhizome.EForbidden, "%s may not explain access to %s for others", actor.ID, productID).
				WithHint("admins and members of team %s may; drop --as to see your own", pi.ownerTeam)
		}
		subj = Subject{ID: principal}
		if p, err := s.store.GetPrincipal(ctx, principal); err == nil {
			subj.Admin = p.Admin
		} else if rhizome.Code(err) != rhizome.ENotFound {
			return nil, err
		}
		teams, err := s.store.TeamsOf(ctx, principal)
		if err != nil {
			return nil, err
		}
		subj.Teams = teams
	}
	if via == "" {
		via = ViaREST
	}
	return s.Decide(ctx, Request{Subject: subj, ProductID: productID, Via: via})
}

func requestRecord(r *AccessRequest) *metastore.Record {
	body, _ := json.Marshal(r)
	return &metastore.Record{Collection: CollectionRequest, ID: r.ID, ProductID: r.ProductID, Subject: r.Requester, State: r.State, At: r.CreatedAt, Body: body}
}

func grantRecord(g *Grant) *metastore.Record {
	body, _ := json.Marshal(g)
	return &metastore.Record{Collection: CollectionGrant, ID: g.ID, ProductID: g.ProductID, Subject: g.Principal, State: g.State, At: g.CreatedAt, Body: body}
}

func (s *Service) record(ctx context.Context, e audit.Entry) {
	if s.audit == nil {
		return
	}
	if err := s.audit.Record(ctx, e); err != nil {
		s.logger.Error("access: audit entry not recorded", "action", e.Action, "actor", e.Actor, "err", err)
	}
}
