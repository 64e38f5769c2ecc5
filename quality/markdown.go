package quality

import (
	"fmt"
	"strings"
)

// Markdown renders the check catalogue from the registry, for docs/checks.md.
func Markdown() string {
	var b strings.Builder
	b.WriteString("# Quality checks\n\n")
	b.WriteString("<!-- Generated from the quality package's registry (quality.Markdown); do not edit. -->\n\n")
	b.WriteString("Every check takes a `threshold` (`> 1000`, `< 1%`, `< 24 hours`; ODCS `mustBe...` keys in contracts), " +
		"a `severity` (`error`, the default, quarantines the snapshot; `warn` publishes with a warning) and, where it reads rows, " +
		"a `where` filter (a SQL boolean expression). All aggregate and row checks on a table run in one scan; row checks then " +
		"sample up to N failing rows, with sensitive columns shown as `***`.\n\n")
	b.WriteString("| Type | Kind | Default threshold | Summary |\n|---|---|---|---|\n")
	for _, t := range Types() {
		def := t.DefaultThreshold
		if def == "" {
			def = "required"
		} else {
			def = "`" + def + "`"
		}
		fmt.Fprintf(&b, "| [`%s`](#%s) | %s | %s | %s |\n", t.Name, t.Name, t.Kind, def, escape(t.Summary))
	}
	for _, t := range Types() {
		fmt.Fprintf(&b, "\n## %s\n\n%s\n\nKind: %s.", t.Name, t.Summary, t.Kind)
		if as := aliasesOf(t.Name); len(as) > 0 {
			fmt.Fprintf(&b, " Also spelt: `%s`.", strings.Join(as, "`, `"))
		}
		b.WriteString("\n")
		if len(t.Fields) > 0 {
			b.WriteString("\n| Field | Type | Required | Meaning |\n|---|---|---|---|\n")
			for _, f := range t.Fields {
				req := ""
				if f.Required {
					req = "yes"
				}
				fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", f.Name, f.Type, req, escape(f.Doc))
			}
		}
		if len(t.Notes) > 0 {
			b.WriteString("\n")
			for _, n := range t.Notes {
				fmt.Fprintf(&b, "- %s\n", n)
			}
		}
	}
	return b.String()
}

func escape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func aliasesOf(name string) []string {
	mu.RLock()
	defer mu.RUnlock()
	var as []string
	for a, t := range alias {
		if t == name {
			as = append(as, a)
		}
	}
	sortStrings(as)
	return as
}
