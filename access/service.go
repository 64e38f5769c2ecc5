package access

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/audit"
	"github.com/rhizome-mesh/rhizome/metastore"
)

// Environments. Anything but production (or prod) is non-production, where
// PII is masked for everyone.
const (
	EnvProduction = "production"
)

// Options configures a Service; zero values pick defaults.
type Options struct {
	Store  metastore.Store
	Clock  rhizome.Clock
	Logger *slog.Logger
	// Environment is the deployment's environment (rhizome up
	// --environment; default production). It alone decides the
	// non-production PII rule: the labels.environment of an
	// infrastructure manifest is the product team's description, not a
	// setting that may lift masking.
	Environment string
	// Audit records requests, approvals, denials and revocations; nil
	// records nothing.
	Audit audit.Recorder
	// MaxDuration bounds every grant (default 365 days).
	MaxDuration time.Duration
	// MaxRestrictedDuration bounds grants on restricted products, which
	// must expire (default 90 days).
	MaxRestrictedDuration time.Duration
	// CacheTTL is how long manifests and grants read from the store are
	// trusted before they are read again (default 2s). This process drops
	// them at once when it applies manifests or changes grants; the TTL
	// bounds how late it sees changes made by other processes sharing a
	// Postgres metastore.
	CacheTTL time.Duration
	// NewID makes request and grant ids (default random).
	NewID func(prefix string) string
}

// Service is the policy decision point and the store of access requests
// and grants. It is safe for concurrent use.
type Service struct {
	store  metastore.Store
	clock  rhizome.Clock
	logger *slog.Logger
	env    string
	audit  audit.Recorder
	opt    Options

	gen atomic.Uint64

	mu       sync.Mutex
	products map[string]*productInfo
	policies *policySet
	grants   map[string]*grantSet // by product
	subs     map[int]func(productID string)
	nextSub  int
}

// New returns a Service over opt.Store.
func New(opt Options) *Service {
	if opt.Clock == nil {
		opt.Clock = rhizome.SystemClock{}
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Environment == "" {
		opt.Environment = EnvProduction
	}
	if opt.MaxDuration <= 0 {
		opt.MaxDuration = 365 * 24 * time.Hour
	}
	if opt.MaxRestrictedDuration <= 0 {
		opt.MaxRestrictedDuration = 90 * 24 * time.Hour
	}
	if opt.CacheTTL == 0 {
		opt.CacheTTL = 2 * time.Second
	}
	if opt.NewID == nil {
		opt.NewID = randomID
	}
	s := &Service{store: opt.Store, clock: opt.Clock, logger: opt.Logger, env: strings.ToLower(strings.TrimSpace(opt.Environment)),
		audit: opt.Audit, opt: opt, products: map[string]*productInfo{}, grants: map[string]*grantSet{}, subs: map[int]func(string){}}
	return s
}

// Environment is the environment the service decides for.
func (s *Service) Environment() string { return s.env }

// NonProduction reports whether PII is masked for everyone.
func (s *Service) NonProduction() bool { return s.env != EnvProduction && s.env != "prod" }

// Generation increases whenever a decision may have changed: a grant was
// approved, revoked or denied, or manifests were applied. A caller that
// caches decisions (an open SQL session) decides again when it moved.
func (s *Service) Generation() uint64 { return s.gen.Load() }

// Subscribe calls fn after every change that may alter decisions: with
// the product whose grants changed, or "" when manifests changed (any
// product). fn must not block. The returned func unsubscribes.
func (s *Service) Subscribe(fn func(productID string)) (cancel func()) {
	s.mu.Lock()
	id := s.nextSub
	s.nextSub++
	s.subs[id] = fn
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.subs, id)
		s.mu.Unlock()
	}
}

// Invalidate drops every cached manifest and grant; the catalog calls it
// after each apply (server wires catalog.OnApplied to it).
func (s *Service) Invalidate() {
	s.mu.Lock()
	s.products = map[string]*productInfo{}
	s.policies = nil
	s.grants = map[string]*grantSet{}
	s.mu.Unlock()
	s.changed("")
}

