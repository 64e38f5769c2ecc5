package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/rhizome-mesh/rhizome"
)

// Limits that keep a hostile manifest from exhausting the process.
const (
	maxDepth = 100     // nesting of mappings and lists
	maxNodes = 500_000 // values after expanding aliases
)

// node is a decoded YAML value that remembers where it was written.
type node struct {
	kind   nodeKind
	keys   []string      // object keys in the author's order
	keyPos []rhizome.Pos // where each key is written
	vals   []*node       // object values (parallel to keys) or list items
	text   string        // string value, or a number as JSON text
	b      bool
	pos    rhizome.Pos
}

type nodeKind int

const (
	kNull nodeKind = iota
	kBool
	kNumber
	kString
	kObject
	kArray
)

func (n *node) isCollection() bool { return n.kind == kObject || n.kind == kArray }

// get returns the value of field key in an object node, or nil.
func (n *node) get(key string) *node {
	if n == nil || n.kind != kObject {
		return nil
	}
	for i, k := range n.keys {
		if k == key {
			return n.vals[i]
		}
	}
	return nil
}

// rawDoc is one YAML document of a file, decoded but not yet interpreted.
type rawDoc struct {
	root *node
	pos  rhizome.Pos
}

// decodeYAML splits a file into documents and decodes each. Documents are
// split at "---" lines by hand (a marker at column 0 always starts a
// document) so that one malformed document does not hide the others and an
// empty document cannot swallow the ones after it.
func decodeYAML(name string, data []byte) ([]rawDoc, []rhizome.Problem) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if strings.HasSuffix(strings.ToLower(name), ".json") {
		// JSON allows tabs only between tokens, where a space means the
		// same; YAML's scanner miscounts them.
		data = bytes.ReplaceAll(data, []byte("\t"), []byte(" "))
	}
	var docs []rawDoc
	var problems []rhizome.Problem
	for _, c := range splitDocuments(data) {
		d, ps := decodeChunk(name, c.line, c.text)
		docs = append(docs, d...)
		problems = append(problems, ps...)
	}
	return docs, problems
}

type chunk struct {
	line int // 0-based line of the chunk's first line
	text []byte
}

func splitDocuments(data []byte) []chunk {
	lines := bytes.SplitAfter(data, []byte("\n"))
	var chunks []chunk
	start := 0
	flush := func(end int) {
		if end > start && hasContent(lines[start:end]) {
			chunks = append(chunks, chunk{line: start, text: bytes.Join(lines[start:end], nil)})
		}
		start = end
	}
	for i, l := range lines {
		if i > start && isDocStart(l) {
			flush(i)
		}
	}
	flush(len(lines))
	return chunks
}

func isDocStart(l []byte) bool {
	return bytes.HasPrefix(l, []byte("---")) && (len(l) == 3 || strings.ContainsRune(" \t\r\n", rune(l[3])))
}

// hasContent reports whether lines hold more than blank lines, comments,
// directives and document markers.
func hasContent(lines [][]byte) bool {
	for _, l := range lines {
		t := strings.TrimSpace(string(l))
		switch {
		case t == "", strings.HasPrefix(t, "#"), strings.HasPrefix(string(l), "%"),
			t == "...", t == "---":
			continue
		case isDocStart(l):
			rest := strings.TrimSpace(t[3:])
			if rest == "" || strings.HasPrefix(rest, "#") {
				continue
			}
		}
		return true
	}
	return false
}

func decodeChunk(name string, line int, text []byte) (docs []rawDoc, problems []rhizome.Problem) {
	defer func() {
		if r := recover(); r != nil {
			docs = nil
			problems = []rhizome.Problem{{Pos: rhizome.Pos{File: name, Line: line + 1, Col: 1},
				Message: "malformed YAML: the parser gave up on this document",
				Hint:    "check the indentation and quoting of this document"}}
		}
	}()
	// Positions are the chunk's; line shifts them to the file's.
	f, err := parser.ParseBytes(text, 0)
	if err != nil {
		return nil, []rhizome.Problem{syntaxProblem(name, line, err)}
	}
	for _, d := range f.Docs {
		if d == nil || d.Body == nil {
			continue
		}
		if _, ok := d.Body.(*ast.CommentGroupNode); ok {
			continue
		}
		dec := &yamlDecoder{file: name, line: line, anchors: map[string]*node{}}
		root := dec.convert(d.Body, "", 0)
		problems = append(problems, dec.problems...)
		if root == nil {
			continue
		}
		if root.kind != kObject {
			problems = append(problems, rhizome.Problem{Pos: root.pos,
				Message: "a manifest must be a mapping; got " + kindName(root.kind),
				Hint:    "start the document with `apiVersion:` and `kind:`"})
			continue
		}
		if len(dec.problems) == 0 {
			docs = append(docs, rawDoc{root: root, pos: root.pos})
		}
	}
	return docs, problems
}

