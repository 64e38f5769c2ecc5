package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/robfig/cron/v3"

	"github.com/rhizome-mesh/rhizome"
)

// idPath is the field that holds each kind's id.
func idPath(k rhizome.Kind) string {
	switch k {
	case rhizome.KindDataProduct, rhizome.KindDataContract:
		return "id"
	case rhizome.KindInfrastructure:
		return "metadata.name"
	}
	return "name"
}

// idOf reads a document's id from its decoded tree (before the schema has
// passed, so duplicates and references are found even in bad documents).
func idOf(k rhizome.Kind, root *node) string {
	n := root
	for _, seg := range strings.Split(idPath(k), ".") {
		n = n.get(seg)
	}
	if n == nil || n.kind != kString {
		return ""
	}
	return n.text
}

// decodeValue fills d.Value with the kind's typed manifest.
func decodeValue(d *Document) error {
	switch d.Kind {
	case rhizome.KindDomain:
		return decodeInto(d, &rhizome.Domain{})
	case rhizome.KindTeam:
		// escalation_path may be a single string; Value always has a list.
		var w struct {
			rhizome.Team
			EscalationPath any `json:"escalation_path,omitempty"`
		}
		err := json.Unmarshal(d.Body, &w)
		t := w.Team
		d.Value = &t
		switch p := w.EscalationPath.(type) {
		case string:
			t.EscalationPath = []string{p}
		case []any:
			for _, x := range p {
				if s, ok := x.(string); ok {
					t.EscalationPath = append(t.EscalationPath, s)
				}
			}
		}
		return err
	case rhizome.KindDataProduct:
		return decodeInto(d, &rhizome.DataProduct{})
	case rhizome.KindDataContract:
		return decodeInto(d, &rhizome.Contract{})
	case rhizome.KindInfrastructure:
		return decodeInto(d, &rhizome.Infrastructure{})
	case rhizome.KindPolicy:
		return decodeInto(d, &rhizome.Policy{})
	}
	return fmt.Errorf("no type for kind %s", d.Kind)
}

// decodeInto fills v as far as the body allows: encoding/json skips a
// field of the wrong type and reports the first, which the schema has
// reported already.
func decodeInto[T any](d *Document, v *T) error {
	d.Value = v
	return json.Unmarshal(d.Body, v)
}

// LabelsOf derives the labels that lists filter on and authorization reads.
func LabelsOf(d *Document) rhizome.Labels {
	var l rhizome.Labels
	switch v := d.Value.(type) {
	case *rhizome.DataProduct:
		l = rhizome.Labels{Domain: v.Domain, OwnerTeam: v.OwnerTeam, Sensitivity: v.SensitivityLevel, Tags: v.Tags}
	case *rhizome.Team:
		l.Domain = v.Domain
		for _, m := range v.Members {
			l.Members = append(l.Members, m.Principal)
		}
	case *rhizome.Domain:
		l = rhizome.Labels{Domain: v.Name, Owners: v.OwnerTeams}
	case *rhizome.Contract:
		l = rhizome.Labels{Domain: v.Domain, Tags: v.Tags}
	case *rhizome.Infrastructure:
		l.Domain = v.Metadata.Namespace
	case *rhizome.Policy:
		l.Domain = v.Domain
	}
	l.Normalize()
	return l
}

// checker collects the semantic problems of one document.
type checker struct {
	d        *Document
	problems []rhizome.Problem
}

func (c *checker) add(path, msg, hint string) {
	c.problems = append(c.problems, rhizome.Problem{Pos: c.d.posOf(path), Path: path, Message: msg, Hint: hint})
}

// value reports a valueError (from the parsers) at path.
func (c *checker) value(path string, err error) {
	var ve *valueError
	if errors.As(err, &ve) {
		c.add(path, ve.message(), ve.hint())
		return
	}
	c.add(path, err.Error(), "")
}

func (c *checker) has(path string) bool {
	_, ok := c.d.positions[path]
	return ok
}