// changed bumps the generation and tells subscribers.
func (s *Service) changed(productID string) {
	s.gen.Add(1)
	s.mu.Lock()
	if productID != "" {
		delete(s.grants, productID)
	}
	fns := make([]func(string), 0, len(s.subs))
	for _, fn := range s.subs {
		fns = append(fns, fn)
	}
	s.mu.Unlock()
	for _, fn := range fns {
		fn(productID)
	}
}

// fresh reports whether something loaded at t may still be used.
func (s *Service) fresh(t time.Time) bool {
	return s.opt.CacheTTL > 0 && time.Since(t) < s.opt.CacheTTL
}

// ---- what Decide knows of a product ----

// AutoApprove is one auto-approval rule of a product (its manifest's
// access.auto_approve): requests from members of Team (or from Principal)
// are approved at once, for at most MaxDuration, with RowFilter.
type AutoApprove struct {
	Team        string `json:"team,omitempty"`
	Principal   string `json:"principal,omitempty"`
	MaxDuration string `json:"max_duration,omitempty"`
	RowFilter   string `json:"row_filter,omitempty"`
}

// productDoc is a product manifest with the fields access reads that the
// root vocabulary does not type.
type productDoc struct {
	rhizome.DataProduct
	Access struct {
		AutoApprove []AutoApprove `json:"auto_approve,omitempty"`
	} `json:"access"`
}

type colMeta struct {
	name           string
	classification string
	level          string // classification when it is a sensitivity level
	typ            string
	tags           []string
	pii            bool
}

type productInfo struct {
	id, level, ownerTeam, domain string
	owners                       *rhizome.Team // nil when the team is missing
	columns                      []*colMeta
	byName                       map[string]*colMeta
	piiMasking                   map[string]string
	autoApprove                  []AutoApprove
	rules                        []maskRule
	piiPolicy                    string
	loadedAt                     time.Time
}

var typeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_ ]*(\([0-9, ]+\))?(\[\])?$`)

func (s *Service) product(ctx context.Context, id string) (*productInfo, error) {
	s.mu.Lock()
	pi := s.products[id]
	s.mu.Unlock()
	if pi != nil && s.fresh(pi.loadedAt) {
		return pi, nil
	}
	pi, err := s.loadProduct(ctx, id)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.products[id] = pi
	s.mu.Unlock()
	return pi, nil
}

func (s *Service) loadProduct(ctx context.Context, id string) (*productInfo, error) {
	now := time.Now()
	obj, err := s.store.Get(ctx, rhizome.KindDataProduct, id)
	if err != nil {
		if rhizome.Code(err) == rhizome.ENotFound {
			return nil, rhizome.Errorf(rhizome.ENotFound, "no data product %q", id).WithHint("rhizome get products lists them")
		}
		return nil, err
	}
	var dp productDoc
	if err := json.Unmarshal(obj.Body, &dp); err != nil {
		return nil, rhizome.Wrap(err, "reading product %s", id)
	}
	pi := &productInfo{id: id, level: dp.SensitivityLevel, ownerTeam: dp.OwnerTeam, domain: dp.Domain,
		byName: map[string]*colMeta{}, piiMasking: map[string]string{}, autoApprove: dp.Access.AutoApprove, loadedAt: now}
	if rank(pi.level) < 0 {
		// An unknown level is read as the strictest one.
		pi.level = rhizome.SensitivityRestricted
	}
	if pm, ok := dp.CustomProperties["pii_masking"].(map[string]any); ok {
		for col, m := range pm {
			if ms, ok := m.(string); ok {
				pi.piiMasking[col] = strings.ToLower(ms)
			}
		}
	}
	if dp.OwnerTeam != "" {
		if tobj, err := s.store.Get(ctx, rhizome.KindTeam, dp.OwnerTeam); err == nil {
			var t rhizome.Team
			if json.Unmarshal(tobj.Body, &t) == nil {
				pi.owners = &t
			}
		} else if rhizome.Code(err) != rhizome.ENotFound {
			return nil, err
		}
	}
	if dp.Contract != "" {
		if cobj, err := s.store.Get(ctx, rhizome.KindDataContract, dp.Contract); err == nil {
			pi.readContract(cobj.Body, outputObject(&dp.DataProduct))
		} else if rhizome.Code(err) != rhizome.ENotFound {
			return nil, err
		}
	}
	for col := range pi.piiMasking {
		if c := pi.byName[col]; c != nil {
			c.pii = true
		}
	}
	ps, err := s.policySet(ctx)
	if err != nil {
		return nil, err
	}
	pi.rules, pi.piiPolicy = ps.forDomain(pi.domain)
	return pi, nil
}

// outputObject names the table a product publishes: its pipeline's output
// model, else its first table port.
func outputObject(dp *rhizome.DataProduct) string {
	if dp.Pipeline != nil {
		if m := dp.Pipeline.OutputModel(); m != "" {
			return m
		}
	}
	for _, p := range dp.OutputPorts {
		if p.Type == "table" {
			return p.Name
		}
	}
	return ""
}

type odcsObject struct {
	Name         string         `json:"name"`
	PhysicalName string         `json:"physicalName"`
	Properties   []odcsProperty `json:"properties"`
}

type odcsProperty struct {
	Name           string   `json:"name"`
	PhysicalName   string   `json:"physicalName"`
	PhysicalType   string   `json:"physicalType"`
	LogicalType    string   `json:"logicalType"`
	Classification string   `json:"classification"`
	Tags           []string `json:"tags"`
}

// readContract takes the columns of the contract's object for the
// product's output (the only object, or the one named like the output).
func (pi *productInfo) readContract(body []byte, output string) {
	var c struct {
		Schema []odcsObject `json:"schema"`
	}
	if json.Unmarshal(body, &c) != nil || len(c.Schema) == 0 {
		return
	}
	obj := c.Schema[0]
	for _, o := range c.Schema {
		if output != "" && (o.Name == output || o.PhysicalName == output) {
			obj = o
			break
		}
	}
	for _, p := range obj.Properties {
		name := p.Name
		if p.PhysicalName != "" {
			name = p.PhysicalName
		}
		cm := &colMeta{name: name, classification: strings.ToLower(p.Classification), tags: p.Tags}
		if rank(cm.classification) >= 0 {
			cm.level = cm.classification
		}
		if typeRE.MatchString(p.PhysicalType) {
			cm.typ = strings.ToUpper(p.PhysicalType)
		} else if strings.EqualFold(p.LogicalType, "date") {
			cm.typ = "DATE"
		}
		cm.pii = cm.classification == "pii"
		for _, t := range p.Tags {
			if strings.EqualFold(t, "pii") {
				cm.pii = true
			}
		}
		pi.columns = append(pi.columns, cm)
		pi.byName[name] = cm
	}
}

// ---- policies ----

// maskRule is one entry of a Policy's masks.
type maskRule struct {
	Policy         string `json:"-"`
	Classification string `json:"classification,omitempty"`
	Tag            string `json:"tag,omitempty"`
	Column         string `json:"column,omitempty"`
	With           string `json:"with"`
	Expr           string `json:"expr,omitempty"`
	When           string `json:"when,omitempty"`
}

// Conditions of a mask rule.
const (
	WhenAboveClearance = "above_clearance" // the default
	WhenAlways         = "always"
	WhenNonProduction  = "non_production"
)

type policyDoc struct {
	rhizome.Policy
	Masks []maskRule `json:"masks,omitempty"`
}

type policySet struct {
	policies []policyDoc // global first, then domain; by name
	loadedAt time.Time
}

// PIIMaskingPolicy is the guide's policy that gives the non-production PII
// rule its name in decisions.
const PIIMaskingPolicy = "pii-masking"

func (s *Service) policySet(ctx context.Context) (*policySet, error) {
	s.mu.Lock()
	ps := s.policies
	s.mu.Unlock()
	if ps != nil && s.fresh(ps.loadedAt) {
		return ps, nil
	}
	ps = &policySet{loadedAt: time.Now()}
	after := ""
	for {
		page, err := s.store.List(ctx, metastore.ListOptions{Kind: rhizome.KindPolicy, After: after, Limit: 1000})
		if err != nil {
			return nil, err
		}
		for _, o := range page.Items {
			var p policyDoc
			if err := json.Unmarshal(o.Body, &p); err != nil {
				s.logger.Warn("access: unreadable policy", "policy", o.ID, "err", err)
				continue
			}
			ps.policies = append(ps.policies, p)
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	sort.SliceStable(ps.policies, func(i, j int) bool {
		gi, gj := ps.policies[i].Scope == "global", ps.policies[j].Scope == "global"
		if gi != gj {
			return gi
		}
		return ps.policies[i].Name < ps.policies[j].Name
	})
	s.mu.Lock()
	s.policies = ps
	s.mu.Unlock()
	return ps, nil
}

// forDomain returns the mask rules of the policies that apply to a domain,
// and the name of the pii-masking policy if one applies.
func (ps *policySet) forDomain(domain string) (rules []maskRule, pii string) {
	for _, p := range ps.policies {
		if !applies(&p.Policy, domain) {
			continue
		}
		if p.Name == PIIMaskingPolicy {
			pii = p.Name
		}
		for _, r := range p.Masks {
			if r.Classification == "" && r.Tag == "" && r.Column == "" {
				continue // matches nothing: the schema requires a matcher
			}
			r.Policy = p.Name
			r.With = strings.ToLower(r.With)
			rules = append(rules, r)
		}
	}
	return rules, pii
}

func applies(p *rhizome.Policy, domain string) bool {
	if p.Scope == "domain" {
		return p.Domain == domain
	}
	if len(p.DomainsApplicable) == 0 {
		return true
	}
	return slices.Contains(p.DomainsApplicable, "all") || slices.Contains(p.DomainsApplicable, domain)
}

func (r *maskRule) matches(c *colMeta) bool {
	if r.Column != "" && r.Column != c.name {
		return false
	}
	if r.Classification != "" {
		want := strings.ToLower(r.Classification)
		if c.classification != want && !(want == "pii" && c.pii) {
			return false
		}
	}
	if r.Tag != "" {
		ok := strings.EqualFold(r.Tag, "pii") && c.pii
		for _, t := range c.tags {
			ok = ok || strings.EqualFold(t, r.Tag)
		}
		if !ok {
			return false
		}
	}
	return true
}

// ---- Decide ----

// rank orders sensitivity levels; -1 for anything else.
func rank(level string) int {
	return slices.Index(rhizome.SensitivityLevels(), level)
}

// Decide answers whether req.Subject may read req.ProductID, and how.
func (s *Service) Decide(ctx context.Context, req Request) (*Decision, error) {
	pi, err := s.product(ctx, req.ProductID)
	if err != nil {
		return nil, err
	}
	subj := req.Subject
	d := &Decision{}
	if subj.ID == "" {
		d.Reason = "not authenticated"
		return d, nil
	}
	now := s.clock.Now()
	owner := subj.Admin || (pi.ownerTeam != "" && slices.Contains(subj.Teams, pi.ownerTeam))
	var g, lapsed *Grant
	if !owner {
		if g, lapsed, err = s.activeGrant(ctx, pi.id, subj.ID, now); err != nil {
			return nil, err
		}
	}
	clearance := rhizome.SensitivityPublic
	switch {
	case owner:
		clearance = rhizome.SensitivityRestricted
		if subj.Admin {
			d.Reason = "admins read every product"
		} else {
			d.Reason = "member of the owner team " + pi.ownerTeam
		}
	case g != nil:
		clearance = g.Clearance
		d.GrantID = g.ID
		d.RowFilter = g.RowFilter
		d.Expires = g.ExpiresAt
		d.Reason = fmt.Sprintf("grant %s approved by %s", g.ID, g.ApprovedBy)
	case len(subj.Teams) > 0:
		clearance = rhizome.SensitivityInternal
		d.Reason = "member of the organisation (team " + strings.Join(subj.Teams, ", ") + ")"
	default:
		d.Reason = "authenticated"
	}
	if rank(clearance) < rank(pi.level) {
		d.Reason = denyReason(pi, subj, clearance)
		if lapsed != nil {
			d.Reason += fmt.Sprintf(" (grant %s expired at %s)", lapsed.ID, lapsed.ExpiresAt.UTC().Format(time.RFC3339))
		}
		return d, nil
	}
	if g == nil {
		d.Reason = pi.level + " product; " + d.Reason
	}
	d.Allow = true
	names := req.Columns
	if len(names) == 0 {
		for _, c := range pi.columns {
			names = append(names, c.name)
		}
	}
	nonProd := s.NonProduction()
	policies := map[string]bool{}
	d.Columns = make([]Column, 0, len(names))
	for _, name := range names {
		cm := pi.byName[name]
		if cm == nil {
			cm = &colMeta{name: name, pii: pi.piiMasking[name] != ""}
		}
		col := Column{Name: name, Classification: cm.classification}
		if g != nil && len(g.Columns) > 0 && !slices.Contains(g.Columns, name) {
			col.Hidden = true
			col.Expr = "NULL"
			d.Columns = append(d.Columns, col)
			continue
		}
		kind, custom, policy := s.maskFor(pi, cm, owner, clearance, nonProd)
		typ := cm.typ
		if t, ok := req.Types[name]; ok && t != "" {
			typ = t
		}
		expr, err := MaskExpr(kind, name, typ, custom)
		if err != nil {
			// A bad custom mask hides the value rather than showing it.
			s.logger.Warn("access: mask rule unusable, masking with null", "policy", policy, "column", name, "err", err)
			kind = MaskNull
			expr, _ = MaskExpr(MaskNull, name, typ, "")
		}
		col.Mask, col.Expr = kind, expr
		if policy != "" {
			policies[policy] = true
		}
		d.Columns = append(d.Columns, col)
	}
	for p := range policies {
		d.PolicyIDs = append(d.PolicyIDs, p)
	}
	sort.Strings(d.PolicyIDs)
	return d, nil
}

func denyReason(pi *productInfo, subj Subject, clearance string) string {
	switch pi.level {
	case rhizome.SensitivityInternal:
		return fmt.Sprintf("%s is internal: only members of a team read it, and %s is in none", pi.id, subj.ID)
	case rhizome.SensitivityConfidential:
		return fmt.Sprintf("%s is confidential: reading it needs an approved grant", pi.id)
	}
	if clearance == rhizome.SensitivityConfidential {
		return fmt.Sprintf("%s is restricted: your grant was not approved by its steward with a purpose and an expiry", pi.id)
	}
	return fmt.Sprintf("%s is restricted: reading it needs a grant approved by its steward, with a purpose and an expiry", pi.id)
}

// maskFor picks a column's mask: the first policy rule that holds, then
// the built-in rules (non-production PII; classification above the
// reader's clearance).
func (s *Service) maskFor(pi *productInfo, c *colMeta, owner bool, clearance string, nonProd bool) (kind, custom, policy string) {
	above := c.level != "" && rank(c.level) > rank(clearance)
	for i := range pi.rules {
		r := &pi.rules[i]
		if !r.matches(c) {
			continue
		}
		holds := false
		switch r.When {
		case WhenNonProduction:
			holds = nonProd
		case WhenAlways:
			holds = !owner
		default:
			holds = above
		}
		if !holds {
			continue
		}
		with := r.With
		if r.When == WhenNonProduction && pi.piiMasking[c.name] != "" {
			with = piiMethod(pi.piiMasking[c.name])
		}
		return with, r.Expr, r.Policy
	}
	if nonProd && c.pii {
		p := pi.piiPolicy
		if p == "" {
			p = PIIMaskingPolicy
		}
		return piiMethod(pi.piiMasking[c.name]), "", p
	}
	if above {
		return MaskNull, "", "classification"
	}
	return MaskNone, "", ""
}

// piiMethod reads a product's pii_masking method (hash when unknown).
func piiMethod(m string) string {
	if m == "" || m == MaskCustom || !slices.Contains(MaskKinds(), m) {
		return MaskHash
	}
	return m
}
