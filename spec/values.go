package spec

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// valueError is a value that does not parse. Its Error reads as in the
// guide's style ("X" is not a Y; want e.g. "Z"); the checks split it into a
// problem's message and hint.
type valueError struct {
	input   string
	what    string // "duration", "threshold", ...
	example string // a corrected or typical value
	why     string // optional detail, e.g. "must be at most 100%"
}

func (e *valueError) Error() string { return e.message() + "; " + e.hint() }

func (e *valueError) message() string {
	m := fmt.Sprintf("%q is not a %s", e.input, e.what)
	if e.why != "" {
		m += ": " + e.why
	}
	return m
}

func (e *valueError) hint() string { return fmt.Sprintf("want e.g. %q", e.example) }

// durationUnits maps every accepted unit spelling to its length.
var durationUnits = map[string]time.Duration{
	"ms": time.Millisecond, "msec": time.Millisecond, "millisecond": time.Millisecond, "milliseconds": time.Millisecond,
	"s": time.Second, "sec": time.Second, "secs": time.Second, "second": time.Second, "seconds": time.Second,
	"m": time.Minute, "min": time.Minute, "mins": time.Minute, "minute": time.Minute, "minutes": time.Minute,
	"h": time.Hour, "hr": time.Hour, "hrs": time.Hour, "hour": time.Hour, "hours": time.Hour,
	"d": 24 * time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour,
	"w": 7 * 24 * time.Hour, "wk": 7 * 24 * time.Hour, "wks": 7 * 24 * time.Hour,
	"week": 7 * 24 * time.Hour, "weeks": 7 * 24 * time.Hour,
}

// ParseDuration reads the guide's durations: a non-negative number and a
// unit, with or without a space ("15min", "15 min", "1.5h", "24 hours",
// "90 days", "2 weeks", "1d", "45s"). Go's own form ("1h30m") is accepted
// too. Months and years are not: their length varies.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	num, unit := splitNumber(t)
	if num != "" && unit != "" {
		if u, ok := durationUnits[strings.ToLower(strings.TrimLeft(unit, " "))]; ok {
			f, err := strconv.ParseFloat(num, 64)
			if err == nil && f >= 0 {
				d := f * float64(u)
				if d < float64(math.MaxInt64) {
					return time.Duration(math.Round(d)), nil
				}
				return 0, &valueError{input: s, what: "duration", example: "90 days", why: "too long"}
			}
		}
	}
	if d, err := time.ParseDuration(t); err == nil && d >= 0 {
		return d, nil
	}
	ex := "15min"
	switch {
	case num != "" && unit == "":
		ex = num + " hours"
	case num != "" && strings.TrimSpace(unit) != "":
		if u := suggest(strings.ToLower(strings.TrimSpace(unit)), durationUnitNames()); u != "" {
			ex = num + " " + u
		}
	}
	return 0, &valueError{input: s, what: "duration", example: ex}
}

func durationUnitNames() []string {
	return []string{"ms", "seconds", "min", "minutes", "hours", "days", "weeks"}
}

// splitNumber splits "1.5 hours" into "1.5" and " hours". A sign is not
// part of a number here.
func splitNumber(s string) (num, rest string) {
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	return s[:i], s[i:]
}

// Threshold is a comparison from a quality check or SLO, e.g. "> 1000",
// "< 1%", "< 24 hours". Value is the number as written: 1 for "1%" (with
// Percent set), and seconds for a duration (with IsDuration and Duration
// set).
type Threshold struct {
	Op         string // one of > >= < <= == != ("=" is read as "==")
	Value      float64
	Percent    bool
	Duration   time.Duration
	IsDuration bool
}

// Holds reports whether x satisfies the threshold. x is in the threshold's
// unit: a percentage (0-100) for percent thresholds, seconds for durations.
func (t Threshold) Holds(x float64) bool {
	switch t.Op {
	case ">":
		return x > t.Value
	case ">=":
		return x >= t.Value
	case "<":
		return x < t.Value
	case "<=":
		return x <= t.Value
	case "==":
		return x == t.Value
	case "!=":
		return x != t.Value
	}
	return false
}

