package qreport

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/internal/nearest"
	"github.com/rhizome-mesh/rhizome/quality"
)

// Suite is the checks of one product's output, gathered from the three
// places a team declares them.
type Suite struct {
	Checks []quality.Check
	// Object is the contract schema object the checks are for ("" when
	// the product has no contract or none of its objects matches).
	Object string
	// Columns are the object's declared columns (nil: unknown).
	Columns []string
	// Masked are columns whose samples are masked: classified pii,
	// sensitive, restricted or confidential in the contract, or tagged pii.
	Masked []string
	// Products names the products that referential_integrity checks read
	// (args.product, else args.table naming a product id), by check name.
	Products map[string]string
}

// Sources is what Gather reads; nil parts are absent.
type Sources struct {
	Product        *rhizome.DataProduct
	Infrastructure *rhizome.Infrastructure
	Contract       json.RawMessage // the ODCS document as applied
}

// Gather collects a product's checks: its manifest's `quality` map (field
// paths prefixed "quality."), its infrastructure's spec.quality.checks and
// its contract's quality rules for the output object (the schema object
// named like the output model, else like its first table output port,
// else the contract's only object). A name used by two sources gets the
// later source as a suffix ("row_count#infrastructure"). Problems carry the
// declaring source in their path: "quality.", "spec.quality.checks[i]" or
// the contract's "schema[i]...".
func Gather(src Sources) (*Suite, []Problem) {
	s := &Suite{Products: map[string]string{}}
	var probs []Problem
	taken := map[string]bool{}
	add := func(cs []quality.Check, source string) {
		for _, c := range cs {
			if taken[c.Name] {
				c.Name += "#" + source
			}
			taken[c.Name] = true
			s.Checks = append(s.Checks, c)
		}
	}
	if dp := src.Product; dp != nil && len(dp.Quality) > 0 {
		cs, ps := quality.FromSpec(dp.Quality)
		for i := range cs {
			cs[i].Path = "quality." + cs[i].Path
		}
		// FromSpec keeps extra settings in Args; in the manifest they sit
		// beside column and threshold.
		for i := range ps {
			ps[i].Path = strings.Replace(ps[i].Path, ".args.", ".", 1)
		}
		add(cs, quality.SourceManifest)
		probs = append(probs, tag(quality.SourceManifest, prefix("quality.", ps))...)
	}
	if inf := src.Infrastructure; inf != nil && inf.Spec.Quality != nil {
		cs, ps := quality.FromInfra(inf.Spec.Quality.Checks)
		add(cs, quality.SourceInfrastructure)
		probs = append(probs, tag(quality.SourceInfrastructure, ps)...)
	}
	if len(src.Contract) > 0 {
		objs := contractObjects(src.Contract)
		s.Object = pickObject(objs, src.Product)
		cs, ps := quality.FromContract(src.Contract)
		if s.Object != "" {
			cs = quality.ForObject(cs, s.Object)
		}
		add(cs, quality.SourceContract)
		probs = append(probs, tag(quality.SourceContract, ps)...)
		for _, o := range objs {
			if strings.EqualFold(o.name(), s.Object) {
				s.Columns = []string{}
				for _, p := range o.Properties {
					s.Columns = append(s.Columns, p.name())
					if p.masked() {
						s.Masked = append(s.Masked, p.name())
					}
				}
			}
		}
	}
	for _, c := range s.Checks {
		if c.Type == "referential_integrity" {
			if _, t := refProduct(c); IsProductID(t) {
				s.Products[c.Name] = t
			}
		}
	}
	return s, probs
}

// refProduct is the product a referential_integrity check reads and the
// field that names it: `product`, else `table` (the guide's spelling).
func refProduct(c quality.Check) (field, id string) {
	if p, _ := c.Args["product"].(string); strings.TrimSpace(p) != "" {
		return "product", strings.TrimSpace(p)
	}
	t, _ := c.Args["table"].(string)
	return "table", strings.TrimSpace(t)
}

// Problem is an input problem with the source that declared it
// (manifest, infrastructure or contract).
type Problem struct {
	rhizome.Problem
	Source string
}

func tag(source string, ps []rhizome.Problem) []Problem {
	out := make([]Problem, len(ps))
	for i, p := range ps {
		out[i] = Problem{p, source}
	}
	return out
}

func prefix(pre string, ps []rhizome.Problem) []rhizome.Problem {
	for i := range ps {
		if ps[i].Path == "" {
			ps[i].Path = strings.TrimSuffix(pre, ".")
		} else {
			ps[i].Path = pre + ps[i].Path
		}
	}
	return ps
}

// IsProductID says whether s names a data product (dp.<domain>.<name>).
func IsProductID(s string) bool {
	return strings.HasPrefix(s, "dp.") && strings.Count(s, ".") >= 2
}

type contractObject struct {
	Name         string             `json:"name"`
	PhysicalName string             `json:"physicalName"`
	Properties   []contractProperty `json:"properties"`
}

