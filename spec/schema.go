package spec

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/rhizome-mesh/rhizome"
)

//go:embed schemas/*.json
var schemaFS embed.FS

// schemaFiles names each kind's schema in schemas/.
var schemaFiles = map[rhizome.Kind]string{
	rhizome.KindDomain:         "domain.json",
	rhizome.KindTeam:           "team.json",
	rhizome.KindPolicy:         "policy.json",
	rhizome.KindDataContract:   "odcs-json-schema-v3.1.0.json",
	rhizome.KindInfrastructure: "infrastructure.json",
	rhizome.KindDataProduct:    "dataproduct.json",
}

// Schema returns the JSON Schema of a kind (its manifest name or plural),
// as served to editors.
func Schema(k rhizome.Kind) ([]byte, bool) {
	name, ok := schemaFiles[k]
	if !ok {
		pk, ok2 := rhizome.ParseKind(string(k))
		if !ok2 {
			return nil, false
		}
		name = schemaFiles[pk]
	}
	b, err := schemaFS.ReadFile("schemas/" + name)
	return b, err == nil
}

// SchemaKinds lists the kinds that have a schema, in apply order.
func SchemaKinds() []rhizome.Kind {
	var out []rhizome.Kind
	for _, k := range rhizome.Kinds() {
		if _, ok := schemaFiles[k]; ok {
			out = append(out, k)
		}
	}
	return out
}

// compiledSchema is a kind's schema ready to validate, with every
// subschema indexed by location for hints (descriptions, examples, the
// field names allowed in an object).
type compiledSchema struct {
	root  *jsonschema.Schema
	index map[string]*jsonschema.Schema
}

var compiled = sync.OnceValues(compileSchemas)

const schemaBase = "https://schemas.rhizome.invalid/"

func compileSchemas() (map[rhizome.Kind]*compiledSchema, error) {
	out := map[rhizome.Kind]*compiledSchema{}
	for k, name := range schemaFiles {
		raw, err := schemaFS.ReadFile("schemas/" + name)
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", name, err)
		}
		c := jsonschema.NewCompiler()
		// Formats are only annotations by default in drafts 2019-09 and
		// 2020-12; we mean ours (documentation_url is a URI) and hold ODCS
		// to its own (uri, date, date-time), which its examples all meet.
		c.AssertFormat()
		if err := c.AddResource(schemaBase+name, doc); err != nil {
			return nil, fmt.Errorf("schema %s: %w", name, err)
		}
		s, err := c.Compile(schemaBase + name)
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", name, err)
		}
		cs := &compiledSchema{root: s, index: map[string]*jsonschema.Schema{}}
		cs.indexAll(s)
		out[k] = cs
	}
	return out, nil
}

func (cs *compiledSchema) indexAll(s *jsonschema.Schema) {
	if s == nil || cs.index[s.Location] != nil {
		return
	}
	cs.index[s.Location] = s
	for _, sub := range subschemas(s) {
		cs.indexAll(sub)
	}
}

func subschemas(s *jsonschema.Schema) []*jsonschema.Schema {
	out := []*jsonschema.Schema{s.Ref, s.Not, s.If, s.Then, s.Else, s.PropertyNames,
		s.UnevaluatedProperties, s.Items2020, s.UnevaluatedItems, s.Contains}
	out = append(out, s.AllOf...)
	out = append(out, s.AnyOf...)
	out = append(out, s.OneOf...)
	out = append(out, s.PrefixItems...)
	for _, p := range sortedKeys(s.Properties) {
		out = append(out, s.Properties[p])
	}
	for _, p := range s.PatternProperties {
		out = append(out, p)
	}
	if a, ok := s.AdditionalProperties.(*jsonschema.Schema); ok {
		out = append(out, a)
	}
	switch it := s.Items.(type) {
	case *jsonschema.Schema:
		out = append(out, it)
	case []*jsonschema.Schema:
		out = append(out, it...)
	}
	return out
}

