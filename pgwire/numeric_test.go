package pgwire

import (
	"math"
	"math/big"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
)

// decimal64's own encodings equal pgtype's for the same numeric.
func TestDecimal64Encoding(t *testing.T) {
	m := pgtype.NewMap()
	for _, d := range []decimal64{{0, 0}, {0, 2}, {1999, 2}, {-50, 2}, {5, 3}, {123456789012345678, 0}, {123456789012345678, 18},
		{math.MaxInt64, 4}, {math.MinInt64 + 1, 7}, {-1, 1}, {100000000, 2}, {10000, 0}, {7, 9}} {
		n := pgtype.Numeric{Int: big.NewInt(d.v), Exp: -d.scale, Valid: true}
		for _, format := range []int16{pgtype.TextFormatCode, pgtype.BinaryFormatCode} {
			want, err := m.Encode(pgtype.NumericOID, format, n, nil)
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			if format == pgtype.TextFormatCode {
				got = d.appendText(nil)
			} else {
				got = d.appendBinary(nil)
			}
			if format == pgtype.BinaryFormatCode {
				// Zero digit groups may be left out: compare what a
				// client decodes.
				var a, b pgtype.Numeric
				if err := m.Scan(pgtype.NumericOID, format, got, &a); err != nil {
					t.Fatalf("%+v: decoding %x: %v", d, got, err)
				}
				if err := m.Scan(pgtype.NumericOID, format, want, &b); err != nil {
					t.Fatal(err)
				}
				got, want = a.Int.Append(nil, 10), b.Int.Append(nil, 10)
				if d.v != 0 { // Postgres sends 0.00 as no digits: pgx reads 0
					got = append(got, byte(a.Exp))
					want = append(want, byte(b.Exp))
				}
			}
			if string(got) != string(want) {
				t.Errorf("%+v format %d: got %x (%q), want %x (%q)", d, format, got, got, want, want)
			}
		}
	}
}
