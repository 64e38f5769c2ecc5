package quality

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/spec"
)

// QualityMetrics are a product's quality_metrics as measured by one run
// (see docs/quality-checks.md for the definitions). Percentages are 0-100.
type QualityMetrics struct {
	// Completeness is 100 * (1 - missing / rows) summed over the evaluated
	// null_count and null_percentage checks; 100 when there are none
	// (CompletenessChecks 0).
	Completeness       float64 `json:"completeness"`
	CompletenessChecks int     `json:"completeness_checks"`
	// Accuracy is the mean over the validity checks (accepted_values,
	// range, length, regex, format, referential_integrity, custom_sql,
	// schema, schema_change) of each check's valid share: for row-level
	// checks the share of rows in scope that pass (1 for an empty scope),
	// for the others 1 if it passed and 0 if not; times 100. A check that
	// could not be evaluated counts 0; one that passed with a note
	// (nothing to measure) is left out. 100 when there are none.
	Accuracy       float64 `json:"accuracy"`
	AccuracyChecks int     `json:"accuracy_checks"`
	// Freshness is the age of the last publish at now; Published is false
	// (and the ages zero) when the product was never published.
	Freshness      time.Duration `json:"freshness_seconds"`
	FreshnessHours float64       `json:"freshness_hours"`
	Published      bool          `json:"published"`
}

// validityTypes feed Accuracy.
var validityTypes = map[string]bool{
	"accepted_values": true, "range": true, "length": true, "regex": true, "format": true,
	"referential_integrity": true, "custom_sql": true, "schema": true, "schema_change": true,
}

// Metrics computes a run's quality metrics. lastPublished is the publish
// the freshness is measured from (zero: never published).
func Metrics(r *Report, lastPublished, now time.Time) QualityMetrics {
	m := QualityMetrics{Completeness: 100, Accuracy: 100}
	if !lastPublished.IsZero() {
		m.Published = true
		m.Freshness = max(now.Sub(lastPublished), 0)
		m.FreshnessHours = m.Freshness.Hours()
	}
	if r == nil {
		return m
	}
	var missing, rows, valid float64
	for _, res := range r.Results {
		c := res.Check
		t, ok := Lookup(c.Type)
		if !ok {
			continue
		}
		switch {
		case t.Name == "null_count" || t.Name == "null_percentage":
			if res.Error != "" || res.Rows == nil {
				continue
			}
			n := *res.Rows
			miss := res.Metric
			if t.Name == "null_percentage" {
				miss = res.Metric / 100 * n
			}
			missing += miss
			rows += n
			m.CompletenessChecks++
		case validityTypes[t.Name]:
			if res.Error == "" && res.Note != "" && res.Metric == 0 {
				continue // nothing measured
			}
			m.AccuracyChecks++
			switch {
			case res.Error != "":
			case t.Kind == KindRow && res.Rows != nil:
				if *res.Rows == 0 {
					valid++
					continue
				}
				bad := res.Metric
				if c.Threshold.Percent {
					bad = res.Metric / 100 * *res.Rows
				}
				valid += math.Max(0, 1 - bad / *res.Rows)
			case res.Passed:
				valid++
			}
		}
	}
	if rows > 0 {
		m.Completeness = 100 * (1 - missing/rows)
	}
	if m.AccuracyChecks > 0 {
		m.Accuracy = 100 * valid / float64(m.AccuracyChecks)
	}
	return m
}

// SLAResult is one target compared with a measurement.
type SLAResult struct {
	Name   string `json:"name"`   // freshness, accuracy, completeness
	Source string `json:"source"` // sla.freshness, quality_metrics.completeness, ...
	Target string `json:"target"`
	Actual string `json:"actual"`
	Met    bool   `json:"met"`
	Note   string `json:"note,omitempty"`
}

// CompareSLA holds measured metrics against a product's sla (freshness as
// a duration, accuracy as a percentage; availability is not a quality
// measurement and is left to SLOs) and its quality_metrics targets
// (completeness and accuracy as fractions, 0.98 = 98%; a value above 1 is
// read as a percentage). quality_metrics.freshness in the guide is a
// share of time within the freshness SLA, which needs history: it is
// reported as not measured here. Unparseable targets come back unmet with
// a note (apply validates them, so this is a fallback).
func CompareSLA(m QualityMetrics, sla rhizome.SLA, targets map[string]float64) []SLAResult {
	var out []SLAResult
	if sla.Freshness != "" {
		r := SLAResult{Name: "freshness", Source: "sla.freshness", Target: "<= " + sla.Freshness}
		d, err := spec.ParseDuration(sla.Freshness)
		switch {
		case err != nil:
			r.Note = err.Error()
		case !m.Published:
			r.Actual, r.Note = "never published", "no publish to measure"
		default:
			r.Actual = fmtDuration(m.Freshness)
			r.Met = m.Freshness <= d
		}
		out = append(out, r)
	}
	if sla.Accuracy != "" {
		r := SLAResult{Name: "accuracy", Source: "sla.accuracy", Target: ">= " + sla.Accuracy, Actual: pct(m.Accuracy)}
		if p, err := spec.ParsePercent(sla.Accuracy); err != nil {
			r.Note = err.Error()
		} else {
			r.Met = m.Accuracy >= p
			if m.AccuracyChecks == 0 {
				r.Note = "no validity checks: accuracy is 100% by definition"
			}
		}
		out = append(out, r)
	}
	for _, name := range []string{"completeness", "accuracy", "freshness"} {
		v, ok := targets[name]
		if !ok {
			continue
		}
		want := v
		if want <= 1 {
			want *= 100
		}
		r := SLAResult{Name: name, Source: "quality_metrics." + name, Target: ">= " + pct(want)}
		switch name {
		case "completeness":
			r.Actual, r.Met = pct(m.Completeness), m.Completeness >= want
			if m.CompletenessChecks == 0 {
				r.Note = "no null checks: completeness is 100% by definition"
			}
		case "accuracy":
			r.Actual, r.Met = pct(m.Accuracy), m.Accuracy >= want
			if m.AccuracyChecks == 0 {
				r.Note = "no validity checks: accuracy is 100% by definition"
			}
		case "freshness":
			r.Actual, r.Met = "not measured", true
			r.Note = "the share of time within the freshness SLA needs run history (SLOs)"
		}
		out = append(out, r)
	}
	return out
}

func pct(x float64) string {
	s := fmt.Sprintf("%.2f", x)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s + "%"
}

func fmtDuration(d time.Duration) string { return d.Round(time.Second).String() }
