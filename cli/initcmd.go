package cli

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/template"

	"github.com/spf13/cobra"

	"github.com/rhizome-mesh/rhizome"
)

// Scaffolds for 'rhizome init product'. templates/base holds the files
// every product gets; templates/<name>/blocks.tmpl fills the blocks that
// differ (description, input_ports, properties, custom_properties), and
// its other *.tmpl files are written too, replacing a base file of the
// same name. Adding a template is adding a directory.
//
//go:embed templates
var templatesFS embed.FS

// productIDRe is a product id as spec accepts it, with the domain and the
// name captured: dp.<domain>.<name>.
var productIDRe = regexp.MustCompile(`^dp\.([a-z][a-z0-9-]*)\.([a-z0-9][a-z0-9-]*(?:\.[a-z0-9][a-z0-9-]*)*)$`)

// scaffold is what the templates see.
type scaffold struct {
	ID, Domain, Name string
	Title            string // "Sales Orders"
	Tag              string
	OwnerTeam        string
	ContractID       string
	Infra            string // DataProductInfrastructure metadata.name
	Table            string // SQL-friendly name of the output table
	Upstream         []upstream
	UpstreamIDs      []string
}

type upstream struct{ ID, Port string }

func templateNames() []string {
	entries, _ := templatesFS.ReadDir("templates")
	var names []string
	for _, e := range entries {
		if e.IsDir() && e.Name() != "base" {
			names = append(names, e.Name())
		}
	}
	return names
}

func (a *app) initCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Scaffold new manifests",
	}
	var (
		domain, tmpl, dir, owner string
		from                     []string
	)
	product := &cobra.Command{
		Use:   "product ID --domain DOMAIN",
		Short: "Scaffold a data product: its manifest, ODCS contract and infrastructure",
		Long: `Init product writes a working data product to a new directory: a DataProduct
manifest, an ODCS v3.1.0 DataContract and a DataProductInfrastructure
manifest (local storage, the DuckDB engine, an hourly schedule and quality
checks). It works offline and never overwrites a file.

Templates: csv reads a CSV file, postgres reads a table of an operational
database, sql derives from upstream data products (--from).`,
		Example: `  rhizome init product dp.sales.orders --domain sales
  rhizome init product dp.sales.accounts --domain sales --template postgres
  rhizome init product dp.sales.revenue --domain sales --template sql --from dp.sales.orders`,
		Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			if domain == "" {
				return usagef(cmd, "--domain is required: the domain the product belongs to, e.g. --domain sales")
			}
			if !slices.Contains(templateNames(), tmpl) {
				return usagef(cmd, "unknown template %q: want one of %s", tmpl, list(templateNames()))
			}
			if (tmpl == "sql") != (len(from) > 0) {
				if tmpl == "sql" {
					return usagef(cmd, "--template sql needs --from PRODUCT_ID: the upstream products it derives from")
				}
				return usagef(cmd, "--from is for --template sql only")
			}
			s, err := newScaffold(args[0], domain, owner, from)
			if err != nil {
				return err
			}
			if dir == "" {
				dir = s.ID
			}
			files, err := render(tmpl, s)
			if err != nil {
				return err
			}
			if err := writeNew(dir, files); err != nil {
				return err
			}
			a.printNextSteps(dir, tmpl, s, files, owner == "")
			return nil
		}),
	}
	f := product.Flags()
	f.StringVar(&domain, "domain", "", "the product's domain: the second part of its id (required)")
	f.StringVar(&tmpl, "template", "csv", "what the product reads: "+strings.Join(templateNames(), ", "))
	f.StringVar(&dir, "dir", "", "directory to write (default ./ID)")
	f.StringVar(&owner, "owner-team", "", "owning team (default DOMAIN-team)")
	f.StringArrayVar(&from, "from", nil, "upstream product id, for --template sql (repeatable)")
	cmd.AddCommand(product)
	return cmd
}

