// Package spec reads manifests: it decodes YAML (multi-document) or JSON
// files into Documents that remember where every field came from, validates
// each against its kind's embedded JSON Schema (ODCS v3.1.0 for
// DataContract), runs the semantic checks that a schema cannot express
// (ID formats, durations, thresholds, percentages, references, unique IDs,
// domain boundaries), and reports every problem at once with file:line:col,
// field path, what was expected and a hint.
//
// It does no I/O beyond reading the files it is given, and knows nothing of
// the store: cross-object references to objects outside the input are
// resolved through a Resolver that the caller supplies.
package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/rhizome-mesh/rhizome"
)

// File is one input file.
type File struct {
	Name string
	Data []byte
}

// Document is one manifest from a file.
type Document struct {
	Kind rhizome.Kind
	ID   string
	// Pos is where the document starts.
	Pos rhizome.Pos
	// Body is the document as JSON, keys in the author's order.
	Body json.RawMessage
	// Value is the typed manifest: *rhizome.Domain, *rhizome.Team,
	// *rhizome.DataProduct, *rhizome.Contract, *rhizome.Infrastructure or
	// *rhizome.Policy.
	Value any
	// positions maps a field path (as in Problem.Path, e.g.
	// "spec.quality.checks[1].threshold") to where its value starts; for a
	// mapping or list under a key, to where the key is written.
	positions map[string]rhizome.Pos
	// keys maps a field path to where its key is written (for problems
	// about the field itself, such as an unknown name).
	keys map[string]rhizome.Pos
}

// PosOf returns where the value at a field path starts, falling back to the
// nearest enclosing field, then to the document start.
func (d *Document) PosOf(path string) rhizome.Pos {
	return d.posOf(path)
}

func (d *Document) posOf(path string) rhizome.Pos {
	for p := path; ; p = parentPath(p) {
		if pos, ok := d.positions[p]; ok {
			return pos
		}
		if p == "" {
			return d.Pos
		}
	}
}

// Resolver answers whether an object exists outside the input (in the
// store). A nil Resolver means "nothing exists outside the input". A
// Resolver that also has a method IDs(kind rhizome.Kind) []string lends
// its ids to the "did you mean" hints of dangling references.
type Resolver interface {
	Exists(kind rhizome.Kind, id string) bool
}

// manifestExts are the file names Load picks up in a directory.
var manifestExts = []string{".yaml", ".yml", ".json"}

// Load reads manifest files. A directory is read recursively for *.yaml,
// *.yml and *.json (hidden directories skipped); a file named explicitly is
// read whatever its name. Files come back sorted by name. Paths that do not
// exist or cannot be read are problems of one EInvalid error.
func Load(paths ...string) ([]File, error) {
	var names []string
	var problems []rhizome.Problem
	bad := func(path string, err error) {
		msg := err.Error()
		var pe *fs.PathError
		if errors.As(err, &pe) {
			msg = pe.Err.Error()
		}
		hint := ""
		if errors.Is(err, fs.ErrNotExist) {
			msg, hint = "no such file or directory", "check the path; give manifest files or directories"
		}
		problems = append(problems, rhizome.Problem{Pos: rhizome.Pos{File: path}, Message: msg, Hint: hint})
	}
	for _, root := range paths {
		info, err := os.Stat(root)
		if err != nil {
			bad(root, err)
			continue
		}
		if !info.IsDir() {
			names = append(names, root)
			continue
		}
		err = filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				bad(path, err)
				return nil
			}
			if e.IsDir() {
				if path != root && strings.HasPrefix(e.Name(), ".") {
					return filepath.SkipDir
				}
				return nil
			}
			for _, ext := range manifestExts {
				if strings.EqualFold(filepath.Ext(path), ext) {
					names = append(names, path)
					break
				}
			}
			return nil
		})
		if err != nil {
			bad(root, err)
		}
	}
	sort.Strings(names)
	var files []File
	for i, name := range names {
		if i > 0 && name == names[i-1] {
			continue
		}
		data, err := os.ReadFile(name)
		if err != nil {
			bad(name, err)
			continue
		}
		files = append(files, File{Name: name, Data: data})
	}
	return files, problemsError(sortProblems(problems))
}

// Parse decodes every document of the files, validates each against its
// kind's schema and runs the checks that need only the document itself. All
// problems in all files come back as one EInvalid *rhizome.Error, sorted by
// file, line and column; the documents without problems are returned
// alongside it.
func Parse(files ...File) ([]*Document, error) {
	docs, problems, err := parse(files)
	if err != nil {
		return nil, err
	}
	return clean(docs, problems), problemsError(sortProblems(problemsOf(problems)))
}

