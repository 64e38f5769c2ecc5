package qreport

import (
	"math"
	"testing"
	"time"
)

func TestFreshnessScore(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	h := time.Hour
	for _, c := range []struct {
		name      string
		publishes []time.Duration // before now
		maxAge    time.Duration
		want      float64
	}{
		// Published 10h ago, max age 1h: fresh for 1h of the 10h window.
		{"one publish", []time.Duration{10 * h}, h, 0.1},
		// Hourly publishes within a 2h max age: always fresh.
		{"hourly", []time.Duration{3 * h, 2 * h, h, 0}, 2 * h, 1},
		// Publishes at -4h and -2h with max age 1h: stale 1h after each.
		{"gaps", []time.Duration{4 * h, 2 * h}, h, 0.5},
		// Only the last 30 days count.
		{"window", []time.Duration{60 * 24 * h}, 15 * 24 * h, 0},
	} {
		var ts []time.Time
		for _, d := range c.publishes {
			ts = append(ts, now.Add(-d))
		}
		if got := FreshnessScore(ts, c.maxAge, now, WindowTime); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestTrend(t *testing.T) {
	pts := func(ms ...float64) []Point {
		var p []Point
		for _, m := range ms {
			p = append(p, Point{Metric: m})
		}
		return p
	}
	for _, c := range []struct {
		h    []Point
		want string
	}{
		{pts(5), ""},
		{pts(10, 10, 10, 12), "up"},
		{pts(10, 10, 10, 8), "down"},
		{pts(100, 100, 100.5), "flat"},
		{pts(0, 0, 0), "flat"},
		{pts(50, 1, 1, 1, 1, 1, 50, 1), "down"}, // against the five before: mean 10.8; the first 50 is out of the window
	} {
		if got := trend(c.h); got != c.want {
			t.Errorf("trend(%v) = %q, want %q", c.h, got, c.want)
		}
	}
}

func TestFormatMetricOf(t *testing.T) {
	for _, c := range []struct {
		typ  string
		m    float64
		want string
	}{
		{"freshness", 29.9146, "30s"}, {"freshness", 0.00778, "8ms"}, {"freshness", 86400, "24h0m0s"},
		{"freshness", math.Inf(1), "+Inf"}, {"row_count", 20000, "20000"}, {"null_percentage", 0.3, "0.3"},
	} {
		if got := FormatMetricOf(c.typ, c.m); got != c.want {
			t.Errorf("FormatMetricOf(%s, %v) = %q, want %q", c.typ, c.m, got, c.want)
		}
	}
}
