package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/client"
)

func (a *app) describeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "describe KIND ID",
		Short: "Show one object as a readable page",
		Long: `Describe shows a data product with what surrounds it: metadata, SLA,
quality metrics, versions, ports, its contract and infrastructure, and the
people who own it. Domains and teams get a page too; other kinds show their
manifest.`,
		Example: `  rhizome describe product dp.customer.360
  rhizome describe team customer-domain-team`,
		Args: cobra.ExactArgs(2),
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			kind, err := parseKind(cmd, args[0])
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
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
			d := &describer{ctx: ctx, c: c, w: a.stdout}
			switch kind {
			case rhizome.KindDataProduct:
				d.product(obj)
			case rhizome.KindDomain:
				d.domain(obj)
			case rhizome.KindTeam:
				d.team(obj)
			default:
				d.header(obj)
				d.section("Manifest")
				fmt.Fprintln(a.stdout)
				return a.printYAML(obj.Body)
			}
			return nil
		}),
	}
}

// describer writes the pages of describe. Lookups of related objects that
// fail are shown in place, not returned: the page shows what it can.
type describer struct {
	ctx context.Context
	c   *client.Client
	w   io.Writer
}

func (d *describer) header(o *rhizome.Object) {
	p := newPage(d.w)
	p.kv(string(o.Kind), o.ID)
	p.kv("Revision", fmt.Sprintf("%d, updated %s by %s", o.Revision, timeString(o.UpdatedAt), o.UpdatedBy))
	p.flush()
}

func (d *describer) section(title string) { fmt.Fprintf(d.w, "\n%s:", title) }

// related fetches an object that the page refers to, or says why not.
func (d *describer) related(kind rhizome.Kind, id string) (*rhizome.Object, string) {
	if id == "" {
		return nil, "(none)"
	}
	o, err := d.c.Get(d.ctx, kind, id)
	switch {
	case rhizome.Code(err) == rhizome.ENotFound:
		return nil, "(not applied yet)"
	case err != nil:
		return nil, "(unavailable: " + firstLineOf(err) + ")"
	}
	return o, ""
}

func (d *describer) listed(kind rhizome.Kind, opt client.ListOptions) ([]*rhizome.Object, string) {
	objs, err := d.c.ListAll(d.ctx, kind, opt)
	if err != nil {
		return nil, "(unavailable: " + firstLineOf(err) + ")"
	}
	if len(objs) == 0 {
		return nil, "(none)"
	}
	return objs, ""
}

