package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/client"
)

func (a *app) getCmd() *cobra.Command {
	var (
		opt client.ListOptions
		all bool
	)
	cmd := &cobra.Command{
		Use:   "get KIND [ID]",
		Short: "List objects of a kind, or show one",
		Long: `Get lists the objects of a kind (domains, teams, products, contracts,
infrastructure, policies; also singular or short forms such as product or
dp), or shows one by its id. With -o yaml it prints the manifests, ready to
edit and apply again.`,
		Example: `  rhizome get products --domain customer
  rhizome get dp dp.customer.360 -o yaml
  rhizome get teams --member alice@example.com --all -o json`,
		Args: cobra.RangeArgs(1, 2),
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			kind, err := parseKind(cmd, args[0])
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if len(args) == 2 {
				obj, err := c.Get(ctx, kind, args[1])
				if err != nil {
					return err
				}
				switch a.output {
				case "json":
					return a.printData(obj)
				case "yaml":
					return a.printManifests([]*rhizome.Object{obj})
				}
				return printObjects(a, kind, []*rhizome.Object{obj})
			}
			page := &client.Page{}
			if all {
				page.Items, err = c.ListAll(ctx, kind, opt)
			} else {
				page, err = c.List(ctx, kind, opt)
			}
			if err != nil {
				return err
			}
			switch a.output {
			case "json":
				return a.printData(page)
			case "yaml":
				return a.printManifests(page.Items)
			}
			if len(page.Items) == 0 {
				fmt.Fprintf(a.stderr, "No %s found.\n", kind.Plural())
				return nil
			}
			if err := printObjects(a, kind, page.Items); err != nil {
				return err
			}
			if page.Next != "" {
				fmt.Fprintf(a.stderr, "More %s: pass --all, or --after %s for the next page.\n", kind.Plural(), page.Next)
			}
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&opt.Domain, "domain", "", "only objects of this domain")
	f.StringVar(&opt.Tag, "tag", "", "only objects with this tag")
	f.StringVar(&opt.OwnerTeam, "owner-team", "", "only products owned by this team")
	f.StringVar(&opt.Sensitivity, "sensitivity", "", "only objects of this sensitivity level")
	f.StringVar(&opt.Member, "member", "", "only teams with this member")
	f.IntVar(&opt.Limit, "limit", 0, "page size (server default 100, at most 1000)")
	f.StringVar(&opt.After, "after", "", "cursor: list after this id")
	f.BoolVar(&all, "all", false, "follow the cursors and list every page")
	return cmd
}

// printObjects prints a table with columns chosen for the kind.
func printObjects(a *app, kind rhizome.Kind, objs []*rhizome.Object) error {
	headers, row := columns(kind)
	t := newTable(a.stdout, headers...)
	for _, o := range objs {
		t.row(row(o)...)
	}
	return t.flush()
}

// decode reads an object's manifest into its typed shape, leaving fields it
// cannot read empty: a table shows what it can.
func decode[T any](o *rhizome.Object) *T {
	var v T
	_ = json.Unmarshal(o.Body, &v)
	return &v
}

func rev(o *rhizome.Object) string { return strconv.FormatInt(o.Revision, 10) }