// semanticChecks runs the checks a schema cannot express.
func semanticChecks(d *Document) []rhizome.Problem {
	c := &checker{d: d}
	switch v := d.Value.(type) {
	case *rhizome.Domain:
		c.domain(v)
	case *rhizome.Team:
		c.team(v)
	case *rhizome.DataProduct:
		c.product(v)
	case *rhizome.Contract:
		c.contract(v)
	case *rhizome.Infrastructure:
		c.infrastructure(v)
	case *rhizome.Policy:
		c.policy(v)
	}
	return c.problems
}

// uniqueStrings reports repeats in a list field, case-insensitively.
func (c *checker) uniqueStrings(path string, list []string, what string) {
	seen := map[string]int{}
	for i, s := range list {
		k := strings.ToLower(strings.TrimSpace(s))
		if j, ok := seen[k]; ok {
			c.add(fmt.Sprintf("%s[%d]", path, i), fmt.Sprintf("%s `%s` is listed twice", what, s),
				fmt.Sprintf("it is already at %s[%d]; remove one", path, j))
			continue
		}
		seen[k] = i
	}
}

func (c *checker) domain(v *rhizome.Domain) {
	c.uniqueStrings("bounded_context.entities", v.BoundedContext.Entities, "entity")
	for _, f := range []struct {
		path string
		list []string
	}{{"upstream_domains", v.UpstreamDomains}, {"downstream_domains", v.DownstreamDomains}} {
		for i, s := range f.list {
			if s == v.Name {
				c.add(fmt.Sprintf("%s[%d]", f.path, i), "a domain cannot depend on itself", "remove `"+s+"`")
			}
		}
	}
}

func (c *checker) team(v *rhizome.Team) {
	seen := map[string]int{}
	for i, m := range v.Members {
		if j, ok := seen[m.Principal]; ok {
			c.add(fmt.Sprintf("members[%d].principal", i), fmt.Sprintf("principal `%s` is a member twice", m.Principal),
				fmt.Sprintf("merge its roles into members[%d]", j))
			continue
		}
		seen[m.Principal] = i
	}
}

var productIDRe = regexp.MustCompile(`^dp\.[a-z][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)+$`)

func (c *checker) product(v *rhizome.DataProduct) {
	if productIDRe.MatchString(v.ID) && v.Domain != "" {
		segs := strings.SplitN(v.ID, ".", 3)
		if segs[1] != v.Domain {
			c.add("id", fmt.Sprintf("id `%s` is not in domain `%s`", v.ID, v.Domain),
				fmt.Sprintf("a product id is dp.<domain>.<name>: `dp.%s.%s`, or set `domain: %s`", v.Domain, segs[2], segs[1]))
		}
	}
	if v.SLA.Freshness != "" {
		if _, err := ParseDuration(v.SLA.Freshness); err != nil {
			c.value("sla.freshness", err)
		}
	}
	for _, f := range []struct{ path, s string }{{"sla.availability", v.SLA.Availability}, {"sla.accuracy", v.SLA.Accuracy}} {
		if f.s != "" {
			if _, err := ParsePercent(f.s); err != nil {
				c.value(f.path, err)
			}
		}
	}
	c.versions(v)
	ports := map[string]string{}
	port := func(path, name string) {
		if prev, ok := ports[name]; ok {
			c.add(path+".name", fmt.Sprintf("port name `%s` is used twice", name), "it is already used at "+prev+"; port names are unique within a product")
			return
		}
		ports[name] = path
	}
	for i, p := range v.InputPorts {
		path := fmt.Sprintf("input_ports[%d]", i)
		port(path, p.Name)
		switch {
		case p.Product != "" && p.Connector != "":
			c.add(path+".connector", "an input port has both `product` and `connector`",
				"an input port reads an upstream data product (`product`) or a source system (`connector`): keep one")
		case p.Product == "" && p.Connector == "":
			c.add(path, "an input port needs `product` or `connector`",
				"set `product:` to an upstream data product id, or `connector:` to read a source system (csv, parquet, json, http, postgres, ...)")
		case p.Product == v.ID:
			c.add(path+".product", "a product cannot read itself", "name an upstream data product")
		case p.Connector != "" && p.Version != "":
			c.add(path+".version", "`version` pins an upstream product; a connector port has none", "remove `version`")
		}
	}
	for i, p := range v.OutputPorts {
		port(fmt.Sprintf("output_ports[%d]", i), p.Name)
	}
	if v.Pipeline != nil {
		c.pipeline(v)
	}
}

