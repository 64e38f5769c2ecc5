package qreport

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/quality"
	"github.com/rhizome-mesh/rhizome/spec"
)

// Report is get_quality_report(): a product version's quality.
type Report struct {
	ProductID   string    `json:"product_id"`
	Version     string    `json:"version"`
	GeneratedAt time.Time `json:"generated_at"`
	// LastRun is the latest gated run or on-demand check (nil: none yet).
	LastRun *RunBody   `json:"last_run,omitempty"`
	LastAt  *time.Time `json:"last_run_at,omitempty"`
	// LastGate is the gate of the latest pipeline run ("" when none of
	// the last 30 runs and checks was a pipeline run).
	LastGate      string      `json:"last_gate,omitempty"`
	LastGateRunID string      `json:"last_gate_run_id,omitempty"`
	Checks        []CheckInfo `json:"checks"`
	// QualityMetrics are completeness, freshness and accuracy as defined
	// in docs/quality.md, against the product's quality_metrics targets.
	QualityMetrics []Metric `json:"quality_metrics"`
	// SLA compares the product's sla (freshness, accuracy) with what was
	// measured.
	SLA []quality.SLAResult `json:"sla"`
}

// CheckInfo is the latest result of one check, with its history.
type CheckInfo struct {
	Name      string           `json:"name"`
	Type      string           `json:"type"`
	Column    string           `json:"column,omitempty"`
	Source    string           `json:"source,omitempty"`
	Path      string           `json:"path,omitempty"`
	Severity  string           `json:"severity"`
	Threshold string           `json:"threshold"`
	Metric    any              `json:"metric"` // a number; "+Inf"/"NaN" as strings
	Passed    bool             `json:"passed"`
	State     string           `json:"state"` // passed | failed | error | skipped
	Error     string           `json:"error,omitempty"`
	Note      string           `json:"note,omitempty"`
	Samples   []map[string]any `json:"samples,omitempty"`
	RunID     string           `json:"run_id"`
	At        time.Time        `json:"at"`
	// History holds the check's earlier metrics, oldest first (the latest
	// is the last point).
	History []Point `json:"history"`
	// Trend compares the latest metric with the mean of the five before
	// it: up, down or flat (within 1%); "" with no history.
	Trend string `json:"trend,omitempty"`
}

// Metric is one of the guide's quality_metrics.
type Metric struct {
	Name       string   `json:"name"`
	Value      *float64 `json:"value"` // nil: not measured yet
	Target     *float64 `json:"target,omitempty"`
	Met        *bool    `json:"met,omitempty"`
	Definition string   `json:"definition"`
	Note       string   `json:"note,omitempty"`
}

// Metric definitions, shown in reports and docs/quality.md.
const (
	DefCompleteness = "1 - missing/rows over the latest run's null_count and null_percentage checks (quality.Metrics)"
	DefFreshness    = "share of the last 30 days during which the newest publish was at most sla.freshness old (from snapshot times)"
	DefAccuracy     = "mean valid share of the latest run's validity checks: accepted_values, range, length, regex, format, referential_integrity, custom_sql, schema, schema_change (quality.Metrics)"
)

// BuildOptions is what Build needs besides the store.
type BuildOptions struct {
	Product *rhizome.DataProduct
	Version string // "" = current
	Now     time.Time
	// Publishes are the product version's snapshot times (any order).
	Publishes []time.Time
	// History is how many past metrics each check shows (default 30).
	History int
	// Sample shows one sampled row as the caller may see it (nil: the
	// row is dropped). The server builds it from the caller's
	// access.Decision, so samples follow the same rules as REST and SQL
	// reads; a nil Sample masks every value.
	Sample func(row map[string]any) map[string]any
}

// Window is how many runs, and how much time, the quality metrics cover.
const (
	WindowRuns = 30
	WindowTime = 30 * 24 * time.Hour
)