var chunkPosRe = regexp.MustCompile(`\[(\d+):(\d+)\]`)

func syntaxProblem(name string, line int, err error) rhizome.Problem {
	p := rhizome.Problem{Pos: rhizome.Pos{File: name, Line: line + 1, Col: 1}}
	msg := err.Error()
	var ye yaml.Error
	if errors.As(err, &ye) {
		msg = ye.GetMessage()
		if tk := ye.GetToken(); tk != nil && tk.Position != nil && tk.Position.Line > 0 {
			p.Line, p.Col = tk.Position.Line+line, max(tk.Position.Column, 1)
		}
	}
	// Messages cite other places as [line:col] of the chunk.
	msg = chunkPosRe.ReplaceAllStringFunc(msg, func(m string) string {
		sub := chunkPosRe.FindStringSubmatch(m)
		n, _ := strconv.Atoi(sub[1])
		return "[" + strconv.Itoa(n+line) + ":" + sub[2] + "]"
	})
	msg = strings.ReplaceAll(msg, "\t", `\t`)
	p.Message = "malformed YAML: " + msg
	switch {
	case strings.Contains(msg, `'\t'`):
		p.Hint = "indent with spaces; YAML does not allow tabs for indentation"
	case strings.Contains(msg, "already defined"):
		p.Hint = "each key may appear once in a mapping; remove or rename one"
	case strings.Contains(msg, "mapping value is not allowed"):
		p.Hint = "check the indentation here and on the line above, or quote a value that contains \": \""
	case strings.Contains(msg, "quoted"):
		p.Hint = "close the quote, or escape quotes inside the value"
	case strings.Contains(msg, "']'") || strings.Contains(msg, "'}'"):
		p.Hint = "close the flow list or mapping with `]` or `}`"
	default:
		p.Hint = "check the indentation and quoting on this line and the one above"
	}
	return p
}

func kindName(k nodeKind) string {
	return [...]string{"null", "a boolean", "a number", "a string", "a mapping", "a list"}[k]
}

type yamlDecoder struct {
	file     string
	line     int // lines in the file before the chunk
	anchors  map[string]*node
	problems []rhizome.Problem
}

func (d *yamlDecoder) posOf(n ast.Node) rhizome.Pos {
	if n == nil {
		return rhizome.Pos{File: d.file}
	}
	tk := n.GetToken()
	if m, ok := n.(*ast.MappingNode); ok && len(m.Values) > 0 && !m.IsFlowStyle {
		tk = m.Values[0].Key.GetToken() // a block mapping starts at its first key
	}
	if tk == nil || tk.Position == nil {
		return rhizome.Pos{File: d.file}
	}
	return rhizome.Pos{File: d.file, Line: tk.Position.Line + d.line, Col: tk.Position.Column}
}

func (d *yamlDecoder) fail(n ast.Node, path, msg, hint string) *node {
	d.problems = append(d.problems, rhizome.Problem{Pos: d.posOf(n), Path: path, Message: msg, Hint: hint})
	return nil
}

