package jsonfile

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzArrayToNDJSON: any input either fails cleanly or becomes one valid
// JSON value per line, as many lines as rows counted.
func FuzzArrayToNDJSON(f *testing.F) {
	for _, s := range []string{`[]`, `[{"a":1},{"b":[1,2]}]`, `[1, "x", null]`, `[{"a":`, `{"a":1}`, `[{"a":"\n"}] trailing`, "\ufeff[{}]"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		dir := t.TempDir()
		src, dst := filepath.Join(dir, "in.json"), filepath.Join(dir, "out.ndjson")
		if err := os.WriteFile(src, in, 0o644); err != nil {
			t.Fatal(err)
		}
		n, rows, err := arrayToNDJSON(context.Background(), src, dst)
		if err != nil {
			return
		}
		out, _ := os.ReadFile(dst)
		if int64(len(out)) != n {
			t.Fatalf("bytes %d, file has %d", n, len(out))
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(nil, 1<<20)
		var lines int64
		for sc.Scan() {
			if !json.Valid(sc.Bytes()) {
				t.Fatalf("line %d is not JSON: %q", lines+1, sc.Bytes())
			}
			lines++
		}
		if lines != rows {
			t.Fatalf("%d lines, %d rows", lines, rows)
		}
	})
}
