package connector

import (
	"fmt"
	"strings"
)

// Markdown renders every registered connector's spec as a reference page
// (docs/connectors.md is this output).
func Markdown() string {
	var b strings.Builder
	b.WriteString("# Connectors\n\n")
	b.WriteString("<!-- Generated from the connector registry by connector.Markdown; do not edit.\n")
	b.WriteString("     Regenerate: go test ./connector/all -run TestDocs -update -->\n\n")
	b.WriteString("A data product's input port names a connector and gives its config:\n\n")
	b.WriteString("```yaml\ninput_ports:\n  - name: customers\n    connector: csv\n    config:\n      path: data/customers.csv\n```\n\n")
	b.WriteString("Each run, the connector lands the input in the run's staging directory as\n")
	b.WriteString("csv, ndjson or parquet files, which the engine then loads. Relative paths\n")
	b.WriteString("resolve against the base directory of the mesh (for the demo, `examples/`).\n")
	b.WriteString("Secrets are never written in a config: fields of type `secret` take a\n")
	b.WriteString("reference, `env:NAME` (an environment variable of the server) or\n")
	b.WriteString("`file:/path` (a mounted secret file).\n\n")
	b.WriteString("`rhizome connectors` lists the connectors of a running binary.\n\n")
	b.WriteString("| Connector | Summary |\n|---|---|\n")
	for _, s := range Specs() {
		fmt.Fprintf(&b, "| [%s](#%s) | %s |\n", s.Name, s.Name, cell(s.Summary))
	}
	for _, s := range Specs() {
		fmt.Fprintf(&b, "\n## %s\n\n%s\n\n", s.Name, s.Summary)
		if len(s.Fields) == 0 {
			b.WriteString("No config.\n")
			continue
		}
		b.WriteString("| Field | Type | Required | Default | Description |\n|---|---|---|---|---|\n")
		for _, f := range s.Fields {
			req := ""
			if f.Required {
				req = "yes"
			}
			def := ""
			if f.Default != nil {
				def = "`" + fmt.Sprint(f.Default) + "`"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", f.Name, f.Type, req, def, cell(f.Doc))
		}
	}
	return b.String()
}

func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
