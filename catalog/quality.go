package catalog

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/qreport"
	"github.com/rhizome-mesh/rhizome/quality"
	"github.com/rhizome-mesh/rhizome/spec"
)

// qualityProblems compiles the quality checks of every product in the
// input, with its infrastructure and contract (from the input, else the
// store), and of every infrastructure and contract in the input: unknown
// check types and columns (a product's checks against its contract's
// output object), bad thresholds and durations, custom SQL that is not one
// SELECT or reads files, referential_integrity checks naming a product
// that does not exist. Each problem is placed in the file that declares
// the check; a check declared in a stored infrastructure or contract is
// reported at the product's `infrastructure` or `contract` field.
func qualityProblems(ctx context.Context, tx metastore.Reader, docs []*spec.Document, deleted map[string]bool) []rhizome.Problem {
	input := map[string]*spec.Document{}
	for _, d := range docs {
		input[key(d.Kind, d.ID)] = d
	}
	res := resolver{ctx, tx, deleted}
	exists := func(id string) bool {
		if _, ok := input[key(rhizome.KindDataProduct, id)]; ok {
			return true
		}
		return res.Exists(rhizome.KindDataProduct, id)
	}
	// get finds a referenced document: from the input, else the store.
	get := func(kind rhizome.Kind, id string) (*spec.Document, json.RawMessage) {
		if d, ok := input[key(kind, id)]; ok {
			return d, d.Body
		}
		if deleted[key(kind, id)] {
			return nil, nil
		}
		obj, err := tx.Get(ctx, kind, id)
		if err != nil {
			return nil, nil
		}
		return nil, obj.Body
	}
	var out []rhizome.Problem
	seen := map[string]bool{}
	keyOf := func(p rhizome.Problem) string {
		return fmt.Sprintf("%s:%d:%d:%s:%s", p.File, p.Line, p.Col, p.Path, p.Message)
	}
	add := func(p rhizome.Problem) {
		if k := keyOf(p); !seen[k] {
			seen[k] = true
			out = append(out, p)
		}
	}
	// Stored products whose infrastructure or contract is in the input are
	// checked again with the new version.
	products := docs
	for _, d := range docs {
		if d.Kind == rhizome.KindInfrastructure || d.Kind == rhizome.KindDataContract {
			stored, err := storedUsers(ctx, tx, input, deleted)
			if err != nil {
				return []rhizome.Problem{{Message: "reading the stored products: " + err.Error()}}
			}
			products = append(append([]*spec.Document(nil), docs...), stored...)
			break
		}
	}
	for _, d := range products {
		switch v := d.Value.(type) {
		case *rhizome.DataProduct:
			if d.Pos.File == "" && !usesInput(v, input) {
				continue // a stored product, untouched by this input
			}
			src := qreport.Sources{Product: v}
			var infDoc, conDoc *spec.Document
			if v.Infrastructure != "" {
				doc, body := get(rhizome.KindInfrastructure, v.Infrastructure)
				var inf rhizome.Infrastructure
				if body != nil && json.Unmarshal(body, &inf) == nil {
					src.Infrastructure, infDoc = &inf, doc
				}
			}
			if v.Contract != "" {
				doc, body := get(rhizome.KindDataContract, v.Contract)
				src.Contract, conDoc = body, doc
			}
			suite, probs := qreport.Gather(src)
			probs = append(probs, suite.Validate(exists)...)
			for _, p := range probs {
				if d.Pos.File == "" {
					// A stored product: say so at the document that changed
					// (its own field when the check is declared there).
					at := conDoc
					switch {
					case p.Source == quality.SourceInfrastructure && infDoc != nil, conDoc == nil:
						at = infDoc
					}
					if at == nil {
						continue
					}
					pr := p.Problem
					pr.Message = fmt.Sprintf("stored product %s, %s: %s", v.ID, pr.Path, pr.Message)
					pr.Pos, pr.Path = at.Pos, ""
					if (at == infDoc && p.Source == quality.SourceInfrastructure) || (at == conDoc && p.Source == quality.SourceContract) {
						// Said already, at the same place, by the document's own
						// checks: once is enough.
						own := p.Problem
						own.Pos = at.PosOf(p.Path)
						if seen[keyOf(own)] {
							continue
						}
						pr.Pos, pr.Path = at.PosOf(p.Path), p.Path
					}
					add(pr)
					continue
				}
				add(place(p, d, infDoc, conDoc, v))
			}
		case *rhizome.Infrastructure:
			if v.Spec.Quality == nil {
				continue
			}
			cs, probs := quality.FromInfra(v.Spec.Quality.Checks)
			probs = append(probs, quality.Validate(cs, nil)...)
			for _, p := range probs {
				p.Pos = d.PosOf(p.Path)
				add(p)
			}
		case *rhizome.Contract:
			cs, probs := quality.FromContract(d.Body)
			probs = append(probs, quality.Validate(cs, nil)...)
			for _, p := range probs {
				p.Pos = d.PosOf(p.Path)
				add(p)
			}
		}
	}
	return out
}

// place positions a problem of a product's suite in the document that
// declares the check.
func place(p qreport.Problem, product, infDoc, conDoc *spec.Document, dp *rhizome.DataProduct) rhizome.Problem {
	pr := p.Problem
	switch p.Source {
	case quality.SourceInfrastructure:
		if infDoc != nil {
			pr.Pos = infDoc.PosOf(pr.Path)
			return pr
		}
		pr.Message = fmt.Sprintf("infrastructure %s, %s: %s", dp.Infrastructure, pr.Path, pr.Message)
		pr.Path = "infrastructure"
	case quality.SourceContract:
		if conDoc != nil {
			pr.Pos = conDoc.PosOf(pr.Path)
			return pr
		}
		pr.Message = fmt.Sprintf("contract %s, %s: %s", dp.Contract, pr.Path, pr.Message)
		pr.Path = "contract"
	}
	pr.Pos = product.PosOf(pr.Path)
	return pr
}

// storedUsers returns the stored products that are not in the input (nor
// deleted by it), as documents without a position.
func storedUsers(ctx context.Context, tx metastore.Reader, input map[string]*spec.Document, deleted map[string]bool) ([]*spec.Document, error) {
	var out []*spec.Document
	after := ""
	for {
		page, err := tx.List(ctx, metastore.ListOptions{Kind: rhizome.KindDataProduct, After: after, Limit: 1000})
		if err != nil {
			return nil, err
		}
		for _, o := range page.Items {
			k := key(rhizome.KindDataProduct, o.ID)
			if _, ok := input[k]; ok || deleted[k] {
				continue
			}
			var dp rhizome.DataProduct
			if json.Unmarshal(o.Body, &dp) != nil {
				continue
			}
			out = append(out, &spec.Document{Kind: rhizome.KindDataProduct, ID: o.ID, Body: o.Body, Value: &dp})
		}
		if page.Next == "" {
			return out, nil
		}
		after = page.Next
	}
}

// usesInput says whether a product names an infrastructure or contract of
// the input.
func usesInput(dp *rhizome.DataProduct, input map[string]*spec.Document) bool {
	_, inf := input[key(rhizome.KindInfrastructure, dp.Infrastructure)]
	_, con := input[key(rhizome.KindDataContract, dp.Contract)]
	return (dp.Infrastructure != "" && inf) || (dp.Contract != "" && con)
}
