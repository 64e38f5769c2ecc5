package quality

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/rhizome-mesh/rhizome"
)

// ODCS v3.1 quality rules, read with the semantics datacontract-cli users
// expect:
//
//   - metric nullValues / missingValues: null_count, or null_percentage with
//     unit: percent; missingValues takes arguments.missingValues (values
//     that count as missing besides NULL).
//   - metric duplicateValues: duplicate_count (or _percentage); at schema
//     level arguments.properties names the key columns.
//   - metric invalidValues: accepted_values with arguments.validValues,
//     regex with arguments.pattern (both given: two checks).
//   - metric rowCount: row_count.
//   - type: sql: custom_sql, {object} replaced by the table; the query
//     returns one number.
//   - type: text and type: custom (engine-specific) are documentation here
//     and are skipped.
//   - mustBe, mustNotBe, mustBeGreaterThan, mustBeGreaterOrEqualTo,
//     mustBeLessThan, mustBeLessOrEqualTo, mustBeBetween, mustNotBeBetween;
//     without one (the ODCS schema refuses that; FromContract alone
//     would take counts of bad values == 0 and rowCount > 0).
//   - severity: error (default) or warning/info (warn).
//
// Each schema object also gets a schema check (its properties present,
// physicalType matching), a null_count per required property and a
// duplicate_count per unique property, as datacontract-cli does.

type odcsContract struct {
	Schema []odcsObject `json:"schema"`
}

type odcsObject struct {
	Name         string         `json:"name"`
	PhysicalName string         `json:"physicalName"`
	Properties   []odcsProperty `json:"properties"`
	Quality      []odcsRule     `json:"quality"`
}

type odcsProperty struct {
	Name         string     `json:"name"`
	PhysicalName string     `json:"physicalName"`
	PhysicalType string     `json:"physicalType"`
	Required     bool       `json:"required"`
	Unique       bool       `json:"unique"`
	Quality      []odcsRule `json:"quality"`
}

type odcsRule map[string]any

var thresholdKeys = map[string]string{
	"mustBe": "==", "mustNotBe": "!=",
	"mustBeGreaterThan": ">", "mustBeGreaterOrEqualTo": ">=", "mustBeGreaterThanOrEqualTo": ">=",
	"mustBeLessThan": "<", "mustBeLessOrEqualTo": "<=", "mustBeLessThanOrEqualTo": "<=",
}

// FromContract reads an ODCS v3.1 contract (as JSON) into checks; each
// check's Object names its schema object (see ForObject).
func FromContract(contract json.RawMessage) ([]Check, []rhizome.Problem) {
	var doc odcsContract
	if err := json.Unmarshal(contract, &doc); err != nil {
		return nil, []rhizome.Problem{{Message: "the contract is not valid ODCS: " + err.Error()}}
	}
	var out []Check
	var probs []rhizome.Problem
	names := namer{}
	for i, obj := range doc.Schema {
		objName := obj.PhysicalName
		if objName == "" {
			objName = obj.Name
		}
		opath := fmt.Sprintf("schema[%d]", i)
		var decl []any
		for j, p := range obj.Properties {
			col := p.PhysicalName
			if col == "" {
				col = p.Name
			}
			ppath := fmt.Sprintf("%s.properties[%d]", opath, j)
			decl = append(decl, map[string]any{"name": col, "type": p.PhysicalType, "required": true})
			if p.Required {
				out = append(out, Check{Name: names.name(obj.Name, p.Name, "required"), Type: "null_count", Column: col,
					Threshold: mustParse("== 0"), ThresholdText: "== 0", Severity: SeverityError, Source: SourceContract, Path: ppath + ".required", Object: objName})
			}
			if p.Unique {
				out = append(out, Check{Name: names.name(obj.Name, p.Name, "unique"), Type: "duplicate_count", Column: col,
					Threshold: mustParse("== 0"), ThresholdText: "== 0", Severity: SeverityError, Source: SourceContract, Path: ppath + ".unique", Object: objName})
			}
			for k, r := range p.Quality {
				cs, ps := fromRule(r, objName, col, fmt.Sprintf("%s.quality[%d]", ppath, k), names, obj.Name+"."+p.Name)
				out, probs = append(out, cs...), append(probs, ps...)
			}
		}
		if len(decl) > 0 {
			out = append(out, Check{Name: names.name(obj.Name, "schema"), Type: "schema", Threshold: mustParse("== 0"), ThresholdText: "== 0",
				Severity: SeverityError, Args: map[string]any{"columns": decl}, Source: SourceContract, Path: opath + ".properties", Object: objName})
		}
		for k, r := range obj.Quality {
			cs, ps := fromRule(r, objName, "", fmt.Sprintf("%s.quality[%d]", opath, k), names, obj.Name)
			out, probs = append(out, cs...), append(probs, ps...)
		}
	}
	for i := range out {
		probs = append(probs, settle(&out[i])...)
	}
	return out, probs
}

func mustParse(s string) (t thresholdT) {
	t, _ = parseThreshold(s)
	return t
}

