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

// each calls fn for every stored object matching opt, page by page.
func each(ctx context.Context, r metastore.Reader, opt metastore.ListOptions, fn func(*rhizome.Object) error) error {
	opt.Limit = 1000
	for {
		page, err := r.List(ctx, opt)
		if err != nil {
			return err
		}
		for _, o := range page.Items {
			if err := fn(o); err != nil {
				return err
			}
		}
		if page.Next == "" {
			return nil
		}
		opt.After = page.Next
	}
}

// pruneSet lists the stored objects that --prune deletes: those of a kind
// and domain that the input holds, which the input no longer names.
// Domains themselves are never pruned; delete them explicitly.
func pruneSet(ctx context.Context, r metastore.Reader, docs []*spec.Document) ([]rhizome.Change, error) {
	type scope struct {
		kind   rhizome.Kind
		domain string
	}
	scopes := map[scope]bool{}
	in := map[string]bool{}
	for _, d := range docs {
		in[key(d.Kind, d.ID)] = true
		if d.Kind == rhizome.KindDomain {
			continue
		}
		if dom := spec.LabelsOf(d).Domain; dom != "" {
			scopes[scope{d.Kind, dom}] = true
		}
	}
	var out []rhizome.Change
	for s := range scopes {
		err := each(ctx, r, metastore.ListOptions{Kind: s.kind, Domain: s.domain}, func(o *rhizome.Object) error {
			if !in[key(o.Kind, o.ID)] {
				out = append(out, rhizome.Change{Action: rhizome.ActionDelete, Kind: o.Kind, ID: o.ID})
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if a, b := out[i].Kind.Order(), out[j].Kind.Order(); a != b {
			return a > b // referrers first
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// referrers refuses to delete an object that a remaining object still
// names: deleting it would leave a dangling reference.
func referrers(ctx context.Context, r metastore.Reader, kind rhizome.Kind, id string, deleted map[string]bool) error {
	var users []string
	add := func(o *rhizome.Object) {
		if !deleted[key(o.Kind, o.ID)] && !(o.Kind == kind && o.ID == id) {
			users = append(users, key(o.Kind, o.ID))
		}
	}
	products := func(match func(*rhizome.DataProduct) bool) error {
		return each(ctx, r, metastore.ListOptions{Kind: rhizome.KindDataProduct}, func(o *rhizome.Object) error {
			var dp rhizome.DataProduct
			if json.Unmarshal(o.Body, &dp) == nil && match(&dp) {
				add(o)
			}
			return nil
		})
	}
	var err error
	switch kind {
	case rhizome.KindDomain:
		for _, k := range rhizome.Kinds() {
			if k == rhizome.KindDomain {
				continue
			}
			if err = each(ctx, r, metastore.ListOptions{Kind: k, Domain: id}, func(o *rhizome.Object) error { add(o); return nil }); err != nil {
				return err
			}
		}
	case rhizome.KindTeam:
		err = each(ctx, r, metastore.ListOptions{Kind: rhizome.KindDataProduct, OwnerTeam: id}, func(o *rhizome.Object) error { add(o); return nil })
		if err == nil {
			err = each(ctx, r, metastore.ListOptions{Kind: rhizome.KindDomain}, func(o *rhizome.Object) error {
				for _, t := range o.Labels.Owners {
					if t == id {
						add(o)
					}
				}
				return nil
			})
		}
	case rhizome.KindDataContract:
		err = products(func(dp *rhizome.DataProduct) bool { return dp.Contract == id })
	case rhizome.KindInfrastructure:
		err = products(func(dp *rhizome.DataProduct) bool { return dp.Infrastructure == id })
	case rhizome.KindDataProduct:
		err = products(func(dp *rhizome.DataProduct) bool {
			for _, p := range dp.InputPorts {
				if p.Product == id {
					return true
				}
			}
			return false
		})
	}
	if err != nil {
		return err
	}
	if len(users) == 0 {
		return nil
	}
	sort.Strings(users)
	more := ""
	if len(users) > 5 {
		more = fmt.Sprintf(" and %d more", len(users)-5)
		users = users[:5]
	}
	return rhizome.Errorf(rhizome.EConflict, "cannot delete %s/%s: %s still refer to it%s; nothing was applied",
		kind, id, strings.Join(users, ", "), more).WithHint("delete or change those first, or apply them together with --prune")
}
