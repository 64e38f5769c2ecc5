package pgwire

import (
	"encoding/hex"
	"fmt"
	"math/big"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	wire "github.com/jeroenrinzema/psql-wire"
)

// literal renders a bound parameter as a DuckDB literal. Text-format
// values (what drivers send for parameters described as unknown) become
// quoted strings that DuckDB casts where they are used; binary values of
// a type the client named are decoded and written as typed literals.
// Quoting doubles single quotes, so a value never ends its literal.
func literal(p wire.Parameter, oid uint32) (string, error) {
	raw := p.Value()
	if raw == nil {
		return "NULL", nil
	}
	if p.Format() == wire.TextFormat || oid == 0 || oid == pgtype.TextOID || oid == pgtype.VarcharOID || oid == pgtype.UnknownOID {
		s := string(raw)
		switch oid {
		case pgtype.ByteaOID:
			return quoteLiteral(s) + "::BLOB", nil
		case pgtype.BoolOID, pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.NumericOID, pgtype.Float4OID, pgtype.Float8OID:
			return quoteLiteral(s) + "::" + duckCast(oid), nil
		}
		return quoteLiteral(s), nil
	}
	v, err := p.Scan(oid)
	if err != nil {
		return "", err
	}
	return valueLiteral(v, oid)
}

func duckCast(oid uint32) string {
	switch oid {
	case pgtype.BoolOID:
		return "BOOLEAN"
	case pgtype.Int2OID:
		return "SMALLINT"
	case pgtype.Int4OID:
		return "INTEGER"
	case pgtype.Int8OID:
		return "BIGINT"
	case pgtype.Float4OID:
		return "FLOAT"
	case pgtype.Float8OID:
		return "DOUBLE"
	}
	return "DECIMAL(38,10)"
}

func valueLiteral(v any, oid uint32) (string, error) {
	switch x := v.(type) {
	case nil:
		return "NULL", nil
	case bool:
		if x {
			return "TRUE", nil
		}
		return "FALSE", nil
	case int16:
		return strconv.FormatInt(int64(x), 10), nil
	case int32:
		return strconv.FormatInt(int64(x), 10), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float32:
		return quoteLiteral(strconv.FormatFloat(float64(x), 'g', -1, 32)) + "::FLOAT", nil
	case float64:
		return quoteLiteral(strconv.FormatFloat(x, 'g', -1, 64)) + "::DOUBLE", nil
	case string:
		return quoteLiteral(x), nil
	case []byte:
		var b []byte
		for _, c := range x {
			b = append(b, '\\', 'x')
			b = append(b, hex.EncodeToString([]byte{c})...)
		}
		return quoteLiteral(string(b)) + "::BLOB", nil
	case [16]byte:
		u := pgtype.UUID{Bytes: x, Valid: true}
		s, _ := u.Value()
		return quoteLiteral(fmt.Sprint(s)) + "::UUID", nil
	case time.Time:
		switch oid {
		case pgtype.DateOID:
			return "DATE " + quoteLiteral(x.Format("2006-01-02")), nil
		case pgtype.TimestampOID:
			return "TIMESTAMP " + quoteLiteral(x.Format("2006-01-02 15:04:05.999999")), nil
		}
		return "TIMESTAMPTZ " + quoteLiteral(x.Format("2006-01-02 15:04:05.999999-07:00")), nil
	case pgtype.Numeric:
		if !x.Valid {
			return "NULL", nil
		}
		if x.NaN || x.InfinityModifier != pgtype.Finite {
			return "", fmt.Errorf("NaN and infinite numerics are not supported")
		}
		r := new(big.Rat).SetInt(x.Int)
		if x.Exp > 0 {
			r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(x.Exp)), nil)))
		}
		if x.Exp < 0 {
			r.Quo(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-x.Exp)), nil)))
			return r.FloatString(int(-x.Exp)), nil
		}
		return r.FloatString(0), nil
	case pgtype.Interval:
		return fmt.Sprintf("(INTERVAL '%d months' + INTERVAL '%d days' + INTERVAL '%d microseconds')", x.Months, x.Days, x.Microseconds), nil
	case fmt.Stringer:
		return quoteLiteral(x.String()), nil
	}
	return quoteLiteral(fmt.Sprint(v)), nil
}
