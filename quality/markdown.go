package quality

import (
	_ "embed"
	"fmt"
	"strings"
)

//go:embed guide.md
var guide string

// Markdown renders docs/quality-checks.md: the hand-written guide.md (check
// sources, evaluation, metric definitions) and the catalogue from the
// registry.
func Markdown() string {
	var b strings.Builder
	b.WriteString(guide)
	b.WriteString("Kinds: `aggregate` checks are a metric in the table's one scan; `row` checks count failing rows in that scan " +
		"and sample them on failure; `custom` checks run their own query, read the columns, or read history.\n\n")
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
		fmt.Fprintf(&b, "\n### %s\n\n%s\n\nKind: %s.", t.Name, t.Summary, t.Kind)
		if as := aliasesOf(t.Name); len(as) > 0 {
			fmt.Fprintf(&b, " Also spelt: `%s`.", strings.Join(as, "`, `"))
		}
		if t.DefaultThreshold != "" {
			fmt.Fprintf(&b, " Default threshold: `%s`.", t.DefaultThreshold)
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
