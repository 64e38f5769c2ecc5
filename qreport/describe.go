package qreport

import (
	"fmt"
	"strings"

	"github.com/rhizome-mesh/rhizome/quality"
)

// Describe is one line about a result: "metric 12, want < 1%", or its
// error; for logs, alerts and the CLI.
func Describe(r quality.Result) string {
	if r.Error != "" {
		return "error: " + r.Error
	}
	s := fmt.Sprintf("metric %s, want %s", FormatMetric(r.Metric), r.Threshold)
	if r.Note != "" {
		s += " (" + r.Note + ")"
	}
	return s
}

// FormatMetric prints a metric compactly.
func FormatMetric(m float64) string { return strings.TrimSuffix(fmt.Sprintf("%.6g", m), ".000000") }
