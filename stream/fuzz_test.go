package stream_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strconv"
	"testing"
	"unicode/utf8"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/stream"
)

// FuzzPut: a body is either refused as invalid or too large, or spooled
// as Rows lines, each one JSON object in valid UTF-8.
func FuzzPut(f *testing.F) {
	for _, s := range []string{"{\"a\":1}\n", "{}\n[]\n", "\n\n{\"a\":\n1}\n", "{\"a\":\"\\u00e9\"}\r\n{}", "null", " { } "} {
		f.Add([]byte(s))
	}
	s, err := stream.Open(f.TempDir(), nil)
	if err != nil {
		f.Fatal(err)
	}
	n := 0
	f.Fuzz(func(t *testing.T, body []byte) {
		n++
		id := "b-" + itoa(n)
		b, err := s.Put(context.Background(), "p", "q", id, bytes.NewReader(body), 4096)
		if err != nil {
			if c := rhizome.Code(err); c != rhizome.EInvalid && c != rhizome.ETooLarge {
				t.Fatalf("Put: %v (%s)", err, c)
			}
			return
		}
		if len(body) > 4096 {
			t.Fatalf("accepted %d bytes over the limit", len(body))
		}
		files, _, _, _ := s.Pending("p", "q")
		var data []byte
		for _, f := range files {
			if stream.BatchOf(f) == id {
				data, _ = os.ReadFile(f)
			}
		}
		lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
		if int64(len(lines)) != b.Rows || b.Bytes != int64(len(data)) {
			t.Fatalf("Batch %+v, spooled %q", b, data)
		}
		if _, err := s.Claim("p", "q", "r-"+itoa(n)); err != nil {
			t.Fatal(err)
		}
		if err := s.Commit("r-" + itoa(n)); err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			if !utf8.Valid(l) {
				t.Fatalf("spooled line %q is not UTF-8", l)
			}
			var m map[string]any
			if err := json.Unmarshal(l, &m); err != nil {
				t.Fatalf("spooled line %q: %v", l, err)
			}
		}
	})
}

func itoa(n int) string { return strconv.Itoa(n) }
