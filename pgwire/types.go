package pgwire

import (
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// pgType is how one DuckDB column type travels over the wire: the Postgres
// type OID in the RowDescription and a conversion of the Go value that
// database/sql gives for it (see duckdb-go) into one pgtype encodes in
// both the text and the binary format.
type pgType struct {
	oid  uint32
	conv func(any) (any, error) // nil value in, nil out: NULL
}

// elemOIDs maps a scalar OID to its array OID.
var arrayOIDs = map[uint32]uint32{
	pgtype.BoolOID: pgtype.BoolArrayOID, pgtype.Int2OID: pgtype.Int2ArrayOID, pgtype.Int4OID: pgtype.Int4ArrayOID,
	pgtype.Int8OID: pgtype.Int8ArrayOID, pgtype.Float4OID: pgtype.Float4ArrayOID, pgtype.Float8OID: pgtype.Float8ArrayOID,
	pgtype.NumericOID: pgtype.NumericArrayOID, pgtype.TextOID: pgtype.TextArrayOID, pgtype.UUIDOID: pgtype.UUIDArrayOID,
	pgtype.DateOID: pgtype.DateArrayOID, pgtype.TimeOID: pgtype.TimeArrayOID, pgtype.TimestampOID: pgtype.TimestampArrayOID,
	pgtype.TimestamptzOID: pgtype.TimestamptzArrayOID, pgtype.IntervalOID: pgtype.IntervalArrayOID, pgtype.ByteaOID: pgtype.ByteaArrayOID,
	pgtype.JSONOID: pgtype.JSONArrayOID,
}

// typeFor maps a DuckDB type name (as DESCRIBE and database/sql's
// DatabaseTypeName spell it) to its wire type. Unknown types travel as
// text.
func typeFor(duck string) pgType {
	t := strings.ToUpper(strings.TrimSpace(duck))
	if strings.HasSuffix(t, "[]") {
		elem := typeFor(t[:len(t)-2])
		if arr, ok := arrayOIDs[elem.oid]; ok && !strings.HasSuffix(t[:len(t)-2], "[]") {
			return pgType{oid: arr, conv: listConv(elem.conv)}
		}
		return pgType{oid: pgtype.JSONOID, conv: jsonConv}
	}
	if i := strings.IndexByte(t, '('); i > 0 {
		switch base := strings.TrimSpace(t[:i]); base {
		case "DECIMAL", "NUMERIC":
			return pgType{oid: pgtype.NumericOID, conv: numericConv}
		case "STRUCT", "MAP", "UNION":
			return pgType{oid: pgtype.JSONOID, conv: jsonConv}
		case "VARCHAR", "CHAR", "BPCHAR", "TEXT", "STRING":
			return pgType{oid: pgtype.TextOID, conv: textConv}
		default:
			if strings.HasSuffix(t, "]") { // fixed-size ARRAY: INTEGER[3]
				return pgType{oid: pgtype.JSONOID, conv: jsonConv}
			}
		}
	}
	if strings.HasSuffix(t, "]") {
		return pgType{oid: pgtype.JSONOID, conv: jsonConv}
	}
	switch t {
	case "BOOLEAN", "BOOL":
		return pgType{oid: pgtype.BoolOID, conv: same}
	case "TINYINT", "SMALLINT", "UTINYINT", "INT1", "INT2":
		return pgType{oid: pgtype.Int2OID, conv: intConv(16)}
	case "INTEGER", "USMALLINT", "INT", "INT4":
		return pgType{oid: pgtype.Int4OID, conv: intConv(32)}
	case "BIGINT", "UINTEGER", "INT8", "LONG":
		return pgType{oid: pgtype.Int8OID, conv: intConv(64)}
	case "UBIGINT", "HUGEINT", "UHUGEINT", "INT128", "UINT128", "DECIMAL", "NUMERIC", "VARINT", "BIGNUM":
		return pgType{oid: pgtype.NumericOID, conv: numericConv}
	case "FLOAT", "REAL", "FLOAT4":
		return pgType{oid: pgtype.Float4OID, conv: floatConv(32)}
	case "DOUBLE", "FLOAT8":
		return pgType{oid: pgtype.Float8OID, conv: floatConv(64)}
	case "VARCHAR", "TEXT", "STRING", "CHAR", "BPCHAR", "ENUM", "BIT", "NULL", "":
		return pgType{oid: pgtype.TextOID, conv: textConv}
	case "UUID":
		return pgType{oid: pgtype.UUIDOID, conv: uuidConv}
	case "DATE":
		return pgType{oid: pgtype.DateOID, conv: timeConv}
	case "TIME", "TIME_NS":
		return pgType{oid: pgtype.TimeOID, conv: clockConv}
	case "TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "DATETIME":
		return pgType{oid: pgtype.TimestampOID, conv: timeConv}
	case "TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE":
		return pgType{oid: pgtype.TimestamptzOID, conv: timeConv}
	case "TIMETZ", "TIME WITH TIME ZONE":
		return pgType{oid: pgtype.TextOID, conv: timetzConv}
	case "INTERVAL":
		return pgType{oid: pgtype.IntervalOID, conv: intervalConv}
	case "BLOB", "BYTEA", "BINARY", "VARBINARY":
		return pgType{oid: pgtype.ByteaOID, conv: bytesConv}
	case "JSON", "STRUCT", "MAP", "UNION":
		return pgType{oid: pgtype.JSONOID, conv: jsonConv}
	}
	return pgType{oid: pgtype.TextOID, conv: textConv}
}

// typeName is the Postgres name of an OID, for messages.
func typeName(oid uint32) string {
	if t, ok := pgtype.NewMap().TypeForOID(oid); ok {
		return t.Name
	}
	return strconv.Itoa(int(oid))
}

func same(v any) (any, error) { return v, nil }

func intConv(bits int) func(any) (any, error) {
	return func(v any) (any, error) {
		var n int64
		switch x := v.(type) {
		case nil:
			return nil, nil
		case int8:
			n = int64(x)
		case int16:
			n = int64(x)
		case int32:
			n = int64(x)
		case int64:
			n = x
		case int:
			n = int64(x)
		case uint8:
			n = int64(x)
		case uint16:
			n = int64(x)
		case uint32:
			n = int64(x)
		case string:
			var err error
			if n, err = strconv.ParseInt(x, 10, bits); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("cannot send %T as an integer", v)
		}
		switch bits {
		case 16:
			return int16(n), nil
		case 32:
			return int32(n), nil
		}
		return n, nil
	}
}

func floatConv(bits int) func(any) (any, error) {
	return func(v any) (any, error) {
		switch x := v.(type) {
		case nil:
			return nil, nil
		case float32:
			if bits == 64 {
				return float64(x), nil
			}
			return x, nil
		case float64:
			if bits == 32 {
				return float32(x), nil
			}
			return x, nil
		}
		return nil, fmt.Errorf("cannot send %T as a float", v)
	}
}

// numericConv handles duckdb.Decimal (a Stringer: "123.45"), *big.Int
// (HUGEINT) and the unsigned 64-bit integers.
func numericConv(v any) (any, error) {
	var n pgtype.Numeric
	switch x := v.(type) {
	case nil:
		return nil, nil
	case *big.Int:
		return pgtype.Numeric{Int: x, Valid: true}, nil
	case uint64:
		return pgtype.Numeric{Int: new(big.Int).SetUint64(x), Valid: true}, nil
	case int64:
		return pgtype.Numeric{Int: big.NewInt(x), Valid: true}, nil
	case int32:
		return pgtype.Numeric{Int: big.NewInt(int64(x)), Valid: true}, nil
	case float64:
		err := n.ScanScientific(strconv.FormatFloat(x, 'e', -1, 64))
		return n, err
	case string:
		err := n.ScanScientific(x)
		return n, err
	}
	// duckdb.Decimal{Width, Scale uint8; Value *big.Int}, read by field
	// name so this package need not link DuckDB.
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Struct {
		if f := decimalFieldsOf(rv.Type()); f != nil {
			i, _ := rv.Field(f[1]).Interface().(*big.Int)
			scale := int32(rv.Field(f[0]).Uint())
			if i != nil && i.IsInt64() {
				return decimal64{v: i.Int64(), scale: scale}, nil
			}
			if i != nil {
				return pgtype.Numeric{Int: i, Exp: -scale, Valid: true}, nil
			}
		}
	}
	switch x := v.(type) {
	case fmt.Stringer:
		if err := n.ScanScientific(x.String()); err != nil {
			return nil, err
		}
		return n, nil
	}
	return nil, fmt.Errorf("cannot send %T as numeric", v)
}

// decimalFields caches, per struct type, the indices of the Scale and
// Value fields of a decimal (nil: not a decimal).
var decimalFields sync.Map

func decimalFieldsOf(t reflect.Type) []int {
	if f, ok := decimalFields.Load(t); ok {
		return f.([]int)
	}
	var out []int
	sc, ok1 := t.FieldByName("Scale")
	val, ok2 := t.FieldByName("Value")
	if ok1 && ok2 && sc.Type.Kind() == reflect.Uint8 && val.Type == reflect.TypeFor[*big.Int]() && sc.IsExported() && val.IsExported() {
		out = []int{sc.Index[0], val.Index[0]}
	}
	decimalFields.Store(t, out)
	return out
}

func textConv(v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		return x, nil
	case []byte:
		return string(x), nil
	case time.Time:
		return x.Format(time.RFC3339Nano), nil
	case fmt.Stringer:
		return x.String(), nil
	case map[string]any, []any:
		return jsonConv(v)
	}
	return fmt.Sprint(v), nil
}