// convert turns a YAML node into a node; nil means a problem was recorded.
func (d *yamlDecoder) convert(n ast.Node, path string, depth int) *node {
	if depth > maxDepth {
		return d.fail(n, path, fmt.Sprintf("nested more than %d levels deep", maxDepth), "flatten the document")
	}
	pos := d.posOf(n)
	switch n := n.(type) {
	case nil:
		return &node{kind: kNull, pos: pos}
	case *ast.NullNode:
		return &node{kind: kNull, pos: pos}
	case *ast.StringNode:
		return &node{kind: kString, text: n.Value, pos: pos}
	case *ast.LiteralNode:
		s := ""
		if n.Value != nil {
			s = n.Value.Value
		}
		return &node{kind: kString, text: s, pos: pos}
	case *ast.IntegerNode:
		return &node{kind: kNumber, text: fmt.Sprint(n.Value), pos: pos}
	case *ast.FloatNode:
		text := n.Token.Value
		if !json.Valid([]byte(text)) || strings.HasPrefix(text, "+") {
			text = strconv.FormatFloat(n.Value, 'g', -1, 64)
		}
		return &node{kind: kNumber, text: text, pos: pos}
	case *ast.BoolNode:
		return &node{kind: kBool, b: n.Value, pos: pos}
	case *ast.InfinityNode, *ast.NanNode:
		return d.fail(n, path, fmt.Sprintf("%s is not a number JSON can hold", n.GetToken().Value),
			fmt.Sprintf("quote it if you mean the text: %q", n.GetToken().Value))
	case *ast.MappingNode:
		return d.mapping(n.Values, path, pos, depth)
	case *ast.MappingValueNode:
		return d.mapping([]*ast.MappingValueNode{n}, path, pos, depth)
	case *ast.SequenceNode:
		out := &node{kind: kArray, pos: pos}
		for i, v := range n.Values {
			item := d.convert(v, path+"["+strconv.Itoa(i)+"]", depth+1)
			if item == nil {
				return nil
			}
			out.vals = append(out.vals, item)
		}
		return out
	case *ast.AnchorNode:
		v := d.convert(n.Value, path, depth+1)
		if v != nil && n.Name != nil {
			d.anchors[n.Name.GetToken().Value] = v
		}
		return v
	case *ast.AliasNode:
		name := ""
		if n.Value != nil {
			name = n.Value.GetToken().Value
		}
		v, ok := d.anchors[name]
		if !ok {
			return d.fail(n, path, fmt.Sprintf("alias *%s names no anchor defined before it", name), "define `&"+name+"` earlier in the document")
		}
		c := *v
		c.pos = pos
		return &c
	case *ast.TagNode:
		if n.Start != nil && n.Start.Value == "!!str" {
			if s, ok := n.Value.(ast.ScalarNode); ok && n.Value.GetToken() != nil {
				if _, isStr := s.(*ast.StringNode); !isStr {
					return &node{kind: kString, text: n.Value.GetToken().Value, pos: d.posOf(n.Value)}
				}
			}
		}
		return d.convert(n.Value, path, depth+1)
	}
	return d.fail(n, path, fmt.Sprintf("unsupported YAML construct (%s)", n.Type()), "write plain mappings, lists and scalars")
}

func (d *yamlDecoder) mapping(values []*ast.MappingValueNode, path string, pos rhizome.Pos, depth int) *node {
	out := &node{kind: kObject, pos: pos}
	explicit := map[string]bool{}
	for _, mv := range values {
		if k, ok := d.keyText(mv.Key); ok {
			explicit[k] = true
		}
	}
	have := map[string]bool{}
	for _, mv := range values {
		if _, ok := mv.Key.(*ast.MergeKeyNode); ok {
			src := d.convert(mv.Value, path, depth+1)
			if src == nil {
				return nil
			}
			srcs := []*node{src}
			if src.kind == kArray {
				srcs = src.vals
			}
			for _, s := range srcs {
				if s.kind != kObject {
					return d.fail(mv.Value, path, "`<<` merges mappings only", "point `<<` at an anchored mapping")
				}
				for i, k := range s.keys {
					if !explicit[k] && !have[k] {
						have[k] = true
						out.keys, out.keyPos, out.vals = append(out.keys, k), append(out.keyPos, s.keyPos[i]), append(out.vals, s.vals[i])
					}
				}
			}
			continue
		}
		k, ok := d.keyText(mv.Key)
		if !ok {
			return d.fail(mv.Key, path, "a mapping key must be a plain value", "use a string key")
		}
		v := d.convert(mv.Value, joinPath(path, k), depth+1)
		if v == nil {
			return nil
		}
		if mv.Value == nil {
			v.pos = d.posOf(mv)
		}
		have[k] = true
		out.keys, out.keyPos, out.vals = append(out.keys, k), append(out.keyPos, d.posOf(mv.Key)), append(out.vals, v)
	}
	return out
}