// propertyNames lists the fields an object schema allows, following $ref,
// allOf and the conditional branches that ODCS uses.
func propertyNames(s *jsonschema.Schema) []string {
	set := map[string]bool{}
	seen := map[*jsonschema.Schema]bool{}
	var walk func(*jsonschema.Schema)
	walk = func(s *jsonschema.Schema) {
		if s == nil || seen[s] {
			return
		}
		seen[s] = true
		for p := range s.Properties {
			set[p] = true
		}
		for _, sub := range append(append(append([]*jsonschema.Schema{s.Ref, s.Then, s.Else}, s.AllOf...), s.AnyOf...), s.OneOf...) {
			walk(sub)
		}
	}
	walk(s)
	return sortedKeys(set)
}

// propertySchema finds the schema of field name under s.
func propertySchema(s *jsonschema.Schema, name string) *jsonschema.Schema {
	seen := map[*jsonschema.Schema]bool{}
	var walk func(*jsonschema.Schema) *jsonschema.Schema
	walk = func(s *jsonschema.Schema) *jsonschema.Schema {
		if s == nil || seen[s] {
			return nil
		}
		seen[s] = true
		if p, ok := s.Properties[name]; ok {
			return p
		}
		for _, sub := range append([]*jsonschema.Schema{s.Ref}, s.AllOf...) {
			if p := walk(sub); p != nil {
				return p
			}
		}
		return nil
	}
	return walk(s)
}

// validateSchema checks a document's body against its kind's schema and
// returns one problem per failed assertion.
func validateSchema(d *Document) ([]rhizome.Problem, error) {
	all, err := compiled()
	if err != nil {
		return nil, rhizome.Wrap(err, "compiling embedded schemas")
	}
	cs := all[d.Kind]
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(d.Body))
	if err != nil {
		return nil, rhizome.Wrap(err, "re-reading %s", d.Pos)
	}
	verr, ok := cs.root.Validate(inst).(*jsonschema.ValidationError)
	if !ok || verr == nil {
		return nil, nil
	}
	m := &schemaMapper{cs: cs, doc: d, inst: inst}
	m.walk(verr)
	return m.tidy(), nil
}

// tidy drops problems that repeat another: the same assertion reached
// through two paths of a schema, and "missing owner_team" beside "unknown
// field owner_tem; did you mean owner_team?".
func (m *schemaMapper) tidy() []rhizome.Problem {
	type key struct {
		pos       rhizome.Pos
		path, msg string
	}
	seen := map[key]bool{}
	var out []rhizome.Problem
	for _, p := range m.problems {
		k := key{p.Pos, p.Path, p.Message}
		if seen[k] || m.misspelt[p.Path] {
			continue
		}
		seen[k] = true
		out = append(out, p)
	}
	return out
}

type schemaMapper struct {
	cs       *compiledSchema
	doc      *Document
	inst     any
	problems []rhizome.Problem
	// misspelt holds the paths of missing required fields that an unknown
	// field is a misspelling of.
	misspelt map[string]bool
}

var printer = message.NewPrinter(language.English)

func (m *schemaMapper) walk(e *jsonschema.ValidationError) {
	switch k := e.ErrorKind.(type) {
	case *kind.Schema, *kind.Group, *kind.AllOf, *kind.Reference:
		for _, c := range e.Causes {
			m.walk(c)
		}
		return
	case *kind.AnyOf:
		if best := bestBranch(e.Causes); best != nil {
			m.walk(best)
			return
		}
	case *kind.OneOf:
		if len(k.Subschemas) == 0 {
			if best := bestBranch(e.Causes); best != nil {
				m.walk(best)
				return
			}
		}
	}
	m.leaf(e)
}

// bestBranch picks, among the failures of anyOf/oneOf alternatives, the one
// the author most likely meant: the one that got deepest into the value.
func bestBranch(causes []*jsonschema.ValidationError) *jsonschema.ValidationError {
	var best *jsonschema.ValidationError
	bestDepth, bestCount := -1, 0
	for _, c := range causes {
		depth, count := branchScore(c)
		if depth > bestDepth || (depth == bestDepth && count < bestCount) {
			best, bestDepth, bestCount = c, depth, count
		}
	}
	return best
}