func uuidConv(v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case []byte:
		if len(x) == 16 {
			var u pgtype.UUID
			copy(u.Bytes[:], x)
			u.Valid = true
			return u, nil
		}
		var u pgtype.UUID
		err := u.Scan(string(x))
		return u, err
	case [16]byte:
		return pgtype.UUID{Bytes: x, Valid: true}, nil
	case string:
		var u pgtype.UUID
		err := u.Scan(x)
		return u, err
	}
	return nil, fmt.Errorf("cannot send %T as uuid", v)
}

func timeConv(v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case time.Time:
		return x, nil
	}
	return nil, fmt.Errorf("cannot send %T as a date or time", v)
}

// clockConv: DuckDB's TIME arrives as a time.Time on 0001-01-01.
func clockConv(v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case time.Time:
		us := int64(x.Hour())*3600e6 + int64(x.Minute())*60e6 + int64(x.Second())*1e6 + int64(x.Nanosecond())/1e3
		return pgtype.Time{Microseconds: us, Valid: true}, nil
	}
	return nil, fmt.Errorf("cannot send %T as time", v)
}

func timetzConv(v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case time.Time:
		return x.Format("15:04:05.999999-07:00"), nil
	}
	return textConv(v)
}

// intervalConv reads duckdb.Interval{Days, Months int32; Micros int64} by
// its field names, so this package need not link DuckDB.
func intervalConv(v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Struct {
		d, m, us := rv.FieldByName("Days"), rv.FieldByName("Months"), rv.FieldByName("Micros")
		if d.IsValid() && m.IsValid() && us.IsValid() && d.CanInt() && m.CanInt() && us.CanInt() {
			return pgtype.Interval{Days: int32(d.Int()), Months: int32(m.Int()), Microseconds: us.Int(), Valid: true}, nil
		}
	}
	if dur, ok := v.(time.Duration); ok {
		return pgtype.Interval{Microseconds: dur.Microseconds(), Valid: true}, nil
	}
	return nil, fmt.Errorf("cannot send %T as interval", v)
}

func bytesConv(v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case []byte:
		return x, nil
	case string:
		return []byte(x), nil
	}
	return nil, fmt.Errorf("cannot send %T as bytea", v)
}

func jsonConv(v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		return x, nil // JSON columns that arrive as text already
	case []byte:
		return string(x), nil
	}
	b, err := json.Marshal(jsonable(v))
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// jsonable makes values encoding/json cannot take (maps with non-string
// keys, byte slices of UUIDs stay bytes) marshalable.
func jsonable(v any) any {
	switch x := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = jsonable(e)
		}
		return m
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = jsonable(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = jsonable(e)
		}
		return s
	case fmt.Stringer:
		if _, ok := v.(json.Marshaler); ok {
			return v
		}
		return x.String()
	}
	return v
}

// listConv converts a DuckDB list ([]any) element by element; pgtype
// encodes []any as an array of the column's element type.
func listConv(elem func(any) (any, error)) func(any) (any, error) {
	return func(v any) (any, error) {
		if v == nil {
			return nil, nil
		}
		in, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("cannot send %T as an array", v)
		}
		out := make([]any, len(in))
		for i, e := range in {
			c, err := elem(e)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	}
}
