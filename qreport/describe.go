package qreport

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/rhizome-mesh/rhizome/quality"
)

// Describe is one line about a result: "metric 12, want < 1%", or its
// error; for logs, alerts and the CLI.
func Describe(r quality.Result) string {
	if r.Error != "" {
		return "error: " + r.Error
	}
	s := fmt.Sprintf("metric %s, want %s", FormatMetricOf(r.Check.Type, r.Metric), r.Threshold)
	if r.Note != "" {
		s += " (" + r.Note + ")"
	}
	return s
}

// FormatMetric prints a metric compactly.
func FormatMetric(m float64) string { return strings.TrimSuffix(fmt.Sprintf("%.6g", m), ".000000") }

// FormatMetricOf prints a check type's metric for people: a freshness
// age (seconds) as a duration, "29s" or "3h12m0s"; others as FormatMetric.
func FormatMetricOf(typ string, m float64) string {
	if typ != "freshness" || math.IsNaN(m) || math.IsInf(m, 0) || math.Abs(m) > 1e9 {
		return FormatMetric(m)
	}
	d := time.Duration(m * float64(time.Second))
	if d > -time.Second && d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
