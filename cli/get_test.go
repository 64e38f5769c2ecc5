package cli_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rhizome-mesh/rhizome"
)

// readAPI serves the read routes over a fixed set of objects.
func readAPI(t *testing.T, objs ...*rhizome.Object) map[string]string {
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	byPath := map[string]*rhizome.Object{}
	for _, o := range objs {
		o.UpdatedAt, o.UpdatedBy = at, "alice@example.com"
		byPath["/api/v1/"+o.Kind.Plural()+"/"+o.ID] = o
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/{kind}", func(w http.ResponseWriter, r *http.Request) {
		items := []*rhizome.Object{}
		q := r.URL.Query()
		for _, o := range objs {
			if o.Kind.Plural() != r.PathValue("kind") ||
				q.Get("domain") != "" && q.Get("domain") != o.Labels.Domain ||
				q.Get("owner_team") != "" && q.Get("owner_team") != o.Labels.OwnerTeam {
				continue
			}
			items = append(items, o)
		}
		json.NewEncoder(w).Encode(map[string]any{"items": items})
	})
	mux.HandleFunc("GET /api/v1/{kind}/{id}", func(w http.ResponseWriter, r *http.Request) {
		o, ok := byPath[r.URL.Path]
		if !ok {
			w.WriteHeader(404)
			json.NewEncoder(w).Encode(map[string]any{"error": rhizome.Errorf(rhizome.ENotFound, "no such object")})
			return
		}
		json.NewEncoder(w).Encode(o)
	})
	mux.HandleFunc("GET /api/v1/{kind}/{id}/history", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"items": []rhizome.Revision{
			{Revision: 1, Op: rhizome.OpCreate, Actor: "admin", At: at, ApplyID: "ap_1"},
			{Revision: 2, Op: rhizome.OpUpdate, Actor: "alice@example.com", At: at, ApplyID: "ap_2"},
		}})
	})
	mux.HandleFunc("GET /api/v1/products/{id}/versions", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"items": []rhizome.ProductVersion{
			{ProductID: "dp.customer.360", Version: "2.1.0", Current: true, Revision: 2, CreatedAt: at},
			{ProductID: "dp.customer.360", Version: "2.0.0", Revision: 1, CreatedAt: at},
		}})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return map[string]string{"RHIZOME_SERVER": srv.URL, "RHIZOME_TOKEN": "t"}
}

func object(kind rhizome.Kind, id string, rev int64, labels rhizome.Labels, manifest string) *rhizome.Object {
	return &rhizome.Object{Kind: kind, ID: id, Revision: rev, Labels: labels, Body: json.RawMessage(manifest)}
}

var mesh = []*rhizome.Object{
	object(rhizome.KindDomain, "customer", 1, rhizome.Labels{}, `{"name":"customer","display_name":"Customer","owner_teams":["customer-domain-team","platform-team"]}`),
	object(rhizome.KindTeam, "customer-domain-team", 1, rhizome.Labels{Domain: "customer"}, `{"name":"customer-domain-team","display_name":"Customer Domain Team","domain":"customer",
		"members":[{"principal":"alice@example.com","name":"Alice","roles":["technical_owner","developer"]},{"principal":"carol@example.com","roles":["business_owner"]}]}`),
	object(rhizome.KindDataProduct, "dp.customer.360", 2, rhizome.Labels{Domain: "customer", OwnerTeam: "customer-domain-team"}, `{
		"id":"dp.customer.360","name":"Customer 360 View","owner_team":"customer-domain-team","domain":"customer",
		"description":"Unified customer profile","status":"active","tags":["customer","360"],
		"sla":{"freshness":"15min","availability":"99.95%"},"quality_metrics":{"completeness":0.98,"accuracy":0.995},
		"current_version":"2.1.0","previous_versions":["2.0.0"],"sensitivity_level":"confidential","retention_period_days":730,
		"input_ports":[{"name":"crm","connector":"postgres","config":{"dsn_secret":"crm-dsn","table":"public.customers"}},{"name":"orders","product":"dp.sales.orders","version":"1.0.0"}],
		"output_ports":[{"name":"profiles","type":"table","format":"iceberg"}],
		"contract":"dc.customer.360","infrastructure":"customer-360"}`),
	object(rhizome.KindDataContract, "dc.customer.360", 1, rhizome.Labels{Domain: "customer"}, `{"apiVersion":"v3.1.0","kind":"DataContract","id":"dc.customer.360","version":"1.0.0","status":"active",
		"schema":[{"name":"profiles","properties":[{"name":"customer_id"},{"name":"email"}]}]}`),
}

func TestDescribeProduct(t *testing.T) {
	env := readAPI(t, mesh...)
	r := run(t, env, "", "describe", "product", "dp.customer.360")
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.stderr)
	}
	golden(t, "describe-product.golden", r.stdout)
}

func TestDescribeDomainAndTeam(t *testing.T) {
	env := readAPI(t, mesh...)
	r := run(t, env, "", "describe", "domain", "customer")
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.stderr)
	}
	golden(t, "describe-domain.golden", r.stdout)
	r = run(t, env, "", "describe", "team", "customer-domain-team")
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.stderr)
	}
	golden(t, "describe-team.golden", r.stdout)
}

func TestGetTables(t *testing.T) {
	env := readAPI(t, mesh...)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"get", "products"}, `
ID               NAME               DOMAIN    OWNER                 SENSITIVITY   VERSION  REVISION
dp.customer.360  Customer 360 View  customer  customer-domain-team  confidential  2.1.0    2
`},
		{[]string{"get", "domain", "customer"}, `
ID        NAME      OWNER TEAMS                          REVISION
customer  Customer  customer-domain-team, platform-team  1
`},
		{[]string{"get", "teams", "--domain", "customer"}, `
ID                    NAME                  DOMAIN    MEMBERS  REVISION
customer-domain-team  Customer Domain Team  customer  2        1
`},
		{[]string{"history", "dp", "dp.customer.360"}, `
REVISION  OP      ACTOR              AT                    APPLY
1         create  admin              2025-01-02T03:04:05Z  ap_1
2         update  alice@example.com  2025-01-02T03:04:05Z  ap_2
`},
		{[]string{"versions", "dp.customer.360"}, `
VERSION  CURRENT  REVISION  CREATED
2.1.0    yes      2         2025-01-02T03:04:05Z
2.0.0    -        1         2025-01-02T03:04:05Z
`},
	}
	for _, tt := range tests {
		r := run(t, env, "", tt.args...)
		if want := strings.TrimPrefix(tt.want, "\n"); r.err != nil || r.stdout != want {
			t.Errorf("rhizome %s: err %v\n got:\n%s\nwant:\n%s", strings.Join(tt.args, " "), r.err, r.stdout, want)
		}
	}
}

func TestGetNotFound(t *testing.T) {
	env := readAPI(t, mesh...)
	r := run(t, env, "", "get", "product", "dp.nope.nope")
	if r.code() != 6 || r.stderr != "error: no such object\n" {
		t.Errorf("exit %d, stderr %q", r.code(), r.stderr)
	}
}
