package pgwire

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// decimal64 is a DECIMAL whose unscaled value fits an int64 (DuckDB's
// DECIMAL up to 18 digits): numericCodec writes it in both formats
// without math/big, the hot path of wide results.
type decimal64 struct {
	v     int64
	scale int32
}

// NumericValue lets pgtype's own plans (arrays) encode it.
func (d decimal64) NumericValue() (pgtype.Numeric, error) {
	return pgtype.Numeric{Int: big.NewInt(d.v), Exp: -d.scale, Valid: true}, nil
}

// appendText writes the value with exactly scale decimals: -0.50.
func (d decimal64) appendText(buf []byte) []byte {
	u := uint64(d.v)
	if d.v < 0 {
		buf = append(buf, '-')
		u = uint64(-d.v)
	}
	var tmp [24]byte
	digits := strconv.AppendUint(tmp[:0], u, 10)
	sc := int(d.scale)
	if sc <= 0 {
		return append(buf, digits...)
	}
	for len(digits) <= sc {
		digits = append([]byte{'0'}, digits...)
	}
	buf = append(buf, digits[:len(digits)-sc]...)
	buf = append(buf, '.')
	return append(buf, digits[len(digits)-sc:]...)
}

// appendBinary writes Postgres' binary numeric: ndigits, weight, sign,
// dscale, then base-10000 digits of the value aligned on the decimal
// point.
func (d decimal64) appendBinary(buf []byte) []byte {
	u := uint64(d.v)
	sign := uint16(0)
	if d.v < 0 {
		u, sign = uint64(-d.v), 0x4000
	}
	sc := int(d.scale)
	// Pad the fraction to whole base-10000 digits: the value is then
	// u * 10^pad with (sc+pad)/4 fraction digits.
	pad := (4 - sc%4) % 4
	var arr [12]uint16
	groups := arr[:0] // little-endian base-10000 digits
	if p := pow10(pad); u <= math.MaxUint64/p {
		for n := u * p; n > 0; n /= 10000 {
			groups = append(groups, uint16(n%10000))
		}
	} else {
		n := new(big.Int).Mul(new(big.Int).SetUint64(u), new(big.Int).SetUint64(p))
		base, r := big.NewInt(10000), new(big.Int)
		for n.Sign() > 0 {
			n.QuoRem(n, base, r)
			groups = append(groups, uint16(r.Uint64()))
		}
	}
	weight := len(groups) - (sc+pad)/4 - 1
	trim := 0 // zero digits at the low end are implied
	for trim < len(groups) && groups[trim] == 0 {
		trim++
	}
	digits := groups[trim:]
	if len(digits) == 0 {
		weight = 0
	}
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(digits)))
	buf = binary.BigEndian.AppendUint16(buf, uint16(int16(weight)))
	buf = binary.BigEndian.AppendUint16(buf, sign)
	buf = binary.BigEndian.AppendUint16(buf, uint16(sc))
	for i := len(digits) - 1; i >= 0; i-- {
		buf = binary.BigEndian.AppendUint16(buf, digits[i])
	}
	return buf
}

func pow10(n int) uint64 {
	p := uint64(1)
	for range n {
		p *= 10
	}
	return p
}

// numericCodec is pgtype's NumericCodec with fast plans for decimal64.
type numericCodec struct{ pgtype.NumericCodec }

func (c numericCodec) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	if _, ok := value.(decimal64); ok {
		if format == pgtype.TextFormatCode {
			return decimal64Text{}
		}
		return decimal64Binary{}
	}
	return c.NumericCodec.PlanEncode(m, oid, format, value)
}

type decimal64Text struct{}

func (decimal64Text) Encode(value any, buf []byte) ([]byte, error) {
	return value.(decimal64).appendText(buf), nil
}

type decimal64Binary struct{}

func (decimal64Binary) Encode(value any, buf []byte) ([]byte, error) {
	return value.(decimal64).appendBinary(buf), nil
}

// extendTypes registers numericCodec on each connection's type map.
func extendTypes(m *pgtype.Map) {
	m.RegisterType(&pgtype.Type{Name: "numeric", OID: pgtype.NumericOID, Codec: numericCodec{}})
	m.RegisterType(&pgtype.Type{Name: "timestamptz", OID: pgtype.TimestamptzOID, Codec: timestamptzCodec{&pgtype.TimestamptzCodec{}}})
}

// timestamptzCodec is pgtype's TimestamptzCodec writing text as Postgres
// does ("2024-03-01 10:00:00+00"): pgtype writes a UTC time with "Z",
// which pgjdbc and other drivers that parse Postgres' own output refuse.
type timestamptzCodec struct{ *pgtype.TimestamptzCodec }

func (c timestamptzCodec) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	if _, ok := value.(time.Time); ok && format == pgtype.TextFormatCode {
		return timestamptzText{}
	}
	return c.TimestamptzCodec.PlanEncode(m, oid, format, value)
}

type timestamptzText struct{}

func (timestamptzText) Encode(value any, buf []byte) ([]byte, error) {
	t := value.(time.Time)
	if t.Year() < 1 || t.Year() > 9999 {
		return nil, fmt.Errorf("timestamp %s is outside the years 1 to 9999", t)
	}
	s := t.Format("2006-01-02 15:04:05.999999-07:00")
	// Postgres writes the offset as +HH, and +HH:MM only when it has minutes.
	s = strings.TrimSuffix(s, ":00")
	return append(buf, s...), nil
}
