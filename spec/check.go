package spec

import (
	"fmt"
	"sort"
	"strings"

	"github.com/rhizome-mesh/rhizome"
)

// Check runs the checks that span documents: each (kind, id) appears once;
// every reference resolves in docs or through r; no entity is claimed by
// two domains' bounded contexts. It returns an EInvalid *rhizome.Error
// listing every problem, or nil.
func Check(docs []*Document, r Resolver) error {
	return problemsError(sortProblems(problemsOf(check(docs, r))))
}

// idLister is what a Resolver may also offer: the ids of a kind, as
// candidates for "did you mean" hints on dangling references.
type idLister interface {
	IDs(kind rhizome.Kind) []string
}

// docProblem is a problem and the document it belongs to.
type docProblem struct {
	rhizome.Problem
	doc *Document
}

func problemsOf(dps []docProblem) []rhizome.Problem {
	out := make([]rhizome.Problem, len(dps))
	for i, p := range dps {
		out[i] = p.Problem
	}
	return out
}

// ref is a reference from a field of a document to an object.
type ref struct {
	path string
	kind rhizome.Kind
	id   string
}

func refsOf(d *Document) []ref {
	var out []ref
	add := func(path string, k rhizome.Kind, id string) {
		if id != "" {
			out = append(out, ref{path, k, id})
		}
	}
	list := func(path string, k rhizome.Kind, ids []string) {
		for i, id := range ids {
			add(fmt.Sprintf("%s[%d]", path, i), k, id)
		}
	}
	switch v := d.Value.(type) {
	case *rhizome.DataProduct:
		add("domain", rhizome.KindDomain, v.Domain)
		add("owner_team", rhizome.KindTeam, v.OwnerTeam)
		add("contract", rhizome.KindDataContract, v.Contract)
		add("infrastructure", rhizome.KindInfrastructure, v.Infrastructure)
		for i, p := range v.InputPorts {
			if p.Product != v.ID {
				add(fmt.Sprintf("input_ports[%d].product", i), rhizome.KindDataProduct, p.Product)
			}
		}
	case *rhizome.Team:
		add("domain", rhizome.KindDomain, v.Domain)
	case *rhizome.Domain:
		list("owner_teams", rhizome.KindTeam, v.OwnerTeams)
		list("upstream_domains", rhizome.KindDomain, v.UpstreamDomains)
		list("downstream_domains", rhizome.KindDomain, v.DownstreamDomains)
	case *rhizome.Policy:
		add("domain", rhizome.KindDomain, v.Domain)
	case *rhizome.Infrastructure:
		add("metadata.namespace", rhizome.KindDomain, v.Metadata.Namespace)
	}
	return out
}

func check(docs []*Document, r Resolver) []docProblem {
	var out []docProblem
	add := func(d *Document, path, msg, hint string) {
		out = append(out, docProblem{rhizome.Problem{Pos: d.posOf(path), Path: path, Message: msg, Hint: hint}, d})
	}

	// Unique ids, reported at every place the id is defined.
	byID := map[rhizome.Kind]map[string][]*Document{}
	for _, d := range docs {
		if d == nil || d.ID == "" {
			continue
		}
		if byID[d.Kind] == nil {
			byID[d.Kind] = map[string][]*Document{}
		}
		byID[d.Kind][d.ID] = append(byID[d.Kind][d.ID], d)
	}
	for _, k := range rhizome.Kinds() {
		for _, id := range sortedKeys(byID[k]) {
			ds := byID[k][id]
			if len(ds) < 2 {
				continue
			}
			for i, d := range ds {
				var others []string
				for j, o := range ds {
					if j != i {
						others = append(others, o.posOf(idPath(k)).String())
					}
				}
				add(d, idPath(k), fmt.Sprintf("%s `%s` is defined more than once; also at %s", k, id, strings.Join(others, ", ")),
					"ids are unique per kind: rename one or remove the copy")
			}
		}
	}

	// References.
	exists := func(k rhizome.Kind, id string) bool {
		if len(byID[k][id]) > 0 {
			return true
		}
		return r != nil && r.Exists(k, id)
	}
	where := "the input"
	if r != nil {
		where = "the input or the catalog"
	}
	for _, d := range docs {
		if d == nil {
			continue
		}
		for _, rf := range refsOf(d) {
			if exists(rf.kind, rf.id) {
				continue
			}
			hint := fmt.Sprintf("define a %s named `%s`, or apply it first", rf.kind, rf.id)
			candidates := sortedKeys(byID[rf.kind])
			if l, ok := r.(idLister); ok {
				candidates = append(candidates, l.IDs(rf.kind)...)
			}
			if s := suggest(rf.id, candidates); s != "" {
				hint = "did you mean `" + s + "`?"
			}
			add(d, rf.path, fmt.Sprintf("no %s `%s` in %s", rf.kind, rf.id, where), hint)
		}
	}

	// Domain boundaries: an entity belongs to one bounded context.
	type claim struct {
		domain *rhizome.Domain
		doc    *Document
		path   string
	}
	claims := map[string]claim{}
	for _, d := range docs {
		dom, ok := d.Value.(*rhizome.Domain)
		if !ok {
			continue
		}
		for i, e := range dom.BoundedContext.Entities {
			key := strings.ToLower(strings.TrimSpace(e))
			path := fmt.Sprintf("bounded_context.entities[%d]", i)
			first, ok := claims[key]
			if !ok {
				claims[key] = claim{dom, d, path}
				continue
			}
			if first.domain.Name == dom.Name {
				continue // the same domain twice: reported as a duplicate id or entity
			}
			add(d, path, fmt.Sprintf("entity `%s` is claimed by two domains: `%s` and `%s`", e, first.domain.Name, dom.Name),
				fmt.Sprintf("an entity belongs to one domain's bounded context (`%s` claims it at %s); keep it there and let `%s` consume that domain's data product",
					first.domain.Name, first.doc.posOf(first.path), dom.Name))
		}
	}
	return out
}

// sortProblems orders problems by file, line and column.
func sortProblems(ps []rhizome.Problem) []rhizome.Problem {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Col != b.Col {
			return a.Col < b.Col
		}
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Message < b.Message
	})
	return ps
}

// problemsError is the one error for a set of problems, nil for none.
func problemsError(ps []rhizome.Problem) error {
	if len(ps) == 0 {
		return nil
	}
	files := map[string]bool{}
	for _, p := range ps {
		files[p.File] = true
	}
	return rhizome.Invalid(fmt.Sprintf("%s in %s", plural(len(ps), "problem"), plural(len(files), "file")), ps...)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
