package quality

import "fmt"

// referential_integrity: every value of a column must exist in another
// table's column (another product's output, registered in the same
// session by the caller).

func init() {
	Register(Type{
		Name: "referential_integrity", Kind: KindRow, DefaultThreshold: "== 0",
		Summary: "Rows whose column value is missing from another table's column (a foreign key).",
		Fields: []Field{columnField,
			{Name: "table", Type: "string", Required: true, Doc: "the referenced table, as the caller registered it in the session (e.g. another product's output)"},
			{Name: "ref_column", Type: "string", Doc: "the referenced column (default: the same name as column)"},
			whereField},
		Notes: append([]string{"The referenced table is read inside the same query (a semi-join), so the check still adds no scan of the checked table; the caller must make sure the reader may see the referenced product."}, rowNotes...),
		Compile: func(c Check, _ string) (Plan, error) {
			if err := needColumn(c); err != nil {
				return Plan{}, err
			}
			ref, _ := argString(c, "table")
			if ref == "" {
				return Plan{}, c.invalid("args.table", "referential_integrity needs `table`: the referenced table", "add e.g. `table: customers`")
			}
			refCol, _ := argString(c, "ref_column")
			if refCol == "" {
				refCol = c.Column
			}
			pred := fmt.Sprintf("%s NOT IN (SELECT %s FROM %s WHERE %[2]s IS NOT NULL)", quoteIdent(c.Column), quoteIdent(refCol), quoteTable(ref))
			return rowPlan(c, pred)
		},
	})
}
