package metastoretest

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/metastore"
)

// mesh puts n products with labels drawn from small sets, plus a few
// objects of other kinds with the same labels (which no product List may
// return), and returns the products' labels by id.
func (e *env) mesh(n int) map[string]rhizome.Labels {
	e.t.Helper()
	domains := []string{"customer", "sales", "finance"}
	teams := []string{"team-a", "team-b", "team-c", "team-d"}
	levels := rhizome.SensitivityLevels()
	tags := []string{"pii", "gold", "daily", "raw", "360"}
	want := map[string]rhizome.Labels{}
	e.mustUpdate(func(tx metastore.Tx) error {
		for i := range n {
			l := rhizome.Labels{
				Domain: domains[i%len(domains)], OwnerTeam: teams[i%len(teams)],
				Sensitivity: levels[i%len(levels)], Tags: []string{tags[i%len(tags)], tags[(i*7+1)%len(tags)]},
			}
			// Ids in an order that differs from insertion order.
			id := fmt.Sprintf("dp.%03d", (i*37)%n)
			if _, err := tx.Put(e.ctx, newObject(rhizome.KindDataProduct, id, l), 0, "seed", ""); err != nil {
				return err
			}
			l.Normalize()
			want[id] = l
		}
		for _, d := range domains {
			o := newObject(rhizome.KindDataContract, "dp.000", rhizome.Labels{Domain: d, OwnerTeam: "team-a", Sensitivity: "public", Tags: tags})
			o.ID = "c." + d
			if _, err := tx.Put(e.ctx, o, 0, "seed", ""); err != nil {
				return err
			}
		}
		return nil
	})
	return want
}

