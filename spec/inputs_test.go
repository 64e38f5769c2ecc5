package spec

import (
	"reflect"
	"strings"
	"testing"

	"github.com/rhizome-mesh/rhizome"
)

func TestParseInputs(t *testing.T) {
	domain := "apiVersion: rhizome/v1\nkind: Domain\nname: customer\nowner_teams: [t]\n"
	tests := []struct {
		name, file, data string
		ids              []string
		want             []want
	}{
		{name: "json", file: "d.json", data: `{"apiVersion": "rhizome/v1", "kind": "Domain", "name": "customer", "owner_teams": ["t"]}`, ids: []string{"customer"}},
		{name: "empty documents", file: "m.yaml", data: "---\n" + domain + "---\n---\n# nothing\n---\n" + strings.ReplaceAll(domain, "customer", "sales") + "...\n", ids: []string{"customer", "sales"}},
		{name: "empty file", file: "e.yaml", data: "# only a comment\n"},
		{name: "anchors and merge keys", file: "a.yaml", data: "apiVersion: rhizome/v1\nkind: Team\nname: t\nmembers:\n  - &alice {principal: alice@example.com, roles: [developer]}\n  - <<: *alice\n    principal: bob@example.com\n", ids: []string{"t"}},
		{name: "a list is not a manifest", file: "l.yaml", data: "- a\n- b\n",
			want: []want{{"l.yaml", 1, 1, "", "a manifest must be a mapping; got a list", "start the document with `apiVersion:` and `kind:`"}}},
		{name: "missing kind", file: "k.yaml", data: "apiVersion: rhizome/v1\nname: x\n",
			want: []want{{"k.yaml", 1, 1, "kind", "missing `kind`", "add `kind:` with one of: Domain, Team, Policy, DataContract, DataProductInfrastructure, DataProduct"}}},
		{name: "kind short form", file: "k.yaml", data: "apiVersion: rhizome/v1\nkind: product\n",
			want: []want{{"k.yaml", 2, 7, "kind", "unknown kind `product`", "did you mean `DataProduct`? (kinds: Domain, Team, Policy, DataContract, DataProductInfrastructure, DataProduct)"}}},
		{name: "infinity", file: "i.yaml", data: domain + "custom_properties: {x: .inf}\n",
			want: []want{{"i.yaml", 5, 24, "custom_properties.x", ".inf is not a number JSON can hold", `quote it if you mean the text: ".inf"`}}},
		{name: "unknown alias", file: "u.yaml", data: domain + "description: *nope\n",
			want: []want{{"u.yaml", 5, 14, "description", "alias *nope names no anchor defined before it", "define `&nope` earlier in the document"}}},
		{name: "duplicate key", file: "d.yaml", data: domain + "name: again\n",
			want: []want{{"d.yaml", 5, 1, "", `malformed YAML: mapping key "name" already defined at [3:1]`, "each key may appear once in a mapping; remove or rename one"}}},
		{name: "duplicate key in a later document", file: "d.yaml", data: domain + "---\n" + domain + "name: again\n",
			want: []want{{"d.yaml", 10, 1, "", `malformed YAML: mapping key "name" already defined at [8:1]`, "each key may appear once in a mapping; remove or rename one"}}},
		{name: "positions in a later document", file: "d.yaml", data: "---\n" + domain + "---\n---\n" + strings.Replace(domain, "rhizome/v1", "v1", 1),
			want: []want{{"d.yaml", 8, 13, "apiVersion", "want `rhizome/v1`, got `v1`", "The version of Rhizome's manifest format: `rhizome/v1`."}}},
		{name: "wrong apiVersion", file: "v.yaml", data: strings.Replace(domain, "rhizome/v1", "rhizome/v2", 1),
			want: []want{{"v.yaml", 1, 13, "apiVersion", "want `rhizome/v1`, got `rhizome/v2`", "The version of Rhizome's manifest format: `rhizome/v1`."}}},
		{name: "bad product id", file: "p.yaml", data: "apiVersion: rhizome/v1\nkind: DataProduct\nid: customer-360\nname: x\nowner_team: t\ndomain: customer\ncurrent_version: 1.0.0\nsensitivity_level: public\n",
			want: []want{{"p.yaml", 3, 5, "id", `"customer-360" is not in the expected form`,
				`want e.g. "dp.customer.360" (The product's unique, stable id: dp.<domain>.<name>, lower-case, e.g. dp.customer.360)`}}},
		{name: "documentation_url is a URI", file: "p.yaml", data: "apiVersion: rhizome/v1\nkind: DataProduct\nid: dp.customer.x\nname: x\nowner_team: t\ndomain: customer\ncurrent_version: 1.0.0\nsensitivity_level: public\ndocumentation_url: docs/x\n",
			want: []want{{"p.yaml", 9, 20, "documentation_url", "`docs/x` is not a valid uri",
				`want e.g. "https://docs.company.com/data-products/customer-360" (Where the product is documented (an absolute URL))`}}},
		{name: "ODCS v2 is refused", file: "c.yaml", data: "apiVersion: v2.2.2\nkind: DataContract\nid: c\nversion: 1.0.0\nstatus: active\n",
			want: []want{{"c.yaml", 1, 13, "apiVersion", "ODCS v2.2.2 contracts are not supported", "migrate the contract to ODCS v3: want `apiVersion: v3.1.0`"}}},
		{name: "ODCS server fields follow its type", file: "c.yaml", data: "apiVersion: v3.1.0\nkind: DataContract\nid: c\nversion: 1.0.0\nstatus: active\nservers:\n  - server: prod\n    type: postgres\n    host: db\n    port: \"5432\"\n    database: d\n    schema: s\n  - server: lake\n    type: s3\n    format: parquet\ncontractCreatedTs: yesterday\n",
			want: []want{
				{"c.yaml", 10, 11, "servers[0].port", "want an integer, got a string", "write the number without quotes: 5432"},
				{"c.yaml", 13, 5, "servers[1].location", "missing required field `location`", "add `location:`: S3 URL, starting with `s3://`"},
				{"c.yaml", 16, 20, "contractCreatedTs", "`yesterday` is not a valid date-time", "Timestamp in UTC of when the data contract was created."},
			}},
		{name: "ODCS v3.0.2 is accepted", file: "c.yaml", data: "apiVersion: v3.0.2\nkind: DataContract\nid: c\nversion: 1.0.0\nstatus: active\n", ids: []string{"c"}},
		{name: "ODCS unknown top-level field", file: "c.yaml", data: "apiVersion: v3.1.0\nkind: DataContract\nid: c\nversion: 1.0.0\nstatus: active\ndomian: x\n",
			want: []want{{"c.yaml", 6, 1, "domian", "unknown field `domian`", "did you mean `domain`?"}}},
		{name: "port rules", file: "p.yaml", data: "apiVersion: rhizome/v1\nkind: DataProduct\nid: dp.customer.x\nname: x\nowner_team: t\ndomain: customer\ncurrent_version: 1.0.0\nsensitivity_level: public\n" +
			"input_ports:\n  - name: a\n    product: dp.sales.y\n    connector: csv\n  - name: b\noutput_ports:\n  - name: a\n    type: table\n  - name: c\n    type: tabel\n",
			want: []want{
				{"p.yaml", 12, 16, "input_ports[0].connector", "an input port has both `product` and `connector`", "an input port reads an upstream data product (`product`) or a source system (`connector`): keep one"},
				{"p.yaml", 13, 5, "input_ports[1]", "an input port needs `product` or `connector`", "set `product:` to an upstream data product id, or `connector:` to read a source system (csv, parquet, json, http, postgres, ...)"},
				{"p.yaml", 15, 11, "output_ports[0].name", "port name `a` is used twice", "it is already used at input_ports[0]; port names are unique within a product"},
				{"p.yaml", 18, 11, "output_ports[1].type", "`tabel` is not one of `table`, `api`, `stream`, `file`", "did you mean `table`?"},
			}},
		{name: "policy scope", file: "p.yaml", data: "apiVersion: rhizome/v1\nkind: Policy\nname: p\nscope: domain\ndomains_applicable: [all, sales]\n",
			want: []want{
				{"p.yaml", 1, 1, "domain", "a `scope: domain` policy needs `domain`", "add `domain:` naming the Domain that owns the policy"},
				{"p.yaml", 5, 22, "domains_applicable[0]", "`all` cannot be combined with named domains", `write either ["all"] or a list of domains`},
			}},
		{name: "team roles", file: "t.yaml", data: "apiVersion: rhizome/v1\nkind: Team\nname: t\nmembers:\n  - principal: a\n    roles: [owner]\n  - principal: a\n",
			want: []want{
				{"t.yaml", 6, 13, "members[0].roles[0]", "`owner` is not one of `technical_owner`, `developer`, `business_owner`, `steward`",
					"technical_owner: responsible for infrastructure; developer: builds pipelines; business_owner: responsible for data accuracy; steward: responsible for quality."},
				{"t.yaml", 7, 16, "members[1].principal", "principal `a` is a member twice", "merge its roles into members[0]"},
			}},
		{name: "infra rules", file: "i.yaml", data: "apiVersion: platform/v1\nkind: DataProductInfrastructure\nmetadata: {name: i}\nspec:\n  processing: {min_workers: 3, max_workers: 2}\n  quality:\n    checks:\n      - name: null_count\n      - name: row_count\n        threshold: \"< 2 hours\"\n      - name: freshnes\n",
			want: []want{
				{"i.yaml", 5, 29, "spec.processing.min_workers", "min_workers (3) is more than max_workers (2)", "min_workers must be at most max_workers"},
				{"i.yaml", 8, 9, "spec.quality.checks[0]", "check `null_count` needs `column`", "add `column:` naming the column to check"},
				{"i.yaml", 10, 20, "spec.quality.checks[1].threshold", `"< 2 hours" is a duration; only a freshness check takes one`, `want a number or a percentage, e.g. "> 1000" or "< 1%"`},
				{"i.yaml", 11, 15, "spec.quality.checks[2].name", "`freshnes` is not one of", "did you mean `freshness`?"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs, err := Parse(File{Name: tt.file, Data: []byte(tt.data)})
			if tt.want == nil && err != nil {
				t.Fatalf("Parse: %v", err)
			}
			assertProblems(t, err, tt.want)
			var ids []string
			for _, d := range docs {
				ids = append(ids, d.ID)
			}
			if len(tt.want) == 0 && !reflect.DeepEqual(ids, tt.ids) {
				t.Errorf("ids %q, want %q", ids, tt.ids)
			}
		})
	}
}

func TestMergeKeys(t *testing.T) {
	data := "apiVersion: rhizome/v1\nkind: Team\nname: t\nmembers:\n  - &alice {principal: alice@example.com, roles: [developer]}\n  - <<: *alice\n    principal: bob@example.com\n"
	d, err := DecodeOne("t.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	got := d.Value.(*rhizome.Team).Members
	want := []rhizome.Member{{Principal: "alice@example.com", Roles: []string{"developer"}}, {Principal: "bob@example.com", Roles: []string{"developer"}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("members %+v", got)
	}
	if p := d.PosOf("members[1].principal"); p.Line != 7 || p.Col != 16 {
		t.Errorf("explicit key position %s", p)
	}
}
