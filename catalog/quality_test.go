package catalog_test

import (
	"strings"
	"testing"

	"github.com/rhizome-mesh/rhizome"
)

const qualityContract = `apiVersion: v3.1.0
kind: DataContract
id: orders-contract
version: 1.0.0
status: active
schema:
  - name: orders
    properties:
      - {name: order_id, physicalType: BIGINT, required: true}
      - {name: customer_id, physicalType: VARCHAR}
      - {name: status, physicalType: VARCHAR}
`

const qualityInfra = `apiVersion: platform/v1
kind: DataProductInfrastructure
metadata: {name: lake, namespace: sales}
spec:
  quality:
    checks:
      - name: null_percentage
        column: email
        threshold: "< 1%"
`

// TestQualityChecksValidatedAtApply: every bad check comes back at once,
// in the file that declares it, with its field path and the reason;
// nothing is applied.
func TestQualityChecksValidatedAtApply(t *testing.T) {
	c, s := newCatalog(t)
	mustApply(t, c, admin, req(false, base))
	bad := product("dp.sales.orders", "sales-team", `contract: orders-contract
infrastructure: lake
quality:
  row_count: "> lots"
  freshness: "< 3 fortnights"
  null_percentage: {column: customer_idd, threshold: "< 1%"}
  custom_sql: {query: "SELECT count(*) FROM read_csv('/etc/passwd')"}
  referential_integrity: {column: customer_id, table: dp.customer.nope}
  bogus_check: "> 1"
  anomaly: {check: row_cnt}
  fk2: {type: referential_integrity, column: customer_id, product: dp.customer.gone}
  writer: {type: custom_sql, query: "COPY (SELECT 1) TO '/tmp/x.csv'"}
  dup: {type: duplicate_count, column: order_id, where: "order_id IN (SELECT * FROM 'ids.parquet')"}
`)
	_, err := c.Apply(ctx, admin, req(false, bad, qualityContract, qualityInfra))
	if rhizome.Code(err) != rhizome.EInvalid {
		t.Fatalf("apply: %v", err)
	}
	var lines []string
	for _, p := range rhizome.ProblemsOf(err) {
		lines = append(lines, p.String())
	}
	got := strings.Join(lines, "\n")
	for _, want := range []string{
		`f0.yaml:13:`, `quality.row_count`, `"> lots" is not a threshold`,
		`f0.yaml:14:`, `quality.freshness`, `fortnights`, `want an age, e.g. "< 24 hours"`,
		`f0.yaml:15:`, `quality.null_percentage.column: unknown column "customer_idd"`,
		`f0.yaml:16:23`, `quality.custom_sql.query: READ_CSV is not allowed in a check`,
		`f0.yaml:17:`, `quality.referential_integrity.table: no data product dp.customer.nope`,
		`quality.bogus_check.type: unknown check type "bogus_check"`,
		`f0.yaml:19:`, `quality.anomaly.check: anomaly watches check "row_cnt", which the product does not declare`,
		`f0.yaml:20:`, `quality.fk2.product: no data product dp.customer.gone`,
		`f0.yaml:21:`, `quality.writer.query: a check query is one SELECT statement, not COPY`,
		`f0.yaml:22:`, `quality.dup.where: reading a file by name is not allowed`,
		`f2.yaml:8:`, `spec.quality.checks[0].column: unknown column "email"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
	if _, err := s.Get(ctx, rhizome.KindDataProduct, "dp.sales.orders"); rhizome.Code(err) != rhizome.ENotFound {
		t.Fatalf("something was applied: %v", err)
	}

	// A bad ODCS rule is reported in the contract's file.
	badRule := strings.Replace(qualityContract, "{name: status, physicalType: VARCHAR}",
		"{name: status, physicalType: VARCHAR, quality: [{metric: invalidValues, mustBe: 0}]}", 1)
	_, err = c.Apply(ctx, admin, req(false, badRule))
	if rhizome.Code(err) != rhizome.EInvalid || !strings.Contains(err.Error()+problemsText(err), "invalidValues needs arguments.validValues") ||
		!strings.Contains(problemsText(err), "f0.yaml:") {
		t.Fatalf("bad rule: %v\n%s", err, problemsText(err))
	}

	// Good checks apply, referring to a product applied in the same input.
	good := product("dp.sales.orders", "sales-team", `contract: orders-contract
quality:
  row_count: "> 0"
  freshness: "< 24 hours"
  null_percentage: {column: customer_id, threshold: "< 1%"}
  custom_sql: {query: "SELECT count(*) FROM {object} WHERE status = 'lost'"}
  referential_integrity: {column: customer_id, table: dp.sales.customers, ref_column: id}
  fk2: {type: referential_integrity, column: customer_id, product: dp.sales.customers, ref_column: id}
  anomaly: {check: row_count}
`) + product("dp.sales.customers", "sales-team", "")
	mustApply(t, c, admin, req(false, good, qualityContract))

	// A contract that drops a column the stored product checks is refused.
	renamed := strings.Replace(qualityContract, "{name: customer_id,", "{name: cust_id,", 1)
	_, err = c.Apply(ctx, admin, req(false, renamed))
	if rhizome.Code(err) != rhizome.EInvalid ||
		!strings.Contains(problemsText(err), `f0.yaml:1:1: stored product dp.sales.orders, quality.null_percentage.column: unknown column "customer_id"`) {
		t.Fatalf("renamed column: %v\n%s", err, problemsText(err))
	}

	// A bad rule in a contract a stored product uses is said once, in the
	// contract, not again for the product.
	badRange := strings.Replace(qualityContract, "{name: status, physicalType: VARCHAR}",
		"{name: status, physicalType: VARCHAR, quality: [{metric: rowCount, mustBeBetween: [5, 1]}]}", 1)
	_, err = c.Apply(ctx, admin, req(false, badRange))
	if got := problemsText(err); rhizome.Code(err) != rhizome.EInvalid || strings.Count(got, "is not a range") != 1 || !strings.Contains(got, "f0.yaml:11:") {
		t.Fatalf("bad range: %v\n%s", err, got)
	}
}

func problemsText(err error) string {
	var lines []string
	for _, p := range rhizome.ProblemsOf(err) {
		lines = append(lines, p.String())
	}
	return strings.Join(lines, "\n")
}