func branchScore(e *jsonschema.ValidationError) (depth, count int) {
	if len(e.Causes) == 0 {
		d := len(e.InstanceLocation)
		if _, ok := e.ErrorKind.(*kind.Type); !ok {
			d++ // a wrong type means the wrong branch entirely
		}
		return d, 1
	}
	for _, c := range e.Causes {
		d, n := branchScore(c)
		depth = max(depth, d)
		count += n
	}
	return depth, count
}

func (m *schemaMapper) add(path string, pos rhizome.Pos, msg, hint string) {
	m.problems = append(m.problems, rhizome.Problem{Pos: pos, Path: path, Message: msg, Hint: hint})
}

func (m *schemaMapper) leaf(e *jsonschema.ValidationError) {
	path, val := instancePath(m.inst, e.InstanceLocation)
	pos := m.doc.posOf(path)
	sch := m.cs.index[e.SchemaURL]
	hint := describe(sch)
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		for _, name := range k.Missing {
			h := "add `" + name + ":`"
			if d := describe(propertySchema(sch, name)); d != "" {
				h += ": " + d
			}
			m.add(joinPath(path, name), pos, "missing required field `"+name+"`", h)
		}
	case *kind.AdditionalProperties:
		for _, name := range k.Properties {
			m.unknownField(joinPath(path, name), name, sch)
		}
	case *kind.FalseSchema:
		loc := e.SchemaURL
		for _, kw := range []string{"/unevaluatedProperties", "/additionalProperties"} {
			if parent, ok := strings.CutSuffix(loc, kw); ok && len(e.InstanceLocation) > 0 {
				name := e.InstanceLocation[len(e.InstanceLocation)-1]
				m.unknownField(path, name, m.cs.index[parent])
				return
			}
		}
		m.add(path, pos, "not allowed here", "")
	case *kind.Type:
		m.add(path, pos, "want "+strings.Join(article(k.Want), " or ")+", got "+article([]string{k.Got})[0], typeHint(k, val, hint))
	case *kind.Enum:
		var want []string
		for _, w := range k.Want {
			want = append(want, fmt.Sprint(w))
		}
		got := fmt.Sprint(k.Got)
		h := hint
		if s := suggest(got, want); s != "" {
			h = "did you mean `" + s + "`?"
		}
		m.add(path, pos, fmt.Sprintf("%s is not one of %s", display(k.Got), strings.Join(quoteAll(want), ", ")), h)
	case *kind.Const:
		m.add(path, pos, fmt.Sprintf("want %s, got %s", display(k.Want), display(k.Got)), hint)
	case *kind.Pattern:
		m.add(path, pos, fmt.Sprintf("%q is not in the expected form", k.Got), exampleHint(sch, hint))
	case *kind.Format:
		m.add(path, pos, fmt.Sprintf("%s is not a valid %s", display(k.Got), k.Want), exampleHint(sch, hint))
	case *kind.Minimum:
		m.add(path, pos, fmt.Sprintf("must be at least %s, got %s", ratString(k.Want), ratString(k.Got)), hint)
	case *kind.Maximum:
		m.add(path, pos, fmt.Sprintf("must be at most %s, got %s", ratString(k.Want), ratString(k.Got)), hint)
	case *kind.MinItems:
		msg := fmt.Sprintf("must list at least %d items, got %d", k.Want, k.Got)
		if k.Want == 1 {
			msg = "must list at least one item"
		}
		m.add(path, pos, msg, hint)
	case *kind.MinLength:
		msg := fmt.Sprintf("must be at least %d characters long", k.Want)
		if k.Want == 1 {
			msg = "must not be empty"
		}
		m.add(path, pos, msg, hint)
	case *kind.UniqueItems:
		p := path + "[" + strconv.Itoa(k.Duplicates[1]) + "]"
		m.add(p, m.doc.posOf(p), fmt.Sprintf("repeats item %d", k.Duplicates[0]), "list each value once")
	case *kind.OneOf:
		m.add(path, pos, "matches more than one of the allowed forms", hint)
	default:
		m.add(path, pos, e.ErrorKind.LocalizedString(printer), hint)
	}
}

