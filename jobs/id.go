package jobs

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/json"
	"strings"
	"time"

	"github.com/riverqueue/river/rivertype"
)

// crockford is Crockford's base32 alphabet, lowercase: ids sort as their
// bytes do, and read without ambiguous letters.
var crockford = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// newRunID is "run_" and a ULID-like 26 characters: 48 bits of
// milliseconds, then 80 random bits, so ids sort by time.
func newRunID(now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	_, _ = rand.Read(b[6:])
	return "run_" + crockford.EncodeToString(b[:])[:26]
}

// keyedRunID is the id of the run a keyed Request makes: the same product
// and key always give the same id, which is how Enqueue finds the run a
// repeated request made.
func keyedRunID(productID, key string) string {
	h := sha256.Sum256([]byte(productID + "\x00" + key))
	return "run_k" + strings.ToLower(crockford.EncodeToString(h[:]))[:25]
}

func unmarshalArgs(j *rivertype.JobRow, v any) error { return json.Unmarshal(j.EncodedArgs, v) }