// Build assembles a product version's report from stored results.
func Build(ctx context.Context, store metastore.Reader, opt BuildOptions) (*Report, error) {
	dp := opt.Product
	if opt.Version == "" {
		opt.Version = dp.CurrentVersion
	}
	if opt.History <= 0 {
		opt.History = 30
	}
	rep := &Report{ProductID: dp.ID, Version: opt.Version, GeneratedAt: opt.Now, Checks: []CheckInfo{}}
	runs, runAt, err := Runs(ctx, store, dp.ID, opt.Version, WindowRuns)
	if err != nil {
		return nil, err
	}
	if len(runs) > 0 {
		rep.LastRun, rep.LastAt = &runs[0], &runAt[0]
	}
	for _, r := range runs {
		if !r.OnDemand {
			rep.LastGate, rep.LastGateRunID = r.Gate, r.RunID
			break
		}
	}

	// The latest result of every check, with its history: one pass over
	// the product's results, newest first.
	byName := map[string]*CheckInfo{}
	var order []string
	var after int64
	const pageSize, maxRecords = 500, 20000
	for seen := 0; seen < maxRecords; {
		recs, err := store.ListRecords(ctx, metastore.RecordQuery{Collection: CollectionResult, ProductID: dp.ID, Desc: true, AfterSeq: after, Limit: pageSize})
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			var b ResultBody
			if json.Unmarshal(r.Body, &b) != nil || b.Version != opt.Version {
				continue
			}
			ci := byName[r.Subject]
			if ci == nil {
				res := b.Result
				ci = &CheckInfo{Name: res.Check.Name, Type: res.Check.Type, Column: res.Check.Column, Source: res.Check.Source, Path: res.Check.Path,
					Severity: res.Severity, Threshold: res.Threshold, Metric: metricValue(res.Metric), Passed: res.Passed, State: StateOf(res),
					Error: res.Error, Note: res.Note, Samples: res.Samples, RunID: b.RunID, At: r.At.UTC()}
				ci.Samples = showSamples(ci.Samples, opt.Sample)
				byName[r.Subject] = ci
				order = append(order, r.Subject)
			}
			if m := b.Result.Metric; len(ci.History) < opt.History && b.Result.Error == "" && !math.IsNaN(m) && !math.IsInf(m, 0) {
				ci.History = append(ci.History, Point{At: r.At.UTC(), RunID: b.RunID, Metric: b.Result.Metric, Passed: b.Result.Passed})
			}
		}
		seen += len(recs)
		if len(recs) < pageSize {
			break
		}
		after = recs[len(recs)-1].Seq
	}
	sort.Strings(order)
	for _, n := range order {
		ci := byName[n]
		slicesReverse(ci.History)
		ci.Trend = trend(ci.History)
		if ci.History == nil {
			ci.History = []Point{}
		}
		rep.Checks = append(rep.Checks, *ci)
	}

	rep.QualityMetrics, rep.SLA = metrics(dp, runs, opt)
	return rep, nil
}

func metrics(dp *rhizome.DataProduct, runs []RunBody, opt BuildOptions) ([]Metric, []quality.SLAResult) {
	target := func(name string) *float64 {
		if v, ok := dp.QualityMetrics[name]; ok {
			if v > 1 {
				v /= 100 // written as a percentage
			}
			return &v
		}
		return nil
	}
	met := func(v, t *float64) *bool {
		if v == nil || t == nil {
			return nil
		}
		b := *v >= *t
		return &b
	}
	// Completeness and accuracy are the latest run's quality.Metrics.
	comp := Metric{Name: "completeness", Definition: DefCompleteness, Target: target("completeness")}
	acc := Metric{Name: "accuracy", Definition: DefAccuracy, Target: target("accuracy")}
	var m quality.QualityMetrics
	if len(runs) > 0 {
		m = runs[0].Metrics
		c, a := m.Completeness/100, m.Accuracy/100
		comp.Value, acc.Value = &c, &a
		if m.CompletenessChecks == 0 {
			comp.Note = "no null checks: 1 by definition"
		}
		if m.AccuracyChecks == 0 {
			acc.Note = "no validity checks: 1 by definition"
		}
	} else {
		comp.Note, acc.Note = "no checks have run yet", "no checks have run yet"
	}
	comp.Met, acc.Met = met(comp.Value, comp.Target), met(acc.Value, acc.Target)

	fresh := Metric{Name: "freshness", Definition: DefFreshness, Target: target("freshness")}
	slaFresh, ferr := spec.ParseDuration(dp.SLA.Freshness)
	switch {
	case dp.SLA.Freshness == "" || ferr != nil:
		fresh.Note = "the product declares no sla.freshness"
	case len(opt.Publishes) == 0:
		zero := 0.0
		fresh.Value, fresh.Note = &zero, "never published"
	default:
		v := FreshnessScore(opt.Publishes, slaFresh, opt.Now, WindowTime)
		fresh.Value = &v
	}
	fresh.Met = met(fresh.Value, fresh.Target)

	// The sla: freshness as the age of the newest publish now, accuracy
	// as the latest run's (quality.CompareSLA).
	m.Published, m.Freshness, m.FreshnessHours = false, 0, 0
	if last := latest(opt.Publishes); !last.IsZero() {
		m.Published = true
		m.Freshness = max(opt.Now.Sub(last), 0)
		m.FreshnessHours = m.Freshness.Hours()
	}
	if len(runs) == 0 {
		m.Completeness, m.Accuracy = 100, 100
	}
	sla := []quality.SLAResult{}
	for _, r := range quality.CompareSLA(m, dp.SLA, nil) {
		if r.Name == "accuracy" && len(runs) == 0 {
			r.Actual, r.Met, r.Note = "not measured", false, "no checks have run yet"
		}
		sla = append(sla, r)
	}
	return []Metric{comp, fresh, acc}, sla
}