func (m *schemaMapper) unknownField(path, name string, parent *jsonschema.Schema) {
	var allowed []string
	if parent != nil {
		allowed = propertyNames(parent)
	}
	for _, a := range allowed {
		if a == name {
			// Known here: "unevaluated" only because a sibling assertion
			// failed, which is reported on its own.
			return
		}
	}
	hint := didYouMean(name, allowed)
	if len(allowed) == 0 {
		hint = "remove it"
	}
	if s := suggest(name, allowed); s != "" {
		if _, present := m.doc.keys[joinPath(parentPath(path), s)]; !present {
			if m.misspelt == nil {
				m.misspelt = map[string]bool{}
			}
			m.misspelt[joinPath(parentPath(path), s)] = true
		}
	}
	pos, ok := m.doc.keys[path]
	if !ok {
		pos = m.doc.posOf(path)
	}
	m.add(path, pos, "unknown field `"+name+"`", hint)
}

// instancePath renders a schema error's instance location in the path
// notation of problems, and returns the value found there.
func instancePath(inst any, loc []string) (string, any) {
	path, v := "", inst
	for _, seg := range loc {
		switch x := v.(type) {
		case []any:
			i, _ := strconv.Atoi(seg)
			path += "[" + seg + "]"
			if i >= 0 && i < len(x) {
				v = x[i]
			} else {
				v = nil
			}
		case map[string]any:
			path = joinPath(path, seg)
			v = x[seg]
		default:
			path = joinPath(path, seg)
			v = nil
		}
	}
	return path, v
}

func describe(s *jsonschema.Schema) string {
	if s == nil {
		return ""
	}
	if s.Description == "" && s.Ref != nil {
		return describe(s.Ref)
	}
	return s.Description
}

func exampleHint(s *jsonschema.Schema, fallback string) string {
	if s != nil && len(s.Examples) > 0 {
		if b, err := json.Marshal(s.Examples[0]); err == nil {
			h := "want e.g. " + string(b)
			if s.Description != "" {
				h += " (" + strings.TrimSuffix(s.Description, ".") + ")"
			}
			return h
		}
	}
	return fallback
}

func typeHint(k *kind.Type, val any, fallback string) string {
	wants := map[string]bool{}
	for _, w := range k.Want {
		wants[w] = true
	}
	switch {
	case wants["string"] && (k.Got == "number" || k.Got == "integer" || k.Got == "boolean"):
		return fmt.Sprintf("quote it: \"%v\"", val)
	case wants["array"] && !wants["string"] && k.Got != "object" && k.Got != "array":
		if b, err := json.Marshal(val); err == nil {
			return "write a list: [" + string(b) + "]"
		}
	case (wants["number"] || wants["integer"]) && k.Got == "string":
		if s, _ := val.(string); s != "" {
			if _, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil {
				return "write the number without quotes: " + strings.TrimSpace(s)
			}
		}
	case wants["boolean"] && k.Got == "string":
		return "write true or false without quotes"
	}
	return fallback
}

func article(types []string) []string {
	out := make([]string, len(types))
	for i, t := range types {
		switch t {
		case "object":
			out[i] = "a mapping"
		case "array":
			out[i] = "a list"
		case "integer":
			out[i] = "an integer"
		case "null":
			out[i] = "nothing"
		default:
			out[i] = "a " + t
		}
	}
	sort.Strings(out)
	return out
}

func display(v any) string {
	switch v := v.(type) {
	case string:
		return "`" + v + "`"
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	}
	return fmt.Sprint(v)
}

func ratString(r *big.Rat) string {
	if r == nil {
		return "?"
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'f', -1, 64)
}