func fromRule(r odcsRule, object, column, path string, names namer, base string) ([]Check, []rhizome.Problem) {
	str := func(k string) string { s, _ := r[k].(string); return s }
	args, _ := r["arguments"].(map[string]any)
	c := Check{Column: column, Severity: str("severity"), Source: SourceContract, Path: path, Object: object}
	bad := func(field, msg, hint string) ([]Check, []rhizome.Problem) {
		return nil, []rhizome.Problem{c.problem(field, msg, hint)}
	}
	if err := normalizeSeverity(&c); err != nil {
		return bad("severity", fmt.Sprintf("%q is not a severity", c.Severity), `want "error" or "warning"`)
	}
	typ := str("type")
	metric := str("metric")
	if metric == "" {
		metric = str("rule") // ODCS v3.0 spelling
	}
	percent := strings.EqualFold(str("unit"), "percent")
	var extra []Check
	switch strings.ToLower(typ) {
	case "text", "custom":
		return nil, nil
	case "sql":
		q := str("query")
		if q == "" {
			return bad("query", "a `type: sql` rule needs `query`", "e.g. SELECT COUNT(*) FROM {object} WHERE amount < 0")
		}
		c.Type, c.Args = "custom_sql", map[string]any{"query": q}
		metric = "sql"
	case "", "library":
		switch metric {
		case "nullValues", "missingValues":
			c.Type = "null_count"
			if percent {
				c.Type = "null_percentage"
			}
			if mv, ok := args["missingValues"]; ok && metric == "missingValues" {
				var keep []any
				l, _ := mv.([]any)
				for _, v := range l {
					if v != nil { // null is always missing
						keep = append(keep, v)
					}
				}
				if len(keep) > 0 {
					c.Args = map[string]any{"missing_values": keep}
				}
			}
		case "duplicateValues":
			c.Type = "duplicate_count"
			if percent {
				c.Type = "duplicate_percentage"
			}
			if ps, ok := args["properties"].([]any); ok && column == "" {
				for _, p := range ps {
					if s, ok := p.(string); ok {
						c.Columns = append(c.Columns, s)
					}
				}
			}
		case "invalidValues":
			vv, hasVV := args["validValues"]
			pat, hasPat := args["pattern"].(string)
			if !hasVV && !hasPat {
				return bad("arguments", "invalidValues needs arguments.validValues or arguments.pattern", "e.g. arguments: {validValues: [a, b]}")
			}
			if hasVV {
				c.Type, c.Args = "accepted_values", map[string]any{"values": vv}
			}
			if hasPat {
				rc := c
				rc.Type, rc.Args = "regex", map[string]any{"pattern": pat}
				if hasVV {
					extra = append(extra, rc)
				} else {
					c = rc
				}
			}
		case "rowCount":
			c.Type = "row_count"
		case "":
			return bad("metric", "a library rule needs `metric`", "want nullValues, missingValues, invalidValues, duplicateValues or rowCount")
		default:
			return bad("metric", fmt.Sprintf("metric %q is not supported", metric), "want nullValues, missingValues, invalidValues, duplicateValues or rowCount")
		}
	default:
		return bad("type", fmt.Sprintf("rule type %q is not supported", typ), "want library, sql, text or custom")
	}
	var probs []rhizome.Problem
	all := append([]Check{c}, extra...)
	for i := range all {
		if p, ok := ruleThreshold(r, &all[i], percent); !ok {
			probs = append(probs, p)
			continue
		}
		n := str("name")
		if n == "" {
			n = metric
			if all[i].Type == "regex" && len(extra) > 0 {
				n += ".pattern"
			}
		}
		all[i].Name = names.name(base, n)
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return all, nil
}

// ruleThreshold reads the one mustX key of a rule.
func ruleThreshold(r odcsRule, c *Check, percent bool) (rhizome.Problem, bool) {
	var found []string
	for k := range thresholdKeys {
		if _, ok := r[k]; ok {
			found = append(found, k)
		}
	}
	for _, k := range []string{"mustBeBetween", "mustNotBeBetween"} {
		if _, ok := r[k]; ok {
			found = append(found, k)
		}
	}
	switch len(found) {
	case 0:
		return rhizome.Problem{}, true // the type's default
	case 1:
	default:
		return c.problem("", fmt.Sprintf("the rule has %d thresholds (%s); want one", len(found), strings.Join(found, ", ")), "keep one mustBe... key"), false
	}
	k := found[0]
	if op, ok := thresholdKeys[k]; ok {
		f, err := toFloat(r[k])
		if err != nil {
			return c.problem(k, fmt.Sprintf("%v is not a number", r[k]), "write a plain number"), false
		}
		text := fmt.Sprintf("%s %v", op, f)
		if percent {
			text += "%"
		}
		th, err := parseThreshold(text)
		if err != nil {
			return c.problem(k, err.Error(), ""), false
		}
		c.Threshold, c.ThresholdText = th, k+": "+fmt.Sprint(r[k])
		return rhizome.Problem{}, true
	}
	l, _ := r[k].([]any)
	if len(l) != 2 {
		return c.problem(k, fmt.Sprintf("%s wants two numbers [min, max]", k), "e.g. mustBeBetween: [10, 20]"), false
	}
	lo, err1 := toFloat(l[0])
	hi, err2 := toFloat(l[1])
	if err1 != nil || err2 != nil || lo > hi {
		return c.problem(k, fmt.Sprintf("%v is not a range [min, max]", l), "e.g. mustBeBetween: [10, 20]"), false
	}
	c.Between = &Bounds{Min: lo, Max: hi, Not: k == "mustNotBeBetween"}
	c.ThresholdText = fmt.Sprintf("%s: [%v, %v]", k, lo, hi)
	return rhizome.Problem{}, true
}