func (d *yamlDecoder) keyText(k ast.MapKeyNode) (string, bool) {
	var n ast.Node = k
	if mk, ok := n.(*ast.MappingKeyNode); ok {
		n = mk.Value
	}
	switch n := n.(type) {
	case *ast.StringNode:
		return n.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.NullNode:
		return n.GetToken().Value, true
	}
	return "", false
}

// encoded is a document's JSON text and the positions of its fields.
type encoded struct {
	body   []byte
	values map[string]rhizome.Pos // field path -> where its value (or block) starts
	keys   map[string]rhizome.Pos // field path -> where its key is written
}

var errTooLarge = errors.New("too large")

// encode writes n as compact JSON in the author's key order and records the
// position of every field path.
func encode(n *node) (encoded, error) {
	e := encoded{values: map[string]rhizome.Pos{}, keys: map[string]rhizome.Pos{}}
	var buf bytes.Buffer
	budget := maxNodes
	err := e.write(&buf, n, "", &budget)
	e.body = buf.Bytes()
	return e, err
}

func (e *encoded) write(buf *bytes.Buffer, n *node, path string, budget *int) error {
	if *budget--; *budget < 0 {
		return errTooLarge
	}
	switch n.kind {
	case kNull:
		buf.WriteString("null")
	case kBool:
		buf.WriteString(strconv.FormatBool(n.b))
	case kNumber:
		buf.WriteString(n.text)
	case kString:
		writeJSONString(buf, n.text)
	case kArray:
		buf.WriteByte('[')
		for i, v := range n.vals {
			if i > 0 {
				buf.WriteByte(',')
			}
			p := path + "[" + strconv.Itoa(i) + "]"
			e.values[p] = v.pos
			if err := e.write(buf, v, p, budget); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case kObject:
		buf.WriteByte('{')
		for i, k := range n.keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeJSONString(buf, k)
			buf.WriteByte(':')
			p := joinPath(path, k)
			e.keys[p] = n.keyPos[i]
			// A mapping or list is best pointed at by its key.
			if v := n.vals[i]; v.isCollection() {
				e.values[p] = n.keyPos[i]
			} else {
				e.values[p] = v.pos
			}
			if err := e.write(buf, n.vals[i], p, budget); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	}
	return nil
}

func writeJSONString(buf *bytes.Buffer, s string) {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)           // a string always encodes
	buf.Truncate(buf.Len() - 1) // Encode's newline
}

// joinPath appends a field to a path: a.b, or a["x.y"] for keys that are
// not plain names.
func joinPath(path, key string) string {
	plain := key != ""
	for _, r := range key {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			plain = false
			break
		}
	}
	if !plain {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// parentPath strips the last segment of a path: "a.b[1].c" -> "a.b[1]" ->
// "a.b" -> "a" -> "".
func parentPath(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndex(path, "["); i >= 0 {
			// A quoted key may hold "[": find the bracket that opens it.
			if j := strings.LastIndex(path, "[\""); j >= 0 && strings.HasSuffix(path, "\"]") {
				i = j
			}
			return path[:i]
		}
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

// ToYAML turns a JSON document into block-style YAML with the same key
// order (for `rhizome get -o yaml`).
func ToYAML(body json.RawMessage) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	v, err := orderedValue(dec)
	if err != nil {
		return nil, rhizome.Errorf(rhizome.EInvalid, "not JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, rhizome.Errorf(rhizome.EInvalid, "not JSON: data after the document")
	}
	return yaml.MarshalWithOptions(v, yaml.IndentSequence(true), yaml.UseLiteralStyleIfMultiline(true))
}

func orderedValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			m := yaml.MapSlice{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := orderedValue(dec)
				if err != nil {
					return nil, err
				}
				m = append(m, yaml.MapItem{Key: kt.(string), Value: v})
			}
			_, err := dec.Token()
			return m, err
		case '[':
			l := []any{}
			for dec.More() {
				v, err := orderedValue(dec)
				if err != nil {
					return nil, err
				}
				l = append(l, v)
			}
			_, err := dec.Token()
			return l, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i, nil
		}
		if u, err := strconv.ParseUint(string(t), 10, 64); err == nil {
			return u, nil
		}
		return t.Float64()
	}
	return tok, nil
}