func (o contractObject) name() string {
	if o.PhysicalName != "" {
		return o.PhysicalName
	}
	return o.Name
}

type contractProperty struct {
	Name           string   `json:"name"`
	PhysicalName   string   `json:"physicalName"`
	Classification string   `json:"classification"`
	Tags           []string `json:"tags"`
}

func (p contractProperty) name() string {
	if p.PhysicalName != "" {
		return p.PhysicalName
	}
	return p.Name
}

func (p contractProperty) masked() bool {
	switch strings.ToLower(p.Classification) {
	case "pii", "sensitive", "restricted", "confidential":
		return true
	}
	for _, t := range p.Tags {
		if strings.EqualFold(t, "pii") {
			return true
		}
	}
	return false
}

func contractObjects(doc json.RawMessage) []contractObject {
	var c struct {
		Schema []contractObject `json:"schema"`
	}
	_ = json.Unmarshal(doc, &c)
	return c.Schema
}

// pickObject chooses the contract object that describes the product's
// output: named like the output model, else like its first table output
// port, else the only object.
func pickObject(objs []contractObject, dp *rhizome.DataProduct) string {
	var want []string
	if dp != nil {
		if dp.Pipeline != nil {
			want = append(want, dp.Pipeline.OutputModel())
		}
		for _, p := range dp.OutputPorts {
			if p.Type == "table" {
				want = append(want, p.Name)
				break
			}
		}
	}
	for _, w := range want {
		for _, o := range objs {
			if w != "" && (strings.EqualFold(o.Name, w) || strings.EqualFold(o.PhysicalName, w)) {
				return o.name()
			}
		}
	}
	if len(objs) == 1 {
		return objs[0].name()
	}
	return ""
}

// Validate compiles a suite's checks against its known columns (when the
// contract declares them) and returns every problem with its source:
// unknown types and columns, bad thresholds and durations, custom SQL that
// is not one SELECT or reads files, and referential_integrity checks whose
// product does not exist (exists nil: not checked).
func (s *Suite) Validate(exists func(productID string) bool) []Problem {
	var probs []Problem
	bySource := map[string][]quality.Check{}
	for _, c := range s.Checks {
		bySource[c.Source] = append(bySource[c.Source], c)
	}
	for _, src := range []string{quality.SourceManifest, quality.SourceInfrastructure, quality.SourceContract} {
		cs := bySource[src]
		if len(cs) == 0 {
			continue
		}
		cols := s.Columns
		if src == quality.SourceContract {
			cols = nil // a contract's own schema check reports missing columns at run time
		}
		ps := quality.Validate(cs, cols)
		if src == quality.SourceManifest {
			for i := range ps {
				ps[i].Path = strings.Replace(ps[i].Path, ".args.", ".", 1)
			}
		}
		probs = append(probs, tag(src, ps)...)
	}
	names := map[string]bool{}
	for _, c := range s.Checks {
		names[c.Name] = true
	}
	for _, c := range s.Checks {
		if t, ok := quality.Lookup(c.Type); ok && t.Name == "anomaly" {
			if ref, _ := c.Args["check"].(string); ref != "" && !names[ref] {
				var all []string
				for _, o := range s.Checks {
					if o.Name != c.Name {
						all = append(all, o.Name)
					}
				}
				probs = append(probs, Problem{rhizome.Problem{Path: join(c.Path, "check"), Message: fmt.Sprintf("anomaly watches check %q, which the product does not declare", ref),
					Hint: nearest.Hint(ref, all)}, c.Source})
			}
		}
		if c.Type != "referential_integrity" {
			continue
		}
		field, t := refProduct(c)
		if !IsProductID(t) {
			probs = append(probs, Problem{rhizome.Problem{Path: join(c.Path, field), Message: fmt.Sprintf("referential_integrity reads a data product: %q is not a product id", t),
				Hint: "write `product: dp.<domain>.<name>`"}, c.Source})
			continue
		}
		if exists != nil && !exists(t) {
			probs = append(probs, Problem{rhizome.Problem{Path: join(c.Path, field), Message: fmt.Sprintf("no data product %s", t),
				Hint: "name an applied data product, or apply it in the same request"}, c.Source})
		}
	}
	return probs
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// ContractObjects lists the names (physicalName, else name) of a
// contract's schema objects.
func ContractObjects(doc json.RawMessage) []string {
	var out []string
	for _, o := range contractObjects(doc) {
		out = append(out, o.name())
	}
	return out
}

// MaskedColumns lists the columns of a contract's schema object whose
// sampled values are masked (classified pii, sensitive, restricted or
// confidential, or tagged pii).
func MaskedColumns(doc json.RawMessage, object string) []string {
	var out []string
	for _, o := range contractObjects(doc) {
		if !strings.EqualFold(o.name(), object) {
			continue
		}
		for _, p := range o.Properties {
			if p.masked() {
				out = append(out, p.name())
			}
		}
	}
	return out
}