// newScaffold checks the id against the domain and derives every name.
func newScaffold(id, domain, owner string, from []string) (scaffold, error) {
	m := productIDRe.FindStringSubmatch(id)
	if m == nil {
		return scaffold{}, rhizome.Errorf(rhizome.EInvalid, "product id %q is not dp.<domain>.<name>", id).
			WithHint("use lower-case letters, digits and '-', e.g. dp.%s.orders", orDefault(domain, "sales"))
	}
	if m[1] != domain {
		return scaffold{}, rhizome.Errorf(rhizome.EInvalid, "product id %q is in domain %q, but --domain is %q", id, m[1], domain).
			WithHint("the second part of the id is the domain: use dp.%s.%s, or --domain %s", domain, m[2], m[1])
	}
	name := m[2]
	s := scaffold{
		ID: id, Domain: domain, Name: name, Tag: name,
		Title:      title(domain + "-" + name),
		OwnerTeam:  orDefault(owner, domain+"-team"),
		ContractID: "dc." + domain + "." + name,
		Infra:      domain + "-" + strings.ReplaceAll(name, ".", "-"),
		Table:      sqlName(name),
	}
	for _, up := range from {
		um := productIDRe.FindStringSubmatch(up)
		if um == nil {
			return scaffold{}, rhizome.Errorf(rhizome.EInvalid, "--from %q is not a product id dp.<domain>.<name>", up).
				WithHint("name an upstream data product, e.g. --from dp.%s.orders", domain)
		}
		s.Upstream = append(s.Upstream, upstream{ID: up, Port: sqlName(um[1] + "_" + um[2])})
		s.UpstreamIDs = append(s.UpstreamIDs, up)
	}
	return s, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// title turns "sales-orders" into "Sales Orders".
func title(s string) string {
	words := strings.FieldsFunc(s, func(r rune) bool { return r == '-' || r == '.' })
	for i, w := range words {
		words[i] = strings.ToUpper(w[:1]) + w[1:]
	}
	return strings.Join(words, " ")
}

// sqlName turns "daily-orders" into "daily_orders".
func sqlName(s string) string {
	return strings.NewReplacer("-", "_", ".", "_").Replace(s)
}

// scaffoldFile is one rendered file.
type scaffoldFile struct {
	name string
	data []byte
}

// fileOrder puts the manifests first, in the order a reader wants them.
var fileOrder = []string{"product.yaml", "contract.yaml", "infrastructure.yaml"}

// render executes a template's files.
func render(name string, s scaffold) ([]scaffoldFile, error) {
	t := template.New(name).Option("missingkey=error").Funcs(template.FuncMap{
		"q":    yamlString,
		"join": strings.Join,
	})
	outputs := map[string]bool{}
	for _, dir := range []string{"templates/base", "templates/" + name} {
		paths, _ := fs.Glob(templatesFS, dir+"/*.tmpl")
		for _, p := range paths {
			b, err := templatesFS.ReadFile(p)
			if err != nil {
				return nil, rhizome.Wrap(err, "template %s", p)
			}
			base := path.Base(p)
			if _, err := t.New(base).Parse(string(b)); err != nil {
				return nil, rhizome.Wrap(err, "template %s", p)
			}
			if base != "blocks.tmpl" {
				outputs[strings.TrimSuffix(base, ".tmpl")] = true
			}
		}
	}
	names := slices.Sorted(maps.Keys(outputs))
	slices.SortStableFunc(names, func(a, b string) int { return rank(a) - rank(b) })
	var files []scaffoldFile
	for _, n := range names {
		var buf bytes.Buffer
		if err := t.ExecuteTemplate(&buf, n+".tmpl", s); err != nil {
			return nil, rhizome.Wrap(err, "template %s/%s", name, n)
		}
		files = append(files, scaffoldFile{n, buf.Bytes()})
	}
	return files, nil
}

// plainYAML matches strings that YAML reads back as the same string.
var plainYAML = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9 ._/-]*[A-Za-z0-9]$`)

// yamlString writes s as a YAML string: plain when that reads back as the
// same string, else double-quoted (a JSON string is a YAML scalar).
func yamlString(s string) string {
	switch strings.ToLower(s) {
	case "y", "n", "yes", "no", "on", "off", "true", "false", "null":
	default:
		if plainYAML.MatchString(s) {
			return s
		}
	}
	b, _ := json.Marshal(s)
	return string(b)
}

func rank(name string) int {
	if i := slices.Index(fileOrder, name); i >= 0 {
		return i
	}
	return len(fileOrder)
}

// writeNew writes files into dir, refusing before writing anything if one
// of them exists.
func writeNew(dir string, files []scaffoldFile) error {
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if _, err := os.Lstat(p); err == nil {
			return rhizome.Errorf(rhizome.EConflict, "%s already exists; init never overwrites a file", p).
				WithHint("choose another directory with --dir, or move the existing files away")
		} else if !errors.Is(err, fs.ErrNotExist) {
			return rhizome.Wrap(err, "checking %s", p)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return rhizome.Wrap(err, "creating %s", dir)
	}
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		w, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return rhizome.Wrap(err, "writing %s", p)
		}
		_, err = w.Write(f.data)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return rhizome.Wrap(err, "writing %s", p)
		}
	}
	return nil
}

func (a *app) printNextSteps(dir, tmpl string, s scaffold, files []scaffoldFile, defaultOwner bool) {
	fmt.Fprintf(a.stdout, "Created %s from the %s template:\n", s.ID, tmpl)
	what := map[string]string{
		"product.yaml":        "DataProduct " + s.ID,
		"contract.yaml":       "DataContract " + s.ContractID + " (ODCS v3.1.0)",
		"infrastructure.yaml": "DataProductInfrastructure " + s.Infra,
		"sample.csv":          "sample rows for the csv input port",
	}
	t := newTable(a.stdout)
	for _, f := range files {
		t.row("  "+filepath.Join(dir, f.name), what[f.name])
	}
	t.flush()
	if defaultOwner {
		fmt.Fprintf(a.stdout, "\nThe owner team is %s; set another with --owner-team.\n", s.OwnerTeam)
	}
	fmt.Fprintf(a.stdout, `
Next steps:
  1. Edit the files: the contract's schema, the input ports, the checks.
  2. Check them offline, with the manifests of domain %s and team %s:
       rhizome validate -f %s -f <domain and team manifests>
  3. See the plan, then apply it:
       rhizome apply -f %s --dry-run
       rhizome apply -f %s
`, s.Domain, s.OwnerTeam, dir, dir, dir)
}
