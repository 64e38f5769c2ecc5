package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"

	"github.com/rhizome-mesh/rhizome"
)

// decode turns a manifest body into plain values (maps, slices, float64...).
func decode(body json.RawMessage) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// Diff lists the fields that differ between two manifests, in path order.
// Key order does not count: two manifests with the same fields are equal.
func Diff(oldBody, newBody json.RawMessage) ([]rhizome.FieldChange, error) {
	o, err := decode(oldBody)
	if err != nil {
		return nil, err
	}
	n, err := decode(newBody)
	if err != nil {
		return nil, err
	}
	var out []rhizome.FieldChange
	diffValue("", o, n, &out)
	return out, nil
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

func diffValue(path string, o, n any, out *[]rhizome.FieldChange) {
	switch ov := o.(type) {
	case map[string]any:
		nv, ok := n.(map[string]any)
		if !ok {
			break
		}
		keys := make([]string, 0, len(ov)+len(nv))
		for k := range ov {
			keys = append(keys, k)
		}
		for k := range nv {
			if _, ok := ov[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			a, inOld := ov[k]
			b, inNew := nv[k]
			p := join(path, k)
			switch {
			case !inOld:
				*out = append(*out, rhizome.FieldChange{Path: p, New: b})
			case !inNew:
				*out = append(*out, rhizome.FieldChange{Path: p, Old: a})
			default:
				diffValue(p, a, b, out)
			}
		}
		return
	case []any:
		nv, ok := n.([]any)
		if !ok {
			break
		}
		for i := 0; i < len(ov) || i < len(nv); i++ {
			p := fmt.Sprintf("%s[%d]", path, i)
			switch {
			case i >= len(ov):
				*out = append(*out, rhizome.FieldChange{Path: p, New: nv[i]})
			case i >= len(nv):
				*out = append(*out, rhizome.FieldChange{Path: p, Old: ov[i]})
			default:
				diffValue(p, ov[i], nv[i], out)
			}
		}
		return
	}
	if !reflect.DeepEqual(o, n) {
		*out = append(*out, rhizome.FieldChange{Path: path, Old: o, New: n})
	}
}
