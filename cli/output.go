package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/spec"
)

// How results are shown: a table (or a page) for people; JSON, exactly as
// the API returns it, or YAML for scripts.

func (a *app) table() bool { return a.output == "table" }

// printData prints v as JSON or YAML (for -o json and -o yaml).
func (a *app) printData(v any) error {
	b, err := marshal(v, "  ")
	if err != nil {
		return rhizome.Wrap(err, "encoding the output")
	}
	if a.output == "yaml" {
		return a.printYAML(b)
	}
	_, err = fmt.Fprintf(a.stdout, "%s\n", b)
	return err
}

// marshal is json.Marshal(Indent) without HTML escaping: SQL's "<>" stays
// readable.
func marshal(v any, indent string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if indent != "" {
		enc.SetIndent("", indent)
	}
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// printYAML prints a JSON value as YAML.
func (a *app) printYAML(j json.RawMessage) error {
	y, err := spec.ToYAML(j)
	if err != nil {
		return rhizome.Wrap(err, "converting the output to YAML")
	}
	_, err = a.stdout.Write(y)
	return err
}

// printManifests prints the manifests of objects as a YAML stream, ready
// to be edited and applied again.
func (a *app) printManifests(objs []*rhizome.Object) error {
	for i, o := range objs {
		if i > 0 {
			fmt.Fprintln(a.stdout, "---")
		}
		if err := a.printYAML(o.Body); err != nil {
			return err
		}
	}
	return nil
}

// table is a column-aligned table.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, headers ...string) *table {
	t := &table{tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	if len(headers) > 0 {
		t.row(headers...)
	}
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = "-"
		}
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// page prints "Key:  value" lines aligned, skipping empty values.
type page struct{ tw *tabwriter.Writer }

func newPage(w io.Writer) *page { return &page{tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)} }

func (p *page) kv(key, value string) {
	if value != "" {
		fmt.Fprintf(p.tw, "%s:\t%s\n", key, value)
	}
}

func (p *page) flush() error { return p.tw.Flush() }

func timeString(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func list(ss []string) string { return strings.Join(ss, ", ") }

// value shows a diff value: JSON, shortened; "(none)" when absent.
func value(v any) string {
	if v == nil {
		return "(none)"
	}
	b, err := marshal(v, "")
	if err != nil {
		return fmt.Sprint(v)
	}
	const max = 72
	if s := []rune(string(b)); len(s) > max {
		return string(s[:max-3]) + "..."
	}
	return string(b)
}
