package quality

import (
	"fmt"
	"sort"
	"strings"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/spec"
)

// Where checks come from: the infrastructure manifest's
// spec.quality.checks, the seed's map syntax in a product manifest, and an
// ODCS v3.1 contract (contract.go). Each constructor reports every problem
// at once, with the field path where it was declared.

// Sources.
const (
	SourceManifest       = "manifest"
	SourceInfrastructure = "infrastructure"
	SourceContract       = "contract"
)

// FromInfra reads DataProductInfrastructure spec.quality.checks.
func FromInfra(in []rhizome.InfraCheck) ([]Check, []rhizome.Problem) {
	var out []Check
	var probs []rhizome.Problem
	names := namer{}
	for i, ic := range in {
		c := Check{
			Type: ic.Name, Column: ic.Column, Columns: ic.Columns, Where: ic.Where, Severity: ic.Severity,
			Source: SourceInfrastructure, Path: fmt.Sprintf("spec.quality.checks[%d]", i),
		}
		if len(ic.Settings) > 0 {
			c.Args = make(map[string]any, len(ic.Settings))
			for k, v := range ic.Settings {
				c.Args[k] = v
			}
		}
		if p, ok := setThreshold(&c, ic.Threshold); !ok {
			probs = append(probs, p)
			continue
		}
		c.Name = names.name(c.Type, c.Column)
		if ps := settle(&c); len(ps) > 0 {
			probs = append(probs, ps...)
			continue
		}
		out = append(out, c)
	}
	return out, probs
}

// FromSpec reads the seed's product syntax: a map from check type to a
// threshold string, a map of settings, or a list of such maps:
//
//	row_count: "> 1000"
//	null_percentage: {column: customer_id, threshold: "< 1%"}
//	freshness: "< 24 hours"
//	accepted_values: [{column: status, values: [open, closed]}]
//
// Settings other than column, columns, where, threshold, severity, name
// and type go to Args. Paths are relative to the map (the caller
// prefixes its own location).
func FromSpec(m map[string]any) ([]Check, []rhizome.Problem) {
	var out []Check
	var probs []rhizome.Problem
	names := namer{}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	add := func(c Check) {
		if c.Name == "" {
			c.Name = names.name(c.Type, c.Column)
		} else {
			names.taken(c.Name)
		}
		if ps := settle(&c); len(ps) > 0 {
			probs = append(probs, ps...)
			return
		}
		out = append(out, c)
	}
	for _, k := range keys {
		switch v := m[k].(type) {
		case string:
			c := Check{Type: k, Source: SourceManifest, Path: k}
			if p, ok := setThreshold(&c, v); !ok {
				p.Path = k
				probs = append(probs, p)
				continue
			}
			add(c)
		case map[string]any:
			if c, p, ok := fromSettings(k, k, v); ok {
				add(c)
			} else {
				probs = append(probs, p...)
			}
		case []any:
			for i, e := range v {
				path := fmt.Sprintf("%s[%d]", k, i)
				s, ok := e.(map[string]any)
				if !ok {
					probs = append(probs, rhizome.Problem{Path: path, Message: "want a map of settings", Hint: "e.g. {column: id, threshold: \"== 0\"}"})
					continue
				}
				if c, p, ok := fromSettings(k, path, s); ok {
					add(c)
				} else {
					probs = append(probs, p...)
				}
			}
		default:
			probs = append(probs, rhizome.Problem{Path: k, Message: fmt.Sprintf("want a threshold string or a map of settings, not %T", v),
				Hint: `e.g. row_count: "> 1000" or null_percentage: {column: id, threshold: "< 1%"}`})
		}
	}
	return out, probs
}

func fromSettings(typ, path string, s map[string]any) (Check, []rhizome.Problem, bool) {
	c := Check{Type: typ, Source: SourceManifest, Path: path}
	var probs []rhizome.Problem
	str := func(k string) string {
		v, ok := s[k]
		if !ok || v == nil {
			return ""
		}
		if x, ok := v.(string); ok {
			return x
		}
		probs = append(probs, rhizome.Problem{Path: path + "." + k, Message: fmt.Sprintf("want a string, not %v", v)})
		return ""
	}
	c.Name = str("name")
	if t := str("type"); t != "" {
		c.Type = t
		if c.Name == "" {
			c.Name = typ // the key names the check
		}
	}
	c.Column = str("column")
	c.Where = str("where")
	c.Severity = str("severity")
	if cs, ok := s["columns"]; ok && c.Type == "schema" {
		c.Args = map[string]any{"columns": cs} // the declared list, maps or names
	} else if ok {
		l, _ := cs.([]any)
		for _, x := range l {
			if xs, ok := x.(string); ok {
				c.Columns = append(c.Columns, xs)
			}
		}
		if len(c.Columns) != len(l) || len(l) == 0 {
			probs = append(probs, rhizome.Problem{Path: path + ".columns", Message: "want a list of column names"})
		}
	}
	for k, v := range s {
		switch k {
		case "type", "name", "column", "columns", "where", "severity", "threshold":
		default:
			if c.Args == nil {
				c.Args = map[string]any{}
			}
			c.Args[k] = v
		}
	}
	if th, ok := s["threshold"]; ok {
		ts, isStr := th.(string)
		if !isStr {
			ts = fmt.Sprint(th)
		}
		if p, ok := setThreshold(&c, ts); !ok {
			probs = append(probs, p)
		}
	}
	return c, probs, len(probs) == 0
}

// settle compiles c in place: canonical type name, severity and default
// threshold filled in; it returns the problems if c does not compile.
func settle(c *Check) []rhizome.Problem {
	if _, _, err := compile(c, "t"); err != nil {
		if ps := rhizome.ProblemsOf(err); len(ps) > 0 {
			return ps
		}
		return []rhizome.Problem{c.problem("", err.Error(), "")}
	}
	return nil
}

// setThreshold parses text into c ("" leaves the type's default).
func setThreshold(c *Check, text string) (rhizome.Problem, bool) {
	if strings.TrimSpace(text) == "" {
		return rhizome.Problem{}, true
	}
	th, err := spec.ParseThreshold(text)
	if err != nil {
		msg, hint, _ := strings.Cut(err.Error(), "; ")
		if t, ok := Lookup(c.Type); ok && t.Name == "freshness" && !strings.Contains(hint, "hour") {
			hint = `want an age, e.g. "< 24 hours", "<= 15 min", "< 2 days"`
		}
		return c.problem("threshold", msg, hint), false
	}
	c.Threshold, c.ThresholdText = th, text
	return rhizome.Problem{}, true
}

// namer hands out unique check names: type, type.column, then #2, #3.
type namer map[string]bool

func (n namer) taken(s string) { n[s] = true }

func (n namer) name(parts ...string) string {
	var ps []string
	for _, p := range parts {
		if p != "" {
			ps = append(ps, p)
		}
	}
	base := strings.Join(ps, ".")
	name := base
	for i := 2; n[name]; i++ {
		name = fmt.Sprintf("%s#%d", base, i)
	}
	n[name] = true
	return name
}

type thresholdT = spec.Threshold

var parseThreshold = spec.ParseThreshold