func firstLineOf(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

func (d *describer) product(o *rhizome.Object) {
	dp := decode[rhizome.DataProduct](o)
	p := newPage(d.w)
	p.kv("Product", dp.ID)
	p.kv("Name", dp.Name)
	p.kv("Description", dp.Description)
	p.kv("Domain", dp.Domain)
	p.kv("Owner team", dp.OwnerTeam)
	p.kv("Status", dp.Status)
	p.kv("Sensitivity", dp.SensitivityLevel)
	if dp.RetentionPeriodDays > 0 {
		p.kv("Retention", plural(dp.RetentionPeriodDays, "day"))
	}
	p.kv("Tags", list(dp.Tags))
	p.kv("Documentation", dp.DocumentationURL)
	p.kv("Revision", fmt.Sprintf("%d, updated %s by %s", o.Revision, timeString(o.UpdatedAt), o.UpdatedBy))
	p.flush()

	d.section("SLA")
	p = d.indented()
	p.kv("freshness", dp.SLA.Freshness)
	p.kv("availability", dp.SLA.Availability)
	p.kv("accuracy", dp.SLA.Accuracy)
	d.none(dp.SLA == rhizome.SLA{})
	p.flush()

	d.section("Quality metrics")
	p = d.indented()
	for _, k := range sortedKeys(dp.QualityMetrics) {
		p.kv(k, strconv.FormatFloat(dp.QualityMetrics[k], 'g', -1, 64))
	}
	d.none(len(dp.QualityMetrics) == 0)
	p.flush()

	d.versions(dp)
	d.ports(dp)
	d.contract(dp.Contract)
	d.infrastructure(dp.Infrastructure)

	d.section("Owners")
	fmt.Fprintln(d.w)
	d.members(dp.OwnerTeam, "owner team")
	if dom, why := d.related(rhizome.KindDomain, dp.Domain); dom != nil {
		for _, t := range decode[rhizome.Domain](dom).OwnerTeams {
			if t != dp.OwnerTeam {
				d.members(t, "owns domain "+dp.Domain)
			}
		}
	} else {
		fmt.Fprintf(d.w, "  domain %s %s\n", dp.Domain, why)
	}
}

// indented starts a page of the lines of a section.
func (d *describer) indented() *page {
	fmt.Fprintln(d.w)
	return newPage(&indenter{w: d.w})
}

// none ends a section header with "(none)" when the section is empty.
func (d *describer) none(empty bool) {
	if empty {
		fmt.Fprintln(d.w, "  (none)")
	}
}

func (d *describer) versions(dp *rhizome.DataProduct) {
	d.section("Versions")
	fmt.Fprintln(d.w)
	vs, err := d.c.Versions(d.ctx, dp.ID)
	if err != nil || len(vs) == 0 {
		// Fall back to what the manifest declares.
		vs = nil
		if dp.CurrentVersion != "" {
			vs = append(vs, rhizome.ProductVersion{Version: dp.CurrentVersion, Current: true})
		}
		for _, v := range dp.PreviousVersions {
			vs = append(vs, rhizome.ProductVersion{Version: v})
		}
	}
	slices.SortStableFunc(vs, func(a, b rhizome.ProductVersion) int { // current first
		return boolInt(b.Current) - boolInt(a.Current)
	})
	t := newTable(&indenter{w: d.w})
	for _, v := range vs {
		state := "previous"
		if v.Current {
			state = "current"
		}
		created := timeString(v.CreatedAt)
		t.row(v.Version, state, created)
	}
	t.flush()
	d.none(len(vs) == 0)
}

func (d *describer) ports(dp *rhizome.DataProduct) {
	d.section("Input ports")
	fmt.Fprintln(d.w)
	t := newTable(&indenter{w: d.w})
	for _, in := range dp.InputPorts {
		from := in.Connector + " " + configString(in.Config)
		if in.Product != "" {
			from = "product " + in.Product
			if in.Version != "" {
				from += "@" + in.Version
			}
		}
		t.row(in.Name, strings.TrimSpace(from))
	}
	t.flush()
	d.none(len(dp.InputPorts) == 0)

	d.section("Output ports")
	fmt.Fprintln(d.w)
	t = newTable(&indenter{w: d.w})
	for _, out := range dp.OutputPorts {
		t.row(out.Name, out.Type, out.Format)
	}
	t.flush()
	d.none(len(dp.OutputPorts) == 0)
}

func (d *describer) contract(id string) {
	d.section("Contract")
	o, why := d.related(rhizome.KindDataContract, id)
	if o == nil {
		fmt.Fprintln(d.w, " "+strings.TrimSpace(id+" "+why))
		return
	}
	c := decode[rhizome.Contract](o)
	fmt.Fprintf(d.w, " %s (ODCS %s, version %s, %s)\n", c.ID, c.APIVersion, c.Version, c.Status)
	var tables []struct {
		Name       string            `json:"name"`
		Properties []json.RawMessage `json:"properties"`
	}
	_ = json.Unmarshal(c.Schema, &tables)
	for _, t := range tables {
		fmt.Fprintf(d.w, "  %s: %s\n", t.Name, plural(len(t.Properties), "property"))
	}
}

func (d *describer) infrastructure(name string) {
	d.section("Infrastructure")
	o, why := d.related(rhizome.KindInfrastructure, name)
	if o == nil {
		fmt.Fprintln(d.w, " "+strings.TrimSpace(name+" "+why))
		return
	}
	s := decode[rhizome.Infrastructure](o).Spec
	fmt.Fprintf(d.w, " %s\n", name)
	p := newPage(&indenter{w: d.w})
	if st := s.Storage; st != nil {
		p.kv("storage", strings.Join(nonEmpty(st.Type, st.Format, "at "+st.Location, "retention "+st.Retention), ", "))
	}
	if pr := s.Processing; pr != nil {
		p.kv("processing", strings.Join(nonEmpty(pr.Engine, pr.Version), " "))
	}
	if or := s.Orchestration; or != nil {
		p.kv("orchestration", strings.Join(nonEmpty(or.Tool, "schedule "+strconv.Quote(or.Schedule), "timeout "+or.Timeout), ", "))
	}
	if q := s.Quality; q != nil {
		var checks []string
		for _, c := range q.Checks {
			name := c.Name
			if c.Column != "" {
				name += "(" + c.Column + ")"
			}
			checks = append(checks, strings.TrimSpace(name+" "+c.Threshold))
		}
		p.kv("quality checks", strings.Join(checks, "; "))
	}
	p.flush()
}

// members prints a team's members with their roles.
func (d *describer) members(teamID, role string) {
	o, why := d.related(rhizome.KindTeam, teamID)
	fmt.Fprintf(d.w, "  %s (%s)", teamID, role)
	if o == nil {
		fmt.Fprintf(d.w, " %s\n", why)
		return
	}
	fmt.Fprintln(d.w)
	t := newTable(&indenter{w: d.w, prefix: "    "})
	for _, m := range decode[rhizome.Team](o).Members {
		t.row(m.Principal, m.Name, list(m.Roles))
	}
	t.flush()
}

func (d *describer) domain(o *rhizome.Object) {
	dom := decode[rhizome.Domain](o)
	p := newPage(d.w)
	p.kv("Domain", o.ID)
	p.kv("Name", dom.DisplayName)
	p.kv("Description", dom.Description)
	p.kv("Owner teams", list(dom.OwnerTeams))
	p.kv("Bounded context", dom.BoundedContext.Description)
	p.kv("Entities", list(dom.BoundedContext.Entities))
	p.kv("Capabilities", list(dom.BusinessCapabilities))
	p.kv("Upstream domains", list(dom.UpstreamDomains))
	p.kv("Downstream domains", list(dom.DownstreamDomains))
	p.kv("Revision", fmt.Sprintf("%d, updated %s by %s", o.Revision, timeString(o.UpdatedAt), o.UpdatedBy))
	p.flush()
	d.objects("Teams", rhizome.KindTeam, client.ListOptions{Domain: o.ID})
	d.objects("Products", rhizome.KindDataProduct, client.ListOptions{Domain: o.ID})
}

func (d *describer) team(o *rhizome.Object) {
	t := decode[rhizome.Team](o)
	p := newPage(d.w)
	p.kv("Team", o.ID)
	p.kv("Name", t.DisplayName)
	p.kv("Domain", t.Domain)
	p.kv("Description", t.Description)
	p.kv("On call", t.OnCallRotation)
	p.kv("Escalation", list(t.EscalationPath))
	p.kv("Channel", t.CommunicationChannel)
	p.kv("Revision", fmt.Sprintf("%d, updated %s by %s", o.Revision, timeString(o.UpdatedAt), o.UpdatedBy))
	p.flush()
	d.section("Members")
	fmt.Fprintln(d.w)
	tb := newTable(&indenter{w: d.w})
	for _, m := range t.Members {
		tb.row(m.Principal, m.Name, list(m.Roles))
	}
	tb.flush()
	d.none(len(t.Members) == 0)
	d.objects("Products owned", rhizome.KindDataProduct, client.ListOptions{OwnerTeam: o.ID})
}

// objects lists related objects by id and name.
func (d *describer) objects(title string, kind rhizome.Kind, opt client.ListOptions) {
	d.section(title)
	objs, why := d.listed(kind, opt)
	if objs == nil {
		fmt.Fprintf(d.w, " %s\n", why)
		return
	}
	fmt.Fprintln(d.w)
	headers, row := columns(kind)
	t := newTable(&indenter{w: d.w}, headers...)
	for _, o := range objs {
		t.row(row(o)...)
	}
	t.flush()
}

// indenter prefixes every line written through it (default two spaces).
type indenter struct {
	w      io.Writer
	prefix string
	mid    bool // in the middle of a line
}

func (in *indenter) Write(b []byte) (int, error) {
	prefix := in.prefix
	if prefix == "" {
		prefix = "  "
	}
	var out []byte
	for _, c := range b {
		if !in.mid {
			out = append(out, prefix...)
			in.mid = true
		}
		out = append(out, c)
		if c == '\n' {
			in.mid = false
		}
	}
	if _, err := in.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// nonEmpty drops empty parts, and parts like "at " whose value is empty.
func nonEmpty(parts ...string) []string {
	var out []string
	for _, s := range parts {
		if s == "" || strings.HasSuffix(s, " ") || strings.HasSuffix(s, ` ""`) {
			continue
		}
		out = append(out, s)
	}
	return out
}

func configString(cfg map[string]any) string {
	var parts []string
	for _, k := range sortedKeys(cfg) {
		parts = append(parts, fmt.Sprintf("%s=%v", k, cfg[k]))
	}
	return strings.Join(parts, " ")
}