func (t Threshold) String() string {
	switch {
	case t.IsDuration:
		return t.Op + " " + t.Duration.String()
	case t.Percent:
		return t.Op + " " + strconv.FormatFloat(t.Value, 'f', -1, 64) + "%"
	}
	return t.Op + " " + strconv.FormatFloat(t.Value, 'f', -1, 64)
}

// ParseThreshold reads an operator (> >= < <= == = !=) and a number, a
// percentage ("1%", no space before the sign) or a duration ("24 hours").
func ParseThreshold(s string) (Threshold, error) {
	t := strings.TrimSpace(s)
	var op string
	for _, o := range []string{">=", "<=", "==", "!=", ">", "<", "="} {
		if strings.HasPrefix(t, o) {
			op = o
			break
		}
	}
	rest := strings.TrimSpace(t[len(op):])
	written := op
	bad := func() (Threshold, error) {
		return Threshold{}, &valueError{input: s, what: "threshold", example: thresholdExample(written, rest)}
	}
	if op == "" || rest == "" {
		return bad()
	}
	if op == "=" {
		op = "=="
	}
	th := Threshold{Op: op}
	if strings.HasSuffix(rest, "%") {
		num := strings.TrimSuffix(rest, "%")
		f, err := parseNumber(num)
		if err != nil {
			return bad()
		}
		th.Value, th.Percent = f, true
		return th, nil
	}
	if f, err := parseNumber(rest); err == nil {
		th.Value = f
		return th, nil
	}
	if d, err := ParseDuration(rest); err == nil && hasLetter(rest) {
		th.Duration, th.IsDuration, th.Value = d, true, d.Seconds()
		return th, nil
	}
	return bad()
}

// thresholdExample guesses the threshold the author meant.
func thresholdExample(op, rest string) string {
	if op == "=" && rest != "" && (rest[0] == '>' || rest[0] == '<') {
		op, rest = rest[:1]+"=", strings.TrimSpace(rest[1:]) // "=>" for ">="
	}
	compact := strings.ReplaceAll(strings.TrimSpace(rest), " ", "")
	num, isPercent := strings.CutSuffix(compact, "%")
	_, numErr := parseNumber(num)
	if op == "" {
		op = ">"
		if isPercent {
			op = "<"
		}
	} else if op == "=" {
		op = "=="
	}
	switch {
	case numErr == nil && isPercent:
		return op + " " + num + "%"
	case numErr == nil:
		return op + " " + num
	}
	if _, err := ParseDuration(rest); err != nil && strings.ContainsAny(rest, "0123456789") {
		if ve, ok := err.(*valueError); ok && ve.example != "15min" {
			return op + " " + ve.example
		}
	}
	if strings.HasPrefix(op, "<") {
		return op + " 1%"
	}
	return op + " 1000"
}

// parseNumber accepts plain decimal numbers (no sign games, no hex, no
// NaN/Inf): what a person writes in a threshold.
func parseNumber(s string) (float64, error) {
	if s == "" || strings.ContainsAny(s, " \t_xXpPnN") || strings.ContainsAny(s[:1], "+") {
		return 0, fmt.Errorf("not a number")
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("not a number")
	}
	return f, nil
}

func hasLetter(s string) bool {
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return true
		}
	}
	return false
}

// ParsePercent reads a percentage such as "99.95%" and returns 99.95. It
// must lie in [0, 100] and the sign follows the number without a space.
func ParsePercent(s string) (float64, error) {
	t := strings.TrimSpace(s)
	num, ok := strings.CutSuffix(t, "%")
	if ok {
		if f, err := parseNumber(num); err == nil {
			if f < 0 || f > 100 {
				return 0, &valueError{input: s, what: "percentage", example: "99.9%", why: "must lie between 0% and 100%"}
			}
			return f, nil
		}
	}
	ex := "99.9%"
	if n := strings.ReplaceAll(strings.TrimSuffix(t, "%"), " ", ""); n != "" {
		if f, err := parseNumber(n); err == nil && f >= 0 && f <= 100 {
			ex = n + "%"
		}
	}
	return 0, &valueError{input: s, what: "percentage", example: ex}
}

