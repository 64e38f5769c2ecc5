package quality

import (
	"fmt"
	"sort"
	"strings"
)

// referential_integrity: every value of a column must exist in another
// table's column (another product's output, registered in the same
// session by the caller).

func init() {
	Register(Type{
		Name: "referential_integrity", Kind: KindRow, DefaultThreshold: "== 0",
		Summary: "Rows whose column value is missing from another product's (or table's) column: a foreign key.",
		Fields: []Field{columnField,
			{Name: "product", Type: "string", Doc: "the referenced data product's id, e.g. dp.customer.360; apply checks that it exists, and the pipeline registers its output under that name"},
			{Name: "table", Type: "string", Doc: "the referenced table as the caller registered it in the session (instead of product, or to name the product's table)"},
			{Name: "ref_column", Type: "string", Doc: "the referenced column (default: the same name as column)"},
			whereField},
		Notes: append([]string{
			"One of `product` and `table` is required. With only `product`, the referenced table is the product id as one identifier (the caller registers the product's output under it).",
			"The referenced table is read inside the same query (a semi-join), so the check still adds no scan of the checked table; the caller must make sure the reader may see the referenced product.",
			"NULL references are not orphans (count them with null_count); NULLs in the referenced column match nothing.",
		}, rowNotes...),
		Compile: func(c Check, _ string) (Plan, error) {
			if err := needColumn(c); err != nil {
				return Plan{}, err
			}
			ref, err := refTable(c)
			if err != nil {
				return Plan{}, err
			}
			refCol, _ := argString(c, "ref_column")
			if refCol == "" {
				refCol = c.Column
			}
			pred := fmt.Sprintf("%s NOT IN (SELECT %s FROM %s WHERE %[2]s IS NOT NULL)", quoteIdent(c.Column), quoteIdent(refCol), ref)
			return rowPlan(c, pred)
		},
	})
}

// refTable is the quoted referenced table of a referential_integrity check.
func refTable(c Check) (string, error) {
	table, _ := argString(c, "table")
	product, _ := argString(c, "product")
	switch {
	case table != "":
		return quoteTable(table), nil
	case product != "":
		return quoteIdent(product), nil
	}
	return "", c.invalid("args.product", "referential_integrity needs `product` (or `table`): what the column refers to", "add e.g. `product: dp.customer.360` and `ref_column: customer_id`")
}

// ReferencedProducts lists the data products that checks refer to
// (referential_integrity's `product`), sorted and without repeats, so
// apply can check that each exists.
func ReferencedProducts(checks []Check) []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range checks {
		t, ok := Lookup(c.Type)
		if !ok || t.Name != "referential_integrity" {
			continue
		}
		if p, _ := argString(c, "product"); strings.TrimSpace(p) != "" && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}