func (c *checker) pipeline(v *rhizome.DataProduct) {
	p := v.Pipeline
	inputs := map[string]bool{}
	for _, in := range v.InputPorts {
		inputs[in.Name] = true
	}
	models := map[string]int{}
	for i, m := range p.Models {
		path := fmt.Sprintf("pipeline.models[%d].name", i)
		if j, ok := models[m.Name]; ok {
			c.add(path, fmt.Sprintf("model `%s` is defined twice", m.Name), fmt.Sprintf("it is already pipeline.models[%d]; model names are unique", j))
			continue
		}
		if inputs[m.Name] {
			c.add(path, fmt.Sprintf("model `%s` has the name of an input port", m.Name), "models and input ports share one namespace in SQL: rename the model")
		}
		models[m.Name] = i
	}
	if p.Output != "" {
		if _, ok := models[p.Output]; !ok {
			c.add("pipeline.output", fmt.Sprintf("no model named `%s`", p.Output), "name one of pipeline.models, or leave it out to publish the last model")
		}
	}
	switch {
	case p.Mode == "merge" && len(p.MergeKey) == 0:
		c.add("pipeline.merge_key", "mode merge needs merge_key", "list the columns that identify a row, e.g. [customer_id]")
	case p.Mode != "merge" && len(p.MergeKey) > 0:
		c.add("pipeline.merge_key", "merge_key is only read with mode merge", "set `mode: merge`, or remove merge_key")
	}
	if p.Timeout != "" {
		if _, err := ParseDuration(p.Timeout); err != nil {
			c.value("pipeline.timeout", err)
		}
	}
	if p.Schedule != "" {
		if _, err := cron.ParseStandard(p.Schedule); err != nil {
			c.add("pipeline.schedule", fmt.Sprintf("%q is not a cron schedule: %v", p.Schedule, err), `want 5 fields: minute hour day-of-month month day-of-week, e.g. "0 */6 * * *"`)
		}
	}
}

func (c *checker) versions(v *rhizome.DataProduct) {
	cur, err := parseSemver(v.CurrentVersion)
	// An empty current_version is the schema's problem (missing, or not a
	// string such as an unquoted 1.0): say it once, there.
	if err != nil && v.CurrentVersion != "" {
		c.value("current_version", err)
	}
	seen := map[string]int{}
	for i, pv := range v.PreviousVersions {
		path := fmt.Sprintf("previous_versions[%d]", i)
		p, perr := parseSemver(pv)
		switch {
		case perr != nil:
			c.value(path, perr)
		case err != nil:
		case p.compare(cur) == 0:
			c.add(path, fmt.Sprintf("%s is the current version", pv), "list only earlier versions in previous_versions")
		case p.compare(cur) > 0:
			c.add(path, fmt.Sprintf("%s is newer than current_version %s", pv, v.CurrentVersion),
				"previous versions are lower than current_version; did you mean to set `current_version: "+pv+"`?")
		}
		if j, ok := seen[pv]; ok && perr == nil {
			c.add(path, fmt.Sprintf("%s is listed twice", pv), fmt.Sprintf("it is already at previous_versions[%d]", j))
		}
		seen[pv] = i
	}
}

func (c *checker) contract(v *rhizome.Contract) {
	if strings.HasPrefix(v.APIVersion, "v2.") {
		c.add("apiVersion", fmt.Sprintf("ODCS %s contracts are not supported", v.APIVersion),
			"migrate the contract to ODCS v3: want `apiVersion: v3.1.0`")
	}
}

