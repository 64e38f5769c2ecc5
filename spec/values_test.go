package spec

import (
	"strings"
	"testing"
	"time"

	"github.com/rhizome-mesh/rhizome"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "24 hours", want: 24 * time.Hour},
		{in: "1 hour", want: time.Hour},
		{in: "15min", want: 15 * time.Minute},
		{in: "15 min", want: 15 * time.Minute},
		{in: "1h", want: time.Hour},
		{in: "30m", want: 30 * time.Minute},
		{in: "90 days", want: 90 * 24 * time.Hour},
		{in: "2 weeks", want: 14 * 24 * time.Hour},
		{in: "4 hours", want: 4 * time.Hour},
		{in: "1d", want: 24 * time.Hour},
		{in: "45s", want: 45 * time.Second},
		{in: "1.5h", want: 90 * time.Minute},
		{in: " 4 Hours ", want: 4 * time.Hour},
		{in: "500ms", want: 500 * time.Millisecond},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "0s", want: 0},
		{in: "", err: `"" is not a duration; want e.g. "15min"`},
		{in: "4", err: `"4" is not a duration; want e.g. "4 hours"`},
		{in: "90 dais", err: `"90 dais" is not a duration; want e.g. "90 days"`},
		{in: "15 minuets", err: `"15 minuets" is not a duration; want e.g. "15 minutes"`},
		{in: "1 fortnight", err: `"1 fortnight" is not a duration; want e.g. "15min"`},
		{in: "-1h", err: `"-1h" is not a duration; want e.g. "15min"`},
		{in: "1 month", err: `"1 month" is not a duration; want e.g. "15min"`},
		{in: "hours", err: `"hours" is not a duration; want e.g. "15min"`},
		{in: "99999999999 weeks", err: `"99999999999 weeks" is not a duration: too long; want e.g. "90 days"`},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		switch {
		case tt.err != "" && (err == nil || err.Error() != tt.err):
			t.Errorf("ParseDuration(%q) error = %v, want %s", tt.in, err, tt.err)
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseThreshold(t *testing.T) {
	tests := []struct {
		in   string
		want Threshold
		err  string
	}{
		{in: "> 1000", want: Threshold{Op: ">", Value: 1000}},
		{in: ">= 0.5", want: Threshold{Op: ">=", Value: 0.5}},
		{in: "< 1%", want: Threshold{Op: "<", Value: 1, Percent: true}},
		{in: "<= 99.5%", want: Threshold{Op: "<=", Value: 99.5, Percent: true}},
		{in: "== 0", want: Threshold{Op: "==", Value: 0}},
		{in: "= 0", want: Threshold{Op: "==", Value: 0}},
		{in: "!= 3", want: Threshold{Op: "!=", Value: 3}},
		{in: "< 24 hours", want: Threshold{Op: "<", Value: 86400, Duration: 24 * time.Hour, IsDuration: true}},
		{in: "<15min", want: Threshold{Op: "<", Value: 900, Duration: 15 * time.Minute, IsDuration: true}},
		{in: ">-2.5", want: Threshold{Op: ">", Value: -2.5}},
		{in: "< 1 %", err: `"< 1 %" is not a threshold; want e.g. "< 1%"`},
		{in: "1000", err: `"1000" is not a threshold; want e.g. "> 1000"`},
		{in: "1%", err: `"1%" is not a threshold; want e.g. "< 1%"`},
		{in: "<", err: `"<" is not a threshold; want e.g. "< 1%"`},
		{in: "> lots", err: `"> lots" is not a threshold; want e.g. "> 1000"`},
		{in: "< 24 hourz", err: `"< 24 hourz" is not a threshold; want e.g. "< 24 hours"`},
		{in: "= 1 000", err: `"= 1 000" is not a threshold; want e.g. "== 1000"`},
		{in: "> NaN", err: `"> NaN" is not a threshold; want e.g. "> 1000"`},
		{in: "> 0x10", err: `"> 0x10" is not a threshold; want e.g. "> 1000"`},
		{in: "=> 5", err: `"=> 5" is not a threshold; want e.g. ">= 5"`},
	}
	for _, tt := range tests {
		got, err := ParseThreshold(tt.in)
		switch {
		case tt.err != "" && (err == nil || err.Error() != tt.err):
			t.Errorf("ParseThreshold(%q) error = %v, want %s", tt.in, err, tt.err)
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("ParseThreshold(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestThresholdHolds(t *testing.T) {
	tests := []struct {
		th   string
		x    float64
		want bool
	}{
		{"> 1000", 1001, true}, {"> 1000", 1000, false},
		{">= 0.5", 0.5, true}, {">= 0.5", 0.49, false},
		{"< 1%", 0.5, true}, {"< 1%", 1, false},
		{"<= 99.5%", 99.5, true}, {"<= 99.5%", 99.6, false},
		{"== 0", 0, true}, {"= 0", 1, false},
		{"!= 3", 2, true}, {"!= 3", 3, false},
		{"< 24 hours", 3600, true}, {"< 24 hours", 86400, false},
	}
	for _, tt := range tests {
		th, err := ParseThreshold(tt.th)
		if err != nil {
			t.Fatal(err)
		}
		if got := th.Holds(tt.x); got != tt.want {
			t.Errorf("%q.Holds(%v) = %v, want %v", tt.th, tt.x, got, tt.want)
		}
	}
	if (Threshold{Op: "??"}).Holds(1) {
		t.Error("an unknown operator holds")
	}
	for in, want := range map[string]string{"< 1%": "< 1%", "= 0": "== 0", "< 24 hours": "< 24h0m0s"} {
		th, _ := ParseThreshold(in)
		if th.String() != want {
			t.Errorf("%q.String() = %q, want %q", in, th.String(), want)
		}
	}
}

func TestParsePercent(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		err  string
	}{
		{in: "99.95%", want: 99.95},
		{in: "99.5%", want: 99.5},
		{in: "0%", want: 0},
		{in: "100%", want: 100},
		{in: "99.95 %", err: `"99.95 %" is not a percentage; want e.g. "99.95%"`},
		{in: "99.95", err: `"99.95" is not a percentage; want e.g. "99.95%"`},
		{in: "101%", err: `"101%" is not a percentage: must lie between 0% and 100%; want e.g. "99.9%"`},
		{in: "-1%", err: `"-1%" is not a percentage: must lie between 0% and 100%; want e.g. "99.9%"`},
		{in: "high", err: `"high" is not a percentage; want e.g. "99.9%"`},
	}
	for _, tt := range tests {
		got, err := ParsePercent(tt.in)
		switch {
		case tt.err != "" && (err == nil || err.Error() != tt.err):
			t.Errorf("ParsePercent(%q) error = %v, want %s", tt.in, err, tt.err)
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("ParsePercent(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestSemver(t *testing.T) {
	for _, s := range []string{"1.0.0", "2.1.0", "10.20.30", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0+build.5", "1.0.0-rc.1+sha.abc"} {
		if _, err := parseSemver(s); err != nil {
			t.Errorf("parseSemver(%q): %v", s, err)
		}
	}
	for s, ex := range map[string]string{"2.1": "2.1.0", "v1.9": "1.9.0", "1": "1.0.0", "01.2.3": "1.2.3", "1.2.3.4": "1.0.0", "1.0.0-": "1.0.0", "1.0.0+": "1.0.0", "x": "1.0.0", "": "1.0.0"} {
		_, err := parseSemver(s)
		if ve, ok := err.(*valueError); !ok || ve.example != ex {
			t.Errorf("parseSemver(%q) = %v, want example %q", s, err, ex)
		}
	}
	// Precedence, from semver.org: each is lower than the next.
	order := []string{"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0"}
	for i := 0; i+1 < len(order); i++ {
		a, _ := parseSemver(order[i])
		b, _ := parseSemver(order[i+1])
		if a.compare(b) != -1 || b.compare(a) != 1 || a.compare(a) != 0 {
			t.Errorf("%s < %s does not hold", order[i], order[i+1])
		}
	}
}

func TestSuggest(t *testing.T) {
	names := []string{"owner_team", "domain", "name", "description"}
	for word, want := range map[string]string{
		"owner_tem": "owner_team", "Owner_Team": "owner_team", "domian": "domain", "nmae": "name",
		"descripton": "description", "x": "", "colour": "", "": "",
	} {
		if got := suggest(word, names); got != want {
			t.Errorf("suggest(%q) = %q, want %q", word, got, want)
		}
	}
	if got := didYouMean("zzz", []string{"a", "b"}); got != "want one of: `a`, `b`" {
		t.Errorf("didYouMean = %q", got)
	}
}

func TestPaths(t *testing.T) {
	for path, parent := range map[string]string{
		"a.b[1].c": "a.b[1]", "a.b[1]": "a.b", "a.b": "a", "a": "", "": "",
		`metadata.labels["app.kubernetes.io/name"]`: "metadata.labels", `x["a[0]"]`: "x",
	} {
		if got := parentPath(path); got != parent {
			t.Errorf("parentPath(%q) = %q, want %q", path, got, parent)
		}
	}
	if got := joinPath(joinPath("", "metadata"), "app.kubernetes.io/name"); got != `metadata["app.kubernetes.io/name"]` {
		t.Errorf("joinPath = %q", got)
	}
}
func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"2.1.0", "2.0.0", 1},
		{"1.9.0", "1.10.0", -1},
		{"1.0.0-rc.1", "1.0.0", -1},
		{"1.0.0", "1.0.0", 0},
		{"junk", "1.0.0", -1},
		{"1.0.0", "junk", 1},
	} {
		if got := CompareVersions(tc.a, tc.b); got != tc.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestUnquotedVersionIsOneProblem: `current_version: 1.0` is a number; the
// author hears that once, not also that "" is not a version.
func TestUnquotedVersionIsOneProblem(t *testing.T) {
	_, err := Parse(File{Name: "p.yaml", Data: []byte("apiVersion: rhizome/v1\nkind: DataProduct\nid: dp.sales.x\nname: X\nowner_team: t\ndomain: sales\ncurrent_version: 1.0\nsensitivity_level: internal\n")})
	var got []string
	for _, p := range rhizome.ProblemsOf(err) {
		got = append(got, p.String())
	}
	if len(got) != 1 || !strings.Contains(got[0], `quote it`) {
		t.Fatalf("problems: %q", got)
	}
}