// FreshnessScore is the share of the window [now-window, now] (starting no
// earlier than the first publish) during which the newest publish was at
// most maxAge old.
func FreshnessScore(publishes []time.Time, maxAge time.Duration, now time.Time, window time.Duration) float64 {
	ts := append([]time.Time(nil), publishes...)
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	start := now.Add(-window)
	if ts[0].After(start) {
		start = ts[0]
	}
	total := now.Sub(start)
	if total <= 0 {
		return 1
	}
	var stale time.Duration
	for i, t := range ts {
		end := now
		if i+1 < len(ts) {
			end = ts[i+1]
		}
		staleFrom := t.Add(maxAge)
		if staleFrom.Before(start) {
			staleFrom = start
		}
		if end.After(staleFrom) {
			stale += end.Sub(staleFrom)
		}
	}
	return math.Max(0, 1-float64(stale)/float64(total))
}

func latest(ts []time.Time) time.Time {
	var l time.Time
	for _, t := range ts {
		if t.After(l) {
			l = t
		}
	}
	return l
}

func metricValue(m float64) any {
	if math.IsNaN(m) || math.IsInf(m, 0) {
		return fmt.Sprint(m)
	}
	return m
}

// showSamples applies show to each row (maskAll when nil), dropping the
// rows it refuses.
func showSamples(rows []map[string]any, show func(map[string]any) map[string]any) []map[string]any {
	if show == nil || len(rows) == 0 {
		return maskAll(rows)
	}
	out := make([]map[string]any, 0, len(rows))
	for _, r := range rows {
		if m := show(r); m != nil {
			out = append(out, m)
		}
	}
	return out
}

func maskAll(rows []map[string]any) []map[string]any {
	out := make([]map[string]any, len(rows))
	for i, r := range rows {
		m := make(map[string]any, len(r))
		for k := range r {
			m[k] = "***"
		}
		out[i] = m
	}
	return out
}

func slicesReverse(p []Point) {
	for i, j := 0, len(p)-1; i < j; i, j = i+1, j-1 {
		p[i], p[j] = p[j], p[i]
	}
}

// trend compares the last point with the mean of up to five before it.
func trend(h []Point) string {
	if len(h) < 2 {
		return ""
	}
	last := h[len(h)-1].Metric
	prev := h[max(0, len(h)-6) : len(h)-1]
	var sum float64
	for _, p := range prev {
		sum += p.Metric
	}
	mean := sum / float64(len(prev))
	if math.IsNaN(last) || math.IsInf(last, 0) || math.IsNaN(mean) || math.IsInf(mean, 0) {
		return "flat"
	}
	tol := 0.01 * math.Max(math.Abs(mean), 1e-9)
	switch {
	case last > mean+tol:
		return "up"
	case last < mean-tol:
		return "down"
	}
	return "flat"
}
