package connector

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/rhizome-mesh/rhizome"
)

// Config reads a config that Spec.Validate accepted. Its getters return
// the zero value for absent keys, so constructors read plainly.
type Config map[string]any

// String returns the string at key.
func (c Config) String(key string) string {
	s, _ := c[key].(string)
	return s
}

// Int returns the whole number at key.
func (c Config) Int(key string) int64 {
	n, _ := asInt(c[key])
	return n
}

// Bool returns the boolean at key.
func (c Config) Bool(key string) bool {
	b, _ := c[key].(bool)
	return b
}

// Duration returns the duration at key.
func (c Config) Duration(key string) time.Duration {
	d, _ := asDuration(c[key])
	return d
}

// Has reports whether key is set.
func (c Config) Has(key string) bool {
	_, ok := c[key]
	return ok && c[key] != nil
}

// StringMap returns the map at key with its values as strings.
func (c Config) StringMap(key string) map[string]string {
	m, _ := c[key].(map[string]any)
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = fmt.Sprint(v)
	}
	return out
}

// Columns reads a declared schema: a list of {name, type, required}.
// Problems name the entry, e.g. config.columns[2].type.
func (c Config) Columns(key string) ([]Column, error) {
	list, _ := asList(c[key])
	var cols []Column
	var ps []rhizome.Problem
	seen := map[string]bool{}
	for i, item := range list {
		path := fmt.Sprintf("config.%s[%d]", key, i)
		m, ok := item.(map[string]any)
		if !ok {
			ps = append(ps, rhizome.Problem{Path: path, Message: "want {name, type, required}, got " + describe(item)})
			continue
		}
		var col Column
		for _, k := range sortedKeys(m) {
			switch k {
			case "name":
				col.Name, _ = m[k].(string)
			case "type":
				col.Type, _ = m[k].(string)
			case "required":
				b, ok := m[k].(bool)
				if !ok {
					ps = append(ps, rhizome.Problem{Path: path + ".required", Message: "want true or false, got " + describe(m[k])})
				}
				col.Required = b
			default:
				ps = append(ps, rhizome.Problem{Path: path + "." + k, Message: fmt.Sprintf("unknown field `%s`", k),
					Hint: didYouMean(k, []string{"name", "type", "required"})})
			}
		}
		if col.Name == "" {
			ps = append(ps, rhizome.Problem{Path: path + ".name", Message: "a column needs a name"})
		} else if seen[col.Name] {
			ps = append(ps, rhizome.Problem{Path: path + ".name", Message: fmt.Sprintf("column `%s` is declared twice", col.Name)})
		}
		seen[col.Name] = true
		if col.Type == "" {
			ps = append(ps, rhizome.Problem{Path: path + ".type", Message: "a column needs a type",
				Hint: "a DuckDB type such as VARCHAR, BIGINT, DOUBLE, DECIMAL(18,2), BOOLEAN, DATE, TIMESTAMPTZ"})
		} else {
			col.Type = strings.ToUpper(col.Type)
		}
		cols = append(cols, col)
	}
	if len(ps) > 0 {
		return nil, rhizome.Invalid("invalid columns", ps...)
	}
	return cols, nil
}

// asInt accepts the whole numbers that YAML and JSON decoders produce.
func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int64:
		return x, true
	case int32:
		return int64(x), true
	case uint64:
		if x > math.MaxInt64 {
			return 0, false
		}
		return int64(x), true
	case uint32:
		return int64(x), true
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
			return 0, false
		}
		return int64(x), true
	}
	return 0, false
}

// asDuration accepts a Go duration string or a time.Duration.
func asDuration(v any) (time.Duration, error) {
	switch x := v.(type) {
	case time.Duration:
		return x, nil
	case string:
		d, err := time.ParseDuration(strings.TrimSpace(x))
		if err != nil {
			return 0, err
		}
		if d < 0 {
			return 0, fmt.Errorf("negative duration %s", x)
		}
		return d, nil
	}
	return 0, fmt.Errorf("not a duration: %v", v)
}

// asList accepts any slice, as decoders produce []any and callers []T.
func asList(v any) ([]any, bool) {
	if l, ok := v.([]any); ok {
		return l, true
	}
	rv := reflect.ValueOf(v)
	if !rv.IsValid() || rv.Kind() != reflect.Slice || rv.Type().Elem().Kind() == reflect.Uint8 {
		return nil, false
	}
	out := make([]any, rv.Len())
	for i := range out {
		out[i] = rv.Index(i).Interface()
	}
	return out, true
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