func columns(kind rhizome.Kind) ([]string, func(*rhizome.Object) []string) {
	switch kind {
	case rhizome.KindDataProduct:
		return []string{"ID", "NAME", "DOMAIN", "OWNER", "SENSITIVITY", "VERSION", "REVISION"},
			func(o *rhizome.Object) []string {
				p := decode[rhizome.DataProduct](o)
				return []string{o.ID, p.Name, p.Domain, p.OwnerTeam, p.SensitivityLevel, p.CurrentVersion, rev(o)}
			}
	case rhizome.KindDomain:
		return []string{"ID", "NAME", "OWNER TEAMS", "REVISION"},
			func(o *rhizome.Object) []string {
				d := decode[rhizome.Domain](o)
				return []string{o.ID, d.DisplayName, list(d.OwnerTeams), rev(o)}
			}
	case rhizome.KindTeam:
		return []string{"ID", "NAME", "DOMAIN", "MEMBERS", "REVISION"},
			func(o *rhizome.Object) []string {
				t := decode[rhizome.Team](o)
				return []string{o.ID, t.DisplayName, t.Domain, strconv.Itoa(len(t.Members)), rev(o)}
			}
	case rhizome.KindDataContract:
		return []string{"ID", "NAME", "VERSION", "STATUS", "DOMAIN", "PRODUCT", "REVISION"},
			func(o *rhizome.Object) []string {
				c := decode[rhizome.Contract](o)
				return []string{o.ID, c.Name, c.Version, c.Status, c.Domain, c.DataProduct, rev(o)}
			}
	case rhizome.KindInfrastructure:
		return []string{"ID", "NAMESPACE", "STORAGE", "ENGINE", "SCHEDULE", "REVISION"},
			func(o *rhizome.Object) []string {
				inf := decode[rhizome.Infrastructure](o)
				s := inf.Spec
				var storage, engine, schedule string
				if s.Storage != nil {
					storage = s.Storage.Type
				}
				if s.Processing != nil {
					engine = s.Processing.Engine
				}
				if s.Orchestration != nil {
					schedule = s.Orchestration.Schedule
				}
				return []string{o.ID, inf.Metadata.Namespace, storage, engine, schedule, rev(o)}
			}
	case rhizome.KindPolicy:
		return []string{"ID", "SCOPE", "DOMAIN", "ENFORCEMENT", "REVISION"},
			func(o *rhizome.Object) []string {
				p := decode[rhizome.Policy](o)
				return []string{o.ID, p.Scope, p.Domain, p.Enforcement, rev(o)}
			}
	}
	return []string{"KIND", "ID", "REVISION"},
		func(o *rhizome.Object) []string { return []string{string(o.Kind), o.ID, rev(o)} }
}

func (a *app) deleteCmd() *cobra.Command {
	var ifRevision int64
	cmd := &cobra.Command{
		Use:     "delete KIND ID",
		Short:   "Delete one object",
		Example: `  rhizome delete product dp.sales.old`,
		Args:    cobra.ExactArgs(2),
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			kind, err := parseKind(cmd, args[0])
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := c.Delete(ctx, kind, args[1], ifRevision)
			if err != nil {
				return err
			}
			if !a.table() {
				return a.printData(res)
			}
			fmt.Fprintf(a.stdout, "Deleted %s/%s (apply %s).\n", kind, args[1], res.ApplyID)
			return nil
		}),
	}
	cmd.Flags().Int64Var(&ifRevision, "if-revision", 0, "delete only if the object is at this revision")
	return cmd
}

func (a *app) historyCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "history KIND ID",
		Short:   "Show an object's revisions, oldest first",
		Example: `  rhizome history product dp.customer.360`,
		Args:    cobra.ExactArgs(2),
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			kind, err := parseKind(cmd, args[0])
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			revs, err := c.History(ctx, kind, args[1])
			if err != nil {
				return err
			}
			if !a.table() {
				return a.printData(map[string]any{"items": revs})
			}
			t := newTable(a.stdout, "REVISION", "OP", "ACTOR", "AT", "APPLY")
			for _, r := range revs {
				t.row(strconv.FormatInt(r.Revision, 10), string(r.Op), r.Actor, timeString(r.At), r.ApplyID)
			}
			return t.flush()
		}),
	}
}

func (a *app) versionsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "versions PRODUCT [VERSION]",
		Short: "List a data product's versions, or show one",
		Example: `  rhizome versions dp.customer.360
  rhizome versions dp.customer.360 2.0.0 -o yaml`,
		Args: cobra.RangeArgs(1, 2),
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if len(args) == 2 {
				v, err := c.Version(ctx, args[0], args[1])
				if err != nil {
					return err
				}
				if a.output == "json" {
					return a.printData(v)
				}
				if a.table() {
					state := "previous"
					if v.Current {
						state = "current"
					}
					fmt.Fprintf(a.stdout, "# %s %s (%s)\n", v.ProductID, v.Version, state)
				}
				if len(v.Body) == 0 {
					return nil
				}
				return a.printYAML(v.Body)
			}
			vs, err := c.Versions(ctx, args[0])
			if err != nil {
				return err
			}
			if !a.table() {
				return a.printData(map[string]any{"items": vs})
			}
			t := newTable(a.stdout, "VERSION", "CURRENT", "REVISION", "CREATED")
			for _, v := range vs {
				cur := ""
				if v.Current {
					cur = "yes"
				}
				r := ""
				if v.Revision > 0 {
					r = strconv.FormatInt(v.Revision, 10)
				}
				t.row(v.Version, cur, r, timeString(v.CreatedAt))
			}
			return t.flush()
		}),
	}
}
