package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/spec"
)

// world answers ownership questions during one apply: the store as it was
// before the apply first, then the input (for objects the apply creates).
type world struct {
	ctx   context.Context
	r     metastore.Reader
	input map[string]*spec.Document // "Kind/id"
}

func key(k rhizome.Kind, id string) string { return string(k) + "/" + id }

func (w *world) load(kind rhizome.Kind, id string, into any) bool {
	obj, err := w.r.Get(w.ctx, kind, id)
	if err == nil {
		return json.Unmarshal(obj.Body, into) == nil
	}
	if d, ok := w.input[key(kind, id)]; ok {
		return json.Unmarshal(d.Body, into) == nil
	}
	return false
}

func (w *world) domain(name string) *rhizome.Domain {
	var d rhizome.Domain
	if name == "" || !w.load(rhizome.KindDomain, name, &d) {
		return nil
	}
	return &d
}

func (w *world) team(name string) *rhizome.Team {
	var t rhizome.Team
	if name == "" || !w.load(rhizome.KindTeam, name, &t) {
		return nil
	}
	return &t
}

func (w *world) memberOf(p *rhizome.Principal, team string) bool {
	t := w.team(team)
	if t == nil {
		return false
	}
	for _, m := range t.Members {
		if m.Principal == p.ID {
			return true
		}
	}
	return false
}

// domainOwners lists the owner teams of a domain.
func (w *world) domainOwners(domain string) []string {
	if d := w.domain(domain); d != nil {
		return d.OwnerTeams
	}
	return nil
}

// allowed holds when p is a member of one of teams; want collects the teams
// for the refusal message.
type gate struct {
	w    *world
	p    *rhizome.Principal
	want []string
}

func (g *gate) teams(teams ...string) bool {
	for _, t := range teams {
		if t == "" {
			continue
		}
		g.want = append(g.want, t)
		if g.w.memberOf(g.p, t) {
			return true
		}
	}
	return false
}

func (g *gate) domainOwners(domain string) bool { return g.teams(g.w.domainOwners(domain)...) }

func (g *gate) refuse(action rhizome.Action, kind rhizome.Kind, id, why string) error {
	want := uniq(g.want)
	msg := fmt.Sprintf("%s may not %s %s/%s", g.p.ID, verb(action), kind, id)
	if why != "" {
		msg += ": " + why
	}
	e := rhizome.Errorf(rhizome.EForbidden, "%s", msg)
	if len(want) > 0 {
		e.Hint = "members of team " + strings.Join(want, " or ") + " may; ask one of them, or an admin"
	} else {
		e.Hint = "only admins may; ask an admin"
	}
	return e
}

func verb(a rhizome.Action) string {
	switch a {
	case rhizome.ActionCreate:
		return "create"
	case rhizome.ActionDelete:
		return "delete"
	}
	return "change"
}

func uniq(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// authorize decides whether p may carry out change c. cur is the stored
// body (nil on create) and next the applied one (nil on delete).
func (w *world) authorize(p *rhizome.Principal, c rhizome.Change, cur, next json.RawMessage) error {
	if p.Admin {
		return nil
	}
	g := &gate{w: w, p: p}
	body := next
	if body == nil {
		body = cur
	}
	switch c.Kind {
	case rhizome.KindDomain:
		if c.Action == rhizome.ActionCreate || c.Action == rhizome.ActionDelete {
			return g.refuse(c.Action, c.Kind, c.ID, "domains are created and deleted by admins")
		}
		if g.domainOwners(c.ID) {
			return nil
		}
		return g.refuse(c.Action, c.Kind, c.ID, "only the domain's owner teams change it")
	case rhizome.KindTeam:
		var t rhizome.Team
		_ = json.Unmarshal(body, &t)
		if c.Action != rhizome.ActionCreate && g.teams(c.ID) {
			return nil
		}
		if g.domainOwners(t.Domain) {
			return nil
		}
		return g.refuse(c.Action, c.Kind, c.ID, "teams are changed by their members or their domain's owners")
	case rhizome.KindDataProduct:
		if w.mayChangeProduct(g, cur, next) {
			return nil
		}
		return g.refuse(c.Action, c.Kind, c.ID, "it is owned by another team")
	case rhizome.KindDataContract, rhizome.KindInfrastructure:
		if w.mayChangeAttached(g, c.Kind, c.ID, body) {
			return nil
		}
		return g.refuse(c.Action, c.Kind, c.ID, "it belongs to products of another team")
	case rhizome.KindPolicy:
		var pol rhizome.Policy
		_ = json.Unmarshal(body, &pol)
		if pol.Scope == "domain" && g.domainOwners(pol.Domain) {
			return nil
		}
		return g.refuse(c.Action, c.Kind, c.ID, "global policies are set by admins, domain policies by the domain's owners")
	}
	return g.refuse(c.Action, c.Kind, c.ID, "")
}

func (w *world) mayChangeProduct(g *gate, cur, next json.RawMessage) bool {
	// The stored owner decides for updates and deletes; the declared owner
	// for creates. Either way the domain's owners may too.
	body := cur
	if body == nil {
		body = next
	}
	var dp rhizome.DataProduct
	_ = json.Unmarshal(body, &dp)
	return g.teams(dp.OwnerTeam) || g.domainOwners(dp.Domain)
}

// mayChangeAttached: a contract or infrastructure is changed by whoever may
// change a product that names it; one that no product names, by its
// domain's owners.
func (w *world) mayChangeAttached(g *gate, kind rhizome.Kind, id string, body json.RawMessage) bool {
	named := false
	check := func(b json.RawMessage) bool {
		var dp rhizome.DataProduct
		if json.Unmarshal(b, &dp) != nil {
			return false
		}
		if (kind == rhizome.KindDataContract && dp.Contract == id) || (kind == rhizome.KindInfrastructure && dp.Infrastructure == id) {
			named = true
			return g.teams(dp.OwnerTeam) || g.domainOwners(dp.Domain)
		}
		return false
	}
	for _, d := range w.input {
		if d.Kind == rhizome.KindDataProduct && check(d.Body) {
			return true
		}
	}
	after := ""
	for {
		page, err := w.r.List(w.ctx, metastore.ListOptions{Kind: rhizome.KindDataProduct, After: after, Limit: 1000})
		if err != nil {
			return false
		}
		for _, o := range page.Items {
			if check(o.Body) {
				return true
			}
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	if named {
		return false
	}
	var dom struct {
		Domain   string `json:"domain"`
		Metadata struct {
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	_ = json.Unmarshal(body, &dom)
	d := dom.Domain
	if kind == rhizome.KindInfrastructure {
		d = dom.Metadata.Namespace
	}
	return g.domainOwners(d)
}
