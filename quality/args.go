package quality

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Helpers that read Check.Args, which come from YAML/JSON (numbers as
// float64 or int, lists as []any).

func argList(c Check, key string) ([]any, bool) {
	v, ok := c.Args[key]
	if !ok || v == nil {
		return nil, false
	}
	switch l := v.(type) {
	case []any:
		return l, true
	case []string:
		out := make([]any, len(l))
		for i, s := range l {
			out[i] = s
		}
		return out, true
	case []float64:
		out := make([]any, len(l))
		for i, s := range l {
			out[i] = s
		}
		return out, true
	}
	return []any{v}, true
}

func argString(c Check, key string) (string, bool) {
	v, ok := c.Args[key]
	if !ok || v == nil {
		return "", false
	}
	s, ok := v.(string)
	if !ok {
		return fmt.Sprint(v), true
	}
	return s, true
}

func argNumber(c Check, key string) (float64, bool, error) {
	v, ok := c.Args[key]
	if !ok || v == nil {
		return 0, false, nil
	}
	f, err := toFloat(v)
	if err != nil || math.IsNaN(f) {
		return 0, true, c.invalid("args."+key, fmt.Sprintf("%v is not a number", v), "write a plain number, e.g. 10")
	}
	return f, true, nil
}

// toFloat reads a number from a driver or YAML value.
func toFloat(v any) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case float32:
		return float64(x), nil
	case int:
		return float64(x), nil
	case int8:
		return float64(x), nil
	case int16:
		return float64(x), nil
	case int32:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case uint8:
		return float64(x), nil
	case uint16:
		return float64(x), nil
	case uint32:
		return float64(x), nil
	case uint64:
		return float64(x), nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	case string:
		return strconv.ParseFloat(strings.TrimSpace(x), 64)
	case []byte:
		return strconv.ParseFloat(strings.TrimSpace(string(x)), 64)
	case interface{ Float64() float64 }: // duckdb.Decimal
		return x.Float64(), nil
	case fmt.Stringer:
		return strconv.ParseFloat(x.String(), 64)
	}
	return 0, fmt.Errorf("%v (%T) is not a number", v, v)
}

// sqlLiteral renders a YAML scalar as a SQL literal.
func sqlLiteral(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return quoteLit(x), nil
	case bool:
		return strconv.FormatBool(x), nil
	case nil:
		return "", fmt.Errorf("null is not a value; nulls are counted by null checks")
	}
	f, err := toFloat(v)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return "", fmt.Errorf("%v is not a string, number or boolean", v)
	}
	return strconv.FormatFloat(f, 'f', -1, 64), nil
}

func literalList(c Check, key string) (string, error) {
	l, ok := argList(c, key)
	if !ok || len(l) == 0 {
		return "", c.invalid("args."+key, fmt.Sprintf("check type %s needs a non-empty `%s` list", c.Type, key), fmt.Sprintf("add `%s: [a, b]`", key))
	}
	parts := make([]string, len(l))
	for i, v := range l {
		s, err := sqlLiteral(v)
		if err != nil {
			return "", c.invalid(fmt.Sprintf("args.%s[%d]", key, i), err.Error(), "")
		}
		parts[i] = s
	}
	return strings.Join(parts, ", "), nil
}