// Validate is Parse and Check together: every problem of both at once.
func Validate(r Resolver, files ...File) ([]*Document, error) {
	docs, problems, err := parse(files)
	if err != nil {
		return nil, err
	}
	var decoded []*Document
	for _, d := range docs {
		if d.Value != nil {
			decoded = append(decoded, d)
		}
	}
	problems = append(problems, check(decoded, r)...)
	return clean(docs, problems), problemsError(sortProblems(problemsOf(problems)))
}

// DecodeOne parses a single manifest (e.g. the body of a PUT).
func DecodeOne(name string, data []byte) (*Document, error) {
	docs, err := Parse(File{Name: name, Data: data})
	if err != nil {
		return nil, err
	}
	switch len(docs) {
	case 0:
		return nil, rhizome.Invalid("no manifest in "+name, rhizome.Problem{Pos: rhizome.Pos{File: name},
			Message: "no manifest", Hint: "give one YAML or JSON document with apiVersion and kind"})
	case 1:
		return docs[0], nil
	}
	return nil, rhizome.Invalid(fmt.Sprintf("%s holds %d manifests; want one", name, len(docs)), rhizome.Problem{
		Pos: docs[1].Pos, Message: "a second manifest", Hint: "send one manifest, or use apply for several"})
}

// clean returns the documents that have no problem.
func clean(docs []*Document, problems []docProblem) []*Document {
	bad := map[*Document]bool{}
	for _, p := range problems {
		bad[p.doc] = true
	}
	var out []*Document
	for _, d := range docs {
		if !bad[d] {
			out = append(out, d)
		}
	}
	return out
}

// parse returns every document that could be decoded (with or without
// problems) and all problems. The error is for failures of the package
// itself, not of the input.
func parse(files []File) ([]*Document, []docProblem, error) {
	var docs []*Document
	var problems []docProblem
	for _, f := range files {
		raws, ps := decodeYAML(f.Name, f.Data)
		for _, p := range ps {
			problems = append(problems, docProblem{p, nil})
		}
		for _, raw := range raws {
			d, ps, err := document(raw)
			if err != nil {
				return nil, nil, err
			}
			for _, p := range ps {
				problems = append(problems, docProblem{p, d})
			}
			if d != nil {
				docs = append(docs, d)
			}
		}
	}
	return docs, problems, nil
}

// document interprets one decoded YAML document: kind, id, schema, typed
// value, semantic checks.
func document(raw rawDoc) (*Document, []rhizome.Problem, error) {
	enc, err := encode(raw.root)
	if err != nil {
		return nil, []rhizome.Problem{{Pos: raw.pos, Message: "the document is too large once its aliases are expanded",
			Hint: "use fewer YAML aliases"}}, nil
	}
	d := &Document{Pos: raw.pos, Body: json.RawMessage(enc.body), positions: enc.values, keys: enc.keys}
	kn := raw.root.get("kind")
	kinds := make([]string, 0, len(rhizome.Kinds()))
	for _, k := range rhizome.Kinds() {
		kinds = append(kinds, string(k))
	}
	switch {
	case kn == nil:
		return d, []rhizome.Problem{{Pos: d.Pos, Path: "kind", Message: "missing `kind`",
			Hint: "add `kind:` with one of: " + strings.Join(kinds, ", ")}}, nil
	case kn.kind != kString:
		return d, []rhizome.Problem{{Pos: kn.pos, Path: "kind", Message: "want a string for `kind`, got " + kindName(kn.kind),
			Hint: "one of: " + strings.Join(kinds, ", ")}}, nil
	}
	if _, ok := schemaFiles[rhizome.Kind(kn.text)]; !ok {
		hint := didYouMean(kn.text, kinds)
		if k, ok := rhizome.ParseKind(kn.text); ok {
			hint = "did you mean `" + string(k) + "`?"
		}
		if !strings.HasPrefix(hint, "want") {
			hint += " (kinds: " + strings.Join(kinds, ", ") + ")"
		}
		return d, []rhizome.Problem{{Pos: kn.pos, Path: "kind", Message: "unknown kind `" + kn.text + "`", Hint: hint}}, nil
	}
	d.Kind = rhizome.Kind(kn.text)
	d.ID = idOf(d.Kind, raw.root)
	problems, err := validateSchema(d)
	if err != nil {
		return nil, nil, err
	}
	if err := decodeValue(d); err != nil {
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) || len(problems) == 0 {
			d.Value = nil
			return d, append(problems, rhizome.Problem{Pos: d.Pos, Message: "cannot read the manifest: " + err.Error()}), nil
		}
	}
	return d, append(problems, semanticChecks(d)...), nil
}