// InfraCheckNames are the check names spec.quality.checks[].name takes
// (the enum of the infrastructure schema; quality's tests keep it equal to
// the registered check types).
var InfraCheckNames = map[string]bool{
	"row_count": true, "null_count": true, "null_percentage": true, "duplicate_count": true, "duplicate_percentage": true,
	"freshness": true, "accepted_values": true, "min": true, "max": true, "range": true, "regex": true, "format": true,
	"length": true, "referential_integrity": true, "schema": true, "schema_change": true, "custom_sql": true,
	"anomaly": true, "drift": true,
}

// Quality check names (spec.quality.checks[].name) that read one column.
var columnChecks = map[string]bool{
	"null_count": true, "null_percentage": true, "duplicate_count": true, "duplicate_percentage": true,
}

func (c *checker) infrastructure(v *rhizome.Infrastructure) {
	s := v.Spec
	if s.Storage != nil && s.Storage.Retention != "" {
		if _, err := ParseDuration(s.Storage.Retention); err != nil {
			c.value("spec.storage.retention", err)
		}
	}
	if p := s.Processing; p != nil && c.has("spec.processing.min_workers") && c.has("spec.processing.max_workers") && p.MinWorkers > p.MaxWorkers {
		c.add("spec.processing.min_workers", fmt.Sprintf("min_workers (%d) is more than max_workers (%d)", p.MinWorkers, p.MaxWorkers),
			"min_workers must be at most max_workers")
	}
	if o := s.Orchestration; o != nil {
		if o.Schedule != "" {
			if _, err := cron.ParseStandard(o.Schedule); err != nil {
				msg, _, _ := strings.Cut(err.Error(), ": [")
				c.add("spec.orchestration.schedule", fmt.Sprintf("%q is not a cron schedule: %s", o.Schedule, msg),
					`want 5 fields (minute hour day-of-month month day-of-week), e.g. "0 */6 * * *" for every 6 hours`)
			}
		}
		if o.Timeout != "" {
			if _, err := ParseDuration(o.Timeout); err != nil {
				c.value("spec.orchestration.timeout", err)
			}
		}
	}
	if s.Quality == nil {
		return
	}
	for i, ch := range s.Quality.Checks {
		path := fmt.Sprintf("spec.quality.checks[%d]", i)
		if !InfraCheckNames[ch.Name] {
			continue // the schema reports the unknown name; nothing more to say
		}
		if columnChecks[ch.Name] && ch.Column == "" && len(ch.Columns) == 0 {
			c.add(path, fmt.Sprintf("check `%s` needs `column`", ch.Name), "add `column:` naming the column to check")
		}
		if ch.Threshold == "" {
			continue
		}
		th, err := ParseThreshold(ch.Threshold)
		switch {
		case err != nil:
			c.value(path+".threshold", err)
		case ch.Name == "freshness" && !th.IsDuration:
			c.add(path+".threshold", fmt.Sprintf("a freshness threshold is a duration, not %q", ch.Threshold),
				`want e.g. "< 24 hours"`)
		case ch.Name != "freshness" && th.IsDuration:
			c.add(path+".threshold", fmt.Sprintf("%q is a duration; only a freshness check takes one", ch.Threshold),
				`want a number or a percentage, e.g. "> 1000" or "< 1%"`)
		}
	}
}

func (c *checker) policy(v *rhizome.Policy) {
	switch v.Scope {
	case "domain":
		if v.Domain == "" {
			c.add("domain", "a `scope: domain` policy needs `domain`", "add `domain:` naming the Domain that owns the policy")
		}
	case "global":
		if v.Domain != "" {
			c.add("domain", "a global policy has no `domain`", "remove `domain`, or set `scope: domain`")
		}
	}
	if len(v.DomainsApplicable) > 1 {
		for i, s := range v.DomainsApplicable {
			if s == "all" {
				c.add("domains_applicable["+strconv.Itoa(i)+"]", "`all` cannot be combined with named domains",
					"write either [\"all\"] or a list of domains")
			}
		}
	}
}