// semver is a parsed semantic version (semver.org 2.0.0).
type semver struct {
	major, minor, patch uint64
	pre                 []string
}

// parseSemver reads MAJOR.MINOR.PATCH[-pre][+build]; no leading "v".
func parseSemver(s string) (semver, error) {
	bad := func() (semver, error) {
		return semver{}, &valueError{input: s, what: "semantic version", example: semverExample(s)}
	}
	core, _, _ := strings.Cut(s, "+")
	core, pre, hasPre := strings.Cut(core, "-")
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return bad()
	}
	var n [3]uint64
	for i, p := range parts {
		if p == "" || (len(p) > 1 && p[0] == '0') || strings.Trim(p, "0123456789") != "" {
			return bad()
		}
		v, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return bad()
		}
		n[i] = v
	}
	v := semver{major: n[0], minor: n[1], patch: n[2]}
	if hasPre {
		for _, id := range strings.Split(pre, ".") {
			if id == "" || strings.Trim(id, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-") != "" {
				return bad()
			}
			v.pre = append(v.pre, id)
		}
	}
	if i := strings.IndexByte(s, '+'); i >= 0 && (i == len(s)-1 || strings.Trim(s[i+1:], "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-.") != "") {
		return bad()
	}
	return v, nil
}

// semverExample completes "2.1" to "2.1.0" and drops a leading "v".
func semverExample(s string) string {
	t := strings.TrimPrefix(strings.TrimSpace(s), "v")
	parts := strings.Split(t, ".")
	for _, p := range parts {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return "1.0.0"
		}
	}
	for len(parts) < 3 {
		parts = append(parts, "0")
	}
	if len(parts) > 3 {
		return "1.0.0"
	}
	for i, p := range parts {
		parts[i] = strings.TrimLeft(p, "0")
		if parts[i] == "" {
			parts[i] = "0"
		}
	}
	return strings.Join(parts, ".")
}

// compare orders versions by semver precedence: -1, 0 or +1.
func (a semver) compare(b semver) int {
	for _, d := range [][2]uint64{{a.major, b.major}, {a.minor, b.minor}, {a.patch, b.patch}} {
		if d[0] != d[1] {
			if d[0] < d[1] {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(a.pre) == 0 && len(b.pre) == 0:
		return 0
	case len(a.pre) == 0:
		return 1
	case len(b.pre) == 0:
		return -1
	}
	for i := 0; i < len(a.pre) && i < len(b.pre); i++ {
		x, y := a.pre[i], b.pre[i]
		xn, xerr := strconv.ParseUint(x, 10, 64)
		yn, yerr := strconv.ParseUint(y, 10, 64)
		switch {
		case xerr == nil && yerr == nil:
			if xn != yn {
				if xn < yn {
					return -1
				}
				return 1
			}
		case xerr == nil:
			return -1
		case yerr == nil:
			return 1
		case x != y:
			if x < y {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(a.pre) < len(b.pre):
		return -1
	case len(a.pre) > len(b.pre):
		return 1
	}
	return 0
}

// CompareVersions orders two semantic versions by precedence (-1, 0, +1);
// a version that does not parse sorts before every one that does, and two
// such compare as strings.
func CompareVersions(a, b string) int {
	va, ea := parseSemver(a)
	vb, eb := parseSemver(b)
	switch {
	case ea != nil && eb != nil:
		return strings.Compare(a, b)
	case ea != nil:
		return -1
	case eb != nil:
		return 1
	}
	return va.compare(vb)
}
