package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/cli"
	"github.com/rhizome-mesh/rhizome/spec"
)

// catalog says that the domains, teams and upstream products a scaffold
// refers to exist, as they would in the server's catalog.
type catalog struct{}

func (catalog) Exists(k rhizome.Kind, id string) bool {
	return k == rhizome.KindDomain || k == rhizome.KindTeam || k == rhizome.KindDataProduct
}

func TestInitScaffoldsValidate(t *testing.T) {
	tests := []struct {
		template string
		args     []string
		files    []string
	}{
		{"csv", nil, []string{"contract.yaml", "infrastructure.yaml", "product.yaml", "sample.csv"}},
		{"postgres", []string{"--owner-team", "sales-ops"}, []string{"contract.yaml", "infrastructure.yaml", "product.yaml"}},
		{"sql", []string{"--from", "dp.sales.orders", "--from", "dp.customer.360"}, []string{"contract.yaml", "infrastructure.yaml", "product.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.template, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			args := append([]string{"init", "product", "dp.sales.daily-revenue", "--domain", "sales", "--template", tt.template, "--dir", dir}, tt.args...)
			r := run(t, nil, "", args...)
			if r.err != nil {
				t.Fatalf("%v\n%s", r.err, r.stderr)
			}
			if !strings.Contains(r.stdout, "Next steps:") || !strings.Contains(r.stdout, "rhizome apply -f "+dir) {
				t.Errorf("stdout lacks the next steps:\n%s", r.stdout)
			}
			entries, _ := os.ReadDir(dir)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if strings.Join(names, " ") != strings.Join(tt.files, " ") {
				t.Errorf("files %v, want %v", names, tt.files)
			}

			files, err := spec.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			docs, err := spec.Validate(catalog{}, files...)
			if err != nil {
				t.Fatalf("the scaffold does not validate:\n%v", err)
			}
			kinds := map[rhizome.Kind]string{}
			for _, d := range docs {
				kinds[d.Kind] = d.ID
			}
			want := map[rhizome.Kind]string{
				rhizome.KindDataProduct:    "dp.sales.daily-revenue",
				rhizome.KindDataContract:   "dc.sales.daily-revenue",
				rhizome.KindInfrastructure: "sales-daily-revenue",
			}
			for k, id := range want {
				if kinds[k] != id {
					t.Errorf("%s = %q, want %q", k, kinds[k], id)
				}
			}
			for _, d := range docs {
				switch v := d.Value.(type) {
				case *rhizome.Contract:
					if v.APIVersion != "v3.1.0" || v.Version != "1.0.0" || v.Status != "draft" || v.Domain != "sales" || v.DataProduct != "dp.sales.daily-revenue" || len(v.Schema) == 0 {
						t.Errorf("contract %+v", v)
					}
				case *rhizome.Infrastructure:
					s := v.Spec
					if v.APIVersion != "platform/v1" || s.Storage.Location != "local" || s.Processing.Engine != "duckdb" ||
						s.Orchestration.Tool != "rhizome" || s.Orchestration.Schedule == "" || len(s.Quality.Checks) == 0 {
						t.Errorf("infrastructure %+v", v)
					}
				case *rhizome.DataProduct:
					if tt.template == "sql" && (len(v.InputPorts) != 2 || v.InputPorts[1].Product != "dp.customer.360") {
						t.Errorf("sql input ports %+v", v.InputPorts)
					}
					if tt.template != "sql" && (len(v.InputPorts) != 1 || v.InputPorts[0].Connector != tt.template) {
						t.Errorf("input ports %+v", v.InputPorts)
					}
				}
			}
		})
	}
}

func TestInitRefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "contract.yaml"), "mine\n")
	r := run(t, nil, "", "init", "product", "dp.sales.orders", "--domain", "sales", "--dir", dir)
	if r.code() != cli.ExitConflict || !strings.Contains(r.stderr, "contract.yaml already exists") {
		t.Fatalf("exit %d, stderr %q", r.code(), r.stderr)
	}
	entries, _ := os.ReadDir(dir)
	if b, _ := os.ReadFile(filepath.Join(dir, "contract.yaml")); len(entries) != 1 || string(b) != "mine\n" {
		t.Errorf("init touched the directory: %d entries, contract %q", len(entries), b)
	}
}

func TestInitChecksTheID(t *testing.T) {
	tests := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"sales.orders", "--domain", "sales"}, cli.ExitInvalid,
			"error: product id \"sales.orders\" is not dp.<domain>.<name>\n  hint: use lower-case letters, digits and '-', e.g. dp.sales.orders\n"},
		{[]string{"dp.Sales.orders", "--domain", "sales"}, cli.ExitInvalid, "is not dp.<domain>.<name>"},
		{[]string{"dp.sales.orders", "--domain", "marketing"}, cli.ExitInvalid,
			"error: product id \"dp.sales.orders\" is in domain \"sales\", but --domain is \"marketing\"\n  hint: the second part of the id is the domain: use dp.marketing.orders, or --domain sales\n"},
		{[]string{"dp.sales.orders", "--domain", "sales", "--template", "kafka"}, cli.ExitUsage, "unknown template \"kafka\": want one of csv, postgres, sql"},
		{[]string{"dp.sales.orders", "--domain", "sales", "--template", "sql"}, cli.ExitUsage, "--template sql needs --from"},
		{[]string{"dp.sales.orders", "--domain", "sales", "--from", "dp.a.b"}, cli.ExitUsage, "--from is for --template sql only"},
		{[]string{"dp.sales.orders", "--domain", "sales", "--template", "sql", "--from", "orders"}, cli.ExitInvalid, "--from \"orders\" is not a product id"},
	}
	for _, tt := range tests {
		dir := filepath.Join(t.TempDir(), "out")
		r := run(t, nil, "", append([]string{"init", "product", "--dir", dir}, tt.args...)...)
		if r.code() != tt.code || !strings.Contains(r.stderr, tt.stderr) {
			t.Errorf("init product %v: exit %d, stderr %q; want %d, %q", tt.args, r.code(), r.stderr, tt.code, tt.stderr)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("init product %v wrote %s", tt.args, dir)
		}
	}
}