func matchIDs(want map[string]rhizome.Labels, keep func(rhizome.Labels) bool) []string {
	var out []string
	for id, l := range want {
		if keep(l) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func testListFilters(t *testing.T, e *env) {
	want := e.mesh(60)
	kind := rhizome.KindDataProduct
	cases := []struct {
		name string
		opt  metastore.ListOptions
		keep func(rhizome.Labels) bool
	}{
		{"all", metastore.ListOptions{}, func(rhizome.Labels) bool { return true }},
		{"domain", metastore.ListOptions{Domain: "sales"}, func(l rhizome.Labels) bool { return l.Domain == "sales" }},
		{"owner_team", metastore.ListOptions{OwnerTeam: "team-b"}, func(l rhizome.Labels) bool { return l.OwnerTeam == "team-b" }},
		{"sensitivity", metastore.ListOptions{Sensitivity: "restricted"}, func(l rhizome.Labels) bool { return l.Sensitivity == "restricted" }},
		{"tag", metastore.ListOptions{Tag: "pii"}, func(l rhizome.Labels) bool { return slices.Contains(l.Tags, "pii") }},
		{"domain+tag", metastore.ListOptions{Domain: "customer", Tag: "gold"}, func(l rhizome.Labels) bool {
			return l.Domain == "customer" && slices.Contains(l.Tags, "gold")
		}},
		{"domain+owner+sensitivity", metastore.ListOptions{Domain: "finance", OwnerTeam: "team-c", Sensitivity: "confidential"}, func(l rhizome.Labels) bool {
			return l.Domain == "finance" && l.OwnerTeam == "team-c" && l.Sensitivity == "confidential"
		}},
		{"no match", metastore.ListOptions{Domain: "nowhere"}, func(rhizome.Labels) bool { return false }},
		{"member of a product", metastore.ListOptions{Member: "alice"}, func(rhizome.Labels) bool { return false }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opt := tc.opt
			opt.Kind = kind
			p := e.list(opt)
			if got, w := ids(p.Items), matchIDs(want, tc.keep); !equalStrings(got, w) {
				t.Errorf("List(%+v) = %v, want %v", opt, got, w)
			}
			if p.Next != "" {
				t.Errorf("Next = %q on the only page", p.Next)
			}
			for _, o := range p.Items {
				if o.Kind != kind || !reflect.DeepEqual(o.Labels, want[o.ID]) {
					t.Errorf("item %s %s: labels %+v, want %+v", o.Kind, o.ID, o.Labels, want[o.ID])
				}
			}
			for _, o := range p.Items {
				if string(o.Body) != string(newObject(kind, o.ID, rhizome.Labels{}).Body) || o.Revision != 1 {
					t.Errorf("item %s: revision %d, body %s", o.ID, o.Revision, o.Body)
				}
			}
		})
	}

	// Members filter on Teams, with a tag as well.
	e.mustUpdate(func(tx metastore.Tx) error {
		for i, m := range [][]string{{"alice", "bob"}, {"bob"}, {"alice"}} {
			o := newObject(rhizome.KindTeam, fmt.Sprintf("team-%d", i), rhizome.Labels{Members: m, Tags: []string{fmt.Sprint("t", i%2)}})
			if _, err := tx.Put(e.ctx, o, 0, "seed", ""); err != nil {
				return err
			}
		}
		return nil
	})
	for _, tc := range []struct {
		opt  metastore.ListOptions
		want []string
	}{
		{metastore.ListOptions{Member: "alice"}, []string{"team-0", "team-2"}},
		{metastore.ListOptions{Member: "bob"}, []string{"team-0", "team-1"}},
		{metastore.ListOptions{Member: "alice", Tag: "t0"}, []string{"team-0", "team-2"}},
		{metastore.ListOptions{Member: "bob", Tag: "t1"}, []string{"team-1"}},
		{metastore.ListOptions{Member: "carol"}, nil},
	} {
		tc.opt.Kind = rhizome.KindTeam
		if got := ids(e.list(tc.opt).Items); !equalStrings(got, tc.want) {
			t.Errorf("List(%+v) = %v, want %v", tc.opt, got, tc.want)
		}
	}
	team := e.mustGet(rhizome.KindTeam, "team-0")
	if !equalStrings(team.Labels.Members, []string{"alice", "bob"}) {
		t.Errorf("team-0 members = %v", team.Labels.Members)
	}
}

func testListPagination(t *testing.T, e *env) {
	want := e.mesh(101)
	kind := rhizome.KindDataProduct
	for _, tc := range []struct {
		name string
		opt  metastore.ListOptions
		keep func(rhizome.Labels) bool
	}{
		{"all", metastore.ListOptions{}, func(rhizome.Labels) bool { return true }},
		{"domain", metastore.ListOptions{Domain: "customer"}, func(l rhizome.Labels) bool { return l.Domain == "customer" }},
		{"tag", metastore.ListOptions{Tag: "daily"}, func(l rhizome.Labels) bool { return slices.Contains(l.Tags, "daily") }},
		{"sensitivity", metastore.ListOptions{Sensitivity: "public"}, func(l rhizome.Labels) bool { return l.Sensitivity == "public" }},
	} {
		all := matchIDs(want, tc.keep)
		for _, limit := range []int{1, 7, len(all), len(all) - 1} {
			if limit < 1 {
				continue
			}
			t.Run(fmt.Sprintf("%s/limit=%d", tc.name, limit), func(t *testing.T) {
				opt := tc.opt
				opt.Kind, opt.Limit = kind, limit
				var got []string
				for pages := 0; ; pages++ {
					if pages > len(all)+1 {
						t.Fatalf("pagination does not end: %v", got)
					}
					p := e.list(opt)
					if len(p.Items) > limit {
						t.Fatalf("page has %d items, limit %d", len(p.Items), limit)
					}
					got = append(got, ids(p.Items)...)
					if p.Next == "" {
						break
					}
					if len(p.Items) != limit {
						t.Errorf("a page with Next has %d items, want %d", len(p.Items), limit)
					}
					if p.Next != p.Items[len(p.Items)-1].ID {
						t.Errorf("Next = %q, want the last id %q", p.Next, p.Items[len(p.Items)-1].ID)
					}
					opt.After = p.Next
				}
				if !equalStrings(got, all) {
					t.Errorf("pages joined = %v\nwant %v", got, all)
				}
			})
		}
	}

	// Limit 0 is 100; more than 1000 is 1000 (here: all 101).
	if p := e.list(metastore.ListOptions{Kind: kind}); len(p.Items) != 100 || p.Next == "" {
		t.Errorf("default page: %d items, next %q; want 100 and a cursor", len(p.Items), p.Next)
	}
	if p := e.list(metastore.ListOptions{Kind: kind, Limit: 5000}); len(p.Items) != 101 || p.Next != "" {
		t.Errorf("Limit 5000: %d items, next %q; want all 101, no cursor", len(p.Items), p.Next)
	}
	// A cursor need not be an existing id.
	if p := e.list(metastore.ListOptions{Kind: kind, After: "dp.0995"}); !equalStrings(ids(p.Items), []string{"dp.100"}) {
		t.Errorf("After a missing id = %v, want [dp.100]", ids(p.Items))
	}
}

func testListLabelsChange(t *testing.T, e *env) {
	kind := rhizome.KindDataProduct
	e.mustPut(newObject(kind, "dp.x", rhizome.Labels{Domain: "a", Tags: []string{"old", "both"}}), 0)
	e.mustPut(newObject(kind, "dp.x", rhizome.Labels{Domain: "b", Tags: []string{"new", "both"}}), 1)
	for _, tc := range []struct {
		opt  metastore.ListOptions
		want []string
	}{
		{metastore.ListOptions{Tag: "old"}, nil},
		{metastore.ListOptions{Tag: "new"}, []string{"dp.x"}},
		{metastore.ListOptions{Tag: "both"}, []string{"dp.x"}},
		{metastore.ListOptions{Domain: "a"}, nil},
		{metastore.ListOptions{Domain: "b"}, []string{"dp.x"}},
	} {
		tc.opt.Kind = kind
		if got := ids(e.list(tc.opt).Items); !equalStrings(got, tc.want) {
			t.Errorf("after relabel, List(%+v) = %v, want %v", tc.opt, got, tc.want)
		}
	}
	// Same labels again: the index rows stay right.
	e.mustPut(newObject(kind, "dp.x", rhizome.Labels{Domain: "b", Tags: []string{"both", "new"}}), 2)
	if got := ids(e.list(metastore.ListOptions{Kind: kind, Tag: "new"}).Items); !equalStrings(got, []string{"dp.x"}) {
		t.Errorf("after a same-labels update, List by tag = %v", got)
	}
}
