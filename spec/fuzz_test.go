package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rhizome-mesh/rhizome"
)

// FuzzParse feeds arbitrary bytes to Parse as YAML and as JSON: it must not
// panic, every problem must have a position in the file, and a document it
// accepts must survive ToYAML and back unchanged.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*", "*.yaml"))
	more, _ := filepath.Glob(filepath.Join("testdata", "*", "*", "*.y*ml"))
	for _, p := range append(append(seeds, more...), filepath.Join("testdata", "seed-infrastructure.yaml")) {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data, false)
		}
	}
	f.Add([]byte(`{"apiVersion":"rhizome/v1","kind":"Domain","name":"a","owner_teams":["t"]}`), true)
	f.Add([]byte("a: &x [*x]\n"), false)
	f.Add([]byte("---\n---\n---\nkind: Team\n"), false)
	f.Add([]byte("a: &a [1,2]\nb: &b [*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b]\nd: [*c,*c,*c,*c]\n"), false)
	f.Fuzz(func(t *testing.T, data []byte, asJSON bool) {
		name := "f.yaml"
		if asJSON {
			name = "f.json"
		}
		docs, err := Parse(File{Name: name, Data: data})
		if err != nil && rhizome.Code(err) != rhizome.EInvalid {
			t.Fatalf("code %s: %v", rhizome.Code(err), err)
		}
		for _, p := range rhizome.ProblemsOf(err) {
			if p.File != name || p.Line < 1 || p.Message == "" {
				t.Fatalf("problem without a place: %+v", p)
			}
		}
		for _, d := range docs {
			if d.Value == nil || d.Kind == "" {
				t.Fatalf("a valid document without kind or value: %+v", d)
			}
			_ = LabelsOf(d)
			y, err := ToYAML(d.Body)
			if err != nil {
				t.Fatalf("ToYAML(%s): %v", d.Body, err)
			}
			back, err := DecodeOne("back.yaml", y)
			if err != nil {
				t.Fatalf("ToYAML output does not parse: %v\n%s", err, y)
			}
			if string(back.Body) != string(d.Body) {
				t.Fatalf("round trip changed the body:\n got %s\nwant %s", back.Body, d.Body)
			}
		}
		_, _ = Validate(nil, File{Name: name, Data: data})
	})
}

func FuzzParseThreshold(f *testing.F) {
	for _, s := range []string{"> 1000", ">= 0.5", "< 1%", "<= 99.5%", "== 0", "= 0", "!= 3", "< 24 hours", "< 1 %", "=> 5", "<", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		th, err := ParseThreshold(s)
		if err != nil {
			msg := err.Error()
			if !strings.Contains(msg, "is not a threshold; want e.g. ") {
				t.Fatalf("error %q does not say what is wanted", msg)
			}
			return
		}
		switch th.Op {
		case ">", ">=", "<", "<=", "==", "!=":
		default:
			t.Fatalf("%q: operator %q", s, th.Op)
		}
		if th.Percent && th.IsDuration {
			t.Fatalf("%q: both a percentage and a duration", s)
		}
		// What String prints parses back to the same threshold.
		again, err := ParseThreshold(th.String())
		if err != nil || again.Op != th.Op || again.Percent != th.Percent || again.IsDuration != th.IsDuration {
			t.Fatalf("%q -> %q -> %+v, %v", s, th.String(), again, err)
		}
		_ = th.Holds(th.Value)
	})
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"24 hours", "1 hour", "15min", "15 min", "1h", "30m", "90 days", "2 weeks", "4 hours", "1d", "45s", "1.5h", "1h30m", "90 dais", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			if !strings.Contains(err.Error(), "is not a duration") || !strings.Contains(err.Error(), "want e.g. ") {
				t.Fatalf("error %q does not say what is wanted", err)
			}
			return
		}
		if d < 0 {
			t.Fatalf("%q: negative duration %v", s, d)
		}
	})
}
