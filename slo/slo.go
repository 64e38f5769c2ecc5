// Package slo owns service level objectives: a data product's sla
// {freshness, availability, accuracy} tracked over a rolling window
// (attainment, error budget, status), breach events (records "slo.event")
// raised as alerts, the stale-data watcher (KindStale) and the serving
// counters the data API and the Postgres wire report through Served
// (records "slo.serving", one per product and hour).
//
// It reads what others write: table snapshots (publish times), run records
// (jobs), quality results (records "quality.run", else "quality.result").
// We compute the few formulas here rather than run a Prometheus/Sloth rule
// pipeline: the inputs are records in our own store, the windows are days
// long, and the numbers must be answerable from the API without a
// Prometheus server.
package slo

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/alert"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/spec"
)

// The three SLOs of the guide's sla.
const (
	Freshness    = "freshness"
	Availability = "availability"
	Accuracy     = "accuracy"
)

// Statuses of an objective.
const (
	StatusOK       = "ok"
	StatusAtRisk   = "at_risk"
	StatusBreached = "breached"
	StatusNoData   = "no_data"
)

// Collections the package owns and reads.
const (
	CollectionEvent   = "slo.event"
	CollectionServing = "slo.serving"
	// Written by the quality gate.
	CollectionQualityRun    = "quality.run"
	CollectionQualityResult = "quality.result"
)

// DefaultFreshnessTarget is the share of time data must be fresh when the
// product's quality_metrics has no freshness entry.
const DefaultFreshnessTarget = 99.0

// Publishes gives the times a product version published (its table's
// snapshots), oldest first; none (and no error) when it never did.
type Publishes interface {
	PublishTimes(ctx context.Context, productID, version string) ([]time.Time, error)
}

// Options configure a Tracker.
type Options struct {
	Store     metastore.Store
	Publishes Publishes
	Clock     rhizome.Clock // nil: system clock
	Logger    *slog.Logger  // nil discards
	// Window is the rolling window (default 30 days).
	Window time.Duration
	// AtRisk is the remaining error budget, in percent, under which an
	// objective is at_risk (default 25).
	AtRisk float64
	// Alerts receives KindStale and KindSLOBreach conditions (nil: none).
	Alerts alert.Observer
	// Registry, if set, receives the SLO gauges.
	Registry *prometheus.Registry
}

// Tracker computes SLO reports and watches for staleness and breaches.
type Tracker struct {
	opt Options
	log *slog.Logger

	mu     sync.Mutex
	served map[servingKey]*Counts

	attainment, budget, target, age *prometheus.GaugeVec
}

type servingKey struct {
	product string
	hour    time.Time
}

// Counts are good and bad events.
type Counts struct {
	OK     int64 `json:"ok"`
	Failed int64 `json:"failed"`
}

// New returns a Tracker.
func New(opt Options) *Tracker {
	if opt.Clock == nil {
		opt.Clock = rhizome.SystemClock{}
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Window <= 0 {
		opt.Window = 30 * 24 * time.Hour
	}
	if opt.AtRisk <= 0 {
		opt.AtRisk = 25
	}
	labels := []string{"product", "slo"}
	t := &Tracker{opt: opt, log: opt.Logger, served: map[servingKey]*Counts{},
		attainment: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "rhizome_slo_attainment",
			Help: "SLO attainment over the rolling window, as a ratio (0-1)."}, labels),
		budget: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "rhizome_slo_error_budget_remaining",
			Help: "Share of the error budget left over the rolling window (1 = untouched, below 0 = overspent)."}, labels),
		target: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "rhizome_slo_target",
			Help: "SLO target, as a ratio (0-1)."}, labels),
		age: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "rhizome_product_data_age_seconds",
			Help: "Age of a product's current data: seconds since its last publish."}, []string{"product"}),
	}
	if opt.Registry != nil {
		opt.Registry.MustRegister(t.attainment, t.budget, t.target, t.age)
	}
	return t
}

// Window is the rolling window.
func (t *Tracker) Window() time.Duration { return t.opt.Window }

// Served counts one request that served a product's data (ok false: it
// failed on the server's side). Cheap: kept in memory, written by Tick.
func (t *Tracker) Served(productID string, ok bool) {
	h := t.opt.Clock.Now().UTC().Truncate(time.Hour)
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.served[servingKey{productID, h}]
	if c == nil {
		c = &Counts{}
		t.served[servingKey{productID, h}] = c
	}
	if ok {
		c.OK++
	} else {
		c.Failed++
	}
}

// Flush adds the serving counts kept in memory to their hourly records.
func (t *Tracker) Flush(ctx context.Context) error {
	t.mu.Lock()
	pending := t.served
	t.served = map[servingKey]*Counts{}
	t.mu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	err := t.opt.Store.Update(ctx, func(tx metastore.Tx) error {
		for k, c := range pending {
			id := k.product + "@" + k.hour.Format(time.RFC3339)
			sum := *c
			if r, err := tx.GetRecord(ctx, CollectionServing, id); err == nil {
				var old Counts
				_ = json.Unmarshal(r.Body, &old)
				sum.OK += old.OK
				sum.Failed += old.Failed
			} else if rhizome.Code(err) != rhizome.ENotFound {
				return err
			}
			body, _ := json.Marshal(sum)
			if err := tx.PutRecord(ctx, &metastore.Record{Collection: CollectionServing, ID: id, ProductID: k.product, At: k.hour, Body: body}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// Put them back for the next flush.
		t.mu.Lock()
		for k, c := range pending {
			if cur := t.served[k]; cur != nil {
				cur.OK += c.OK
				cur.Failed += c.Failed
			} else {
				t.served[k] = c
			}
		}
		t.mu.Unlock()
	}
	return err
}

// Budget is an objective's error budget, in percent.
type Budget struct {
	// Total is the share of the window (freshness) or of the events that
	// may be bad: 100 - target.
	Total float64 `json:"total_pct"`
	// Consumed and Remaining are shares of Total; Remaining is negative
	// when the budget is overspent.
	Consumed  float64 `json:"consumed_pct"`
	Remaining float64 `json:"remaining_pct"`
}

// Objective is one SLO of a product over the window.
type Objective struct {
	SLO string `json:"slo"`
	// Threshold is the freshness SLA ("1h"): the age data may reach.
	Threshold string `json:"threshold,omitempty"`
	// Target is the attainment promised, in percent.
	Target float64 `json:"target_pct"`
	// Attainment is what was achieved, in percent; nil without data.
	Attainment *float64 `json:"attainment_pct"`
	// Good and Total count events (availability, accuracy) or seconds
	// (freshness: fresh seconds of the measured seconds).
	Good   float64 `json:"good"`
	Total  float64 `json:"total"`
	Unit   string  `json:"unit"` // seconds, events, checks
	Budget Budget  `json:"error_budget"`
	Status string  `json:"status"`
	// Detail breaks availability down (runs and serving requests).
	Detail map[string]Counts `json:"detail,omitempty"`
	Error  string            `json:"error,omitempty"`
}

// Report is a product's SLOs over the window ending now.
type Report struct {
	ProductID   string      `json:"product_id"`
	Team        string      `json:"team,omitempty"`
	Domain      string      `json:"domain,omitempty"`
	Window      string      `json:"window"`
	From        time.Time   `json:"from"`
	To          time.Time   `json:"to"`
	LastPublish *time.Time  `json:"last_publish,omitempty"`
	DataAge     *float64    `json:"data_age_seconds,omitempty"`
	Stale       bool        `json:"stale"`
	Objectives  []Objective `json:"objectives"`
}

// HasSLA reports whether a product declares any SLO.
func HasSLA(dp *rhizome.DataProduct) bool {
	return dp.SLA.Freshness != "" || dp.SLA.Availability != "" || dp.SLA.Accuracy != ""
}

// FormatWindow writes a window in days when it is whole days ("30d").
func FormatWindow(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// Product computes the report of one product; ENotFound if it does not
// exist.
func (t *Tracker) Product(ctx context.Context, productID string) (*Report, error) {
	o, err := t.opt.Store.Get(ctx, rhizome.KindDataProduct, productID)
	if err != nil {
		return nil, err
	}
	var dp rhizome.DataProduct
	if err := json.Unmarshal(o.Body, &dp); err != nil {
		return nil, rhizome.Wrap(err, "reading product %s", productID)
	}
	return t.report(ctx, &dp, o.CreatedAt), nil
}

// ListOptions filter All.
type ListOptions struct {
	Team, Domain string
}

// All computes the reports of every product with an sla.
func (t *Tracker) All(ctx context.Context, f ListOptions) ([]Report, error) {
	var out []Report
	err := t.eachProduct(ctx, f, func(dp *rhizome.DataProduct, created time.Time) {
		if HasSLA(dp) {
			out = append(out, *t.report(ctx, dp, created))
		}
	})
	return out, err
}

func (t *Tracker) eachProduct(ctx context.Context, f ListOptions, fn func(*rhizome.DataProduct, time.Time)) error {
	after := ""
	for {
		page, err := t.opt.Store.List(ctx, metastore.ListOptions{Kind: rhizome.KindDataProduct, OwnerTeam: f.Team, Domain: f.Domain, After: after, Limit: 1000})
		if err != nil {
			return err
		}
		for _, o := range page.Items {
			var dp rhizome.DataProduct
			if json.Unmarshal(o.Body, &dp) == nil {
				fn(&dp, o.CreatedAt)
			}
		}
		if page.Next == "" {
			return nil
		}
		after = page.Next
	}
}

func (t *Tracker) report(ctx context.Context, dp *rhizome.DataProduct, created time.Time) *Report {
	now := t.opt.Clock.Now().UTC()
	from := now.Add(-t.opt.Window)
	r := &Report{ProductID: dp.ID, Team: dp.OwnerTeam, Domain: dp.Domain, Window: FormatWindow(t.opt.Window), From: from, To: now, Objectives: []Objective{}}

	var pubs []time.Time
	var pubErr error
	if t.opt.Publishes != nil {
		pubs, pubErr = t.opt.Publishes.PublishTimes(ctx, dp.ID, dp.CurrentVersion)
		if rhizome.Code(pubErr) == rhizome.ENotFound {
			pubs, pubErr = nil, nil
		}
	}
	if n := len(pubs); n > 0 {
		last := pubs[n-1]
		age := now.Sub(last).Seconds()
		r.LastPublish, r.DataAge = &last, &age
	}

	if dp.SLA.Freshness != "" {
		o := Objective{SLO: Freshness, Threshold: dp.SLA.Freshness, Target: freshnessTarget(dp), Unit: "seconds"}
		maxAge, err := spec.ParseDuration(dp.SLA.Freshness)
		switch {
		case err != nil:
			o.Error = err.Error()
		case pubErr != nil:
			o.Error = pubErr.Error()
		default:
			fresh, total := FreshTime(pubs, maxAge, from, now)
			o.Good, o.Total = fresh.Seconds(), total.Seconds()
			// Stale: the data is older than the SLA, or a product with a
			// pipeline never published within the SLA of its creation.
			if r.DataAge != nil {
				r.Stale = *r.DataAge > maxAge.Seconds()
			} else {
				r.Stale = dp.Pipeline != nil && !created.IsZero() && now.Sub(created) > maxAge
			}
		}
		t.finish(&o)
		r.Objectives = append(r.Objectives, o)
	}
	if dp.SLA.Availability != "" {
		o := Objective{SLO: Availability, Unit: "events"}
		if target, err := spec.ParsePercent(dp.SLA.Availability); err != nil {
			o.Error = err.Error()
		} else {
			o.Target = target
			runs, served, err := t.availability(ctx, dp.ID, from, now)
			if err != nil {
				o.Error = err.Error()
			}
			o.Detail = map[string]Counts{"runs": runs, "serving": served}
			o.Good = float64(runs.OK + served.OK)
			o.Total = float64(runs.OK + runs.Failed + served.OK + served.Failed)
		}
		t.finish(&o)
		r.Objectives = append(r.Objectives, o)
	}
	if dp.SLA.Accuracy != "" {
		o := Objective{SLO: Accuracy, Unit: "checks"}
		if target, err := spec.ParsePercent(dp.SLA.Accuracy); err != nil {
			o.Error = err.Error()
		} else {
			o.Target = target
			good, total, err := t.accuracy(ctx, dp.ID, from, now)
			if err != nil {
				o.Error = err.Error()
			}
			o.Good, o.Total = good, total
		}
		t.finish(&o)
		r.Objectives = append(r.Objectives, o)
	}
	return r
}

// freshnessTarget is quality_metrics.freshness (a ratio such as 0.99, or
// a percentage such as 99), else DefaultFreshnessTarget.
func freshnessTarget(dp *rhizome.DataProduct) float64 {
	v, ok := dp.QualityMetrics["freshness"]
	switch {
	case !ok || v <= 0 || v > 100:
		return DefaultFreshnessTarget
	case v <= 1:
		return math.Round(v*1e6) / 1e4
	}
	return v
}

// finish computes attainment, budget and status from Good, Total, Target.
func (t *Tracker) finish(o *Objective) {
	if o.Error != "" || o.Total <= 0 {
		o.Status = StatusNoData
		o.Budget = Budget{Total: round(100 - o.Target), Remaining: 100}
		return
	}
	att := 100 * o.Good / o.Total
	o.Attainment = ptr(round(att))
	o.Budget = ErrorBudget(att, o.Target)
	switch {
	case att < o.Target:
		o.Status = StatusBreached
	case o.Budget.Remaining < t.opt.AtRisk:
		o.Status = StatusAtRisk
	default:
		o.Status = StatusOK
	}
}

// ErrorBudget is the budget left by an attainment against a target (both
// in percent): Total = 100 - target; Consumed = (100 - attainment) / Total
// of it. A 100% target has no budget: any miss consumes all of it.
func ErrorBudget(attainment, target float64) Budget {
	total := 100 - target
	miss := 100 - attainment
	var consumed float64
	switch {
	case total <= 0 && miss <= 1e-12:
		consumed = 0
	case total <= 0:
		consumed = 100
	default:
		consumed = 100 * miss / total
	}
	return Budget{Total: round(total), Consumed: round(consumed), Remaining: round(100 - consumed)}
}

// FreshTime measures, within [from, to), the time the data was at most
// maxAge old, given its publish times (sorted, oldest first; earlier
// ones count too). Time before the first publish is not measured (the
// product had no data yet), so total starts there when it lies within the
// window.
func FreshTime(pubs []time.Time, maxAge time.Duration, from, to time.Time) (fresh, total time.Duration) {
	if len(pubs) == 0 || !pubs[0].Before(to) {
		return 0, 0
	}
	start := from
	if pubs[0].After(start) {
		start = pubs[0]
	}
	total = to.Sub(start)
	for i, p := range pubs {
		if !p.Before(to) {
			break
		}
		// p's data stays current until the next publish.
		end := p.Add(maxAge)
		if i+1 < len(pubs) && pubs[i+1].Before(end) {
			end = pubs[i+1]
		}
		a, b := maxTime(p, start), minTime(end, to)
		if b.After(a) {
			fresh += b.Sub(a)
		}
	}
	return fresh, total
}

// availability counts finished runs (succeeded good, failed bad; cancelled
// runs do not count) and serving requests in [from, to).
func (t *Tracker) availability(ctx context.Context, productID string, from, to time.Time) (runs, served Counts, err error) {
	after := ""
	for {
		page, next, err := t.opt.Store.ListRuns(ctx, metastore.RunListOptions{ProductID: productID, After: after, Limit: 1000})
		if err != nil {
			return runs, served, err
		}
		older := false
		for _, r := range page {
			if r.QueuedAt.Before(from.Add(-24 * time.Hour)) {
				older = true // runs are newest first; a day's slack for long runs
			}
			if r.FinishedAt == nil || r.FinishedAt.Before(from) || !r.FinishedAt.Before(to) {
				continue
			}
			switch r.State {
			case rhizome.RunSucceeded:
				runs.OK++
			case rhizome.RunFailed:
				runs.Failed++
			}
		}
		if next == "" || older {
			break
		}
		after = next
	}
	recs, err := t.listAll(ctx, metastore.RecordQuery{Collection: CollectionServing, ProductID: productID, Since: from.Truncate(time.Hour)})
	if err != nil {
		return runs, served, err
	}
	for _, r := range recs {
		var c Counts
		if json.Unmarshal(r.Body, &c) == nil {
			served.OK += c.OK
			served.Failed += c.Failed
		}
	}
	t.mu.Lock()
	for k, c := range t.served {
		if k.product == productID && !k.hour.Before(from.Truncate(time.Hour)) {
			served.OK += c.OK
			served.Failed += c.Failed
		}
	}
	t.mu.Unlock()
	return runs, served, nil
}

// accuracy measures validity checks in [from, to) from the quality gate's
// "quality.run" records: each run weighs in with metrics.accuracy (the mean
// valid share of its validity checks, in percent) times
// metrics.accuracy_checks; a body without metrics counts its "results"
// (passed or not). When the window has no such record, "quality.result"
// records count: State passed is good, failed and error are bad, skipped
// is left out.
func (t *Tracker) accuracy(ctx context.Context, productID string, from, to time.Time) (good, total float64, err error) {
	runs, err := t.listAll(ctx, metastore.RecordQuery{Collection: CollectionQualityRun, ProductID: productID, Since: from, Until: to})
	if err != nil {
		return 0, 0, err
	}
	for _, r := range runs {
		g, n := accuracyOf(r.Body)
		good += g
		total += n
	}
	if total > 0 {
		return good, total, nil
	}
	results, err := t.listAll(ctx, metastore.RecordQuery{Collection: CollectionQualityResult, ProductID: productID, Since: from, Until: to})
	if err != nil {
		return 0, 0, err
	}
	for _, r := range results {
		switch r.State {
		case "passed":
			good++
			total++
		case "failed", "error":
			total++
		}
	}
	return good, total, nil
}

// accuracyOf reads a quality run body: {"metrics": {"accuracy": pct,
// "accuracy_checks": n}}, else {"results": [{"passed": bool}, ...]}.
func accuracyOf(body json.RawMessage) (good, total float64) {
	var b struct {
		Metrics *struct {
			Accuracy       float64 `json:"accuracy"`
			AccuracyChecks int     `json:"accuracy_checks"`
		} `json:"metrics"`
		Results []struct {
			Passed bool   `json:"passed"`
			Error  string `json:"error"`
		} `json:"results"`
	}
	if json.Unmarshal(body, &b) != nil {
		return 0, 0
	}
	if b.Metrics != nil && b.Metrics.AccuracyChecks > 0 {
		n := float64(b.Metrics.AccuracyChecks)
		return b.Metrics.Accuracy / 100 * n, n
	}
	for _, r := range b.Results {
		total++
		if r.Passed && r.Error == "" {
			good++
		}
	}
	return good, total
}

func (t *Tracker) listAll(ctx context.Context, q metastore.RecordQuery) ([]metastore.Record, error) {
	var out []metastore.Record
	q.Limit = 10000
	for {
		recs, err := t.opt.Store.ListRecords(ctx, q)
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
		if len(recs) < q.Limit {
			return out, nil
		}
		q.AfterSeq = recs[len(recs)-1].Seq
	}
}

// Event is a breach or a recovery: the body of an "slo.event" record
// (ProductID, Subject = SLO, State = breached|recovered, At).
type Event struct {
	ProductID  string    `json:"product_id"`
	SLO        string    `json:"slo"`
	State      string    `json:"state"` // breached, recovered
	At         time.Time `json:"at"`
	Target     float64   `json:"target_pct"`
	Attainment float64   `json:"attainment_pct"`
	Window     string    `json:"window"`
}

// Events lists a product's breach events, oldest first (all products when
// productID is "").
func (t *Tracker) Events(ctx context.Context, productID string) ([]Event, error) {
	recs, err := t.listAll(ctx, metastore.RecordQuery{Collection: CollectionEvent, ProductID: productID})
	if err != nil {
		return nil, err
	}
	out := []Event{}
	for _, r := range recs {
		var e Event
		if json.Unmarshal(r.Body, &e) == nil {
			out = append(out, e)
		}
	}
	return out, nil
}

// Tick flushes the serving counts, computes every product's report,
// updates the gauges, raises or clears KindStale per product, and records
// a breach event (raising KindSLOBreach) when an objective's attainment
// falls under its target, and a recovery (clearing it) when it is back.
func (t *Tracker) Tick(ctx context.Context) error {
	if err := t.Flush(ctx); err != nil {
		t.log.Warn("slo: flushing serving counts", "err", err)
	}
	reports, err := t.All(ctx, ListOptions{})
	if err != nil {
		return err
	}
	t.attainment.Reset()
	t.budget.Reset()
	t.target.Reset()
	t.age.Reset()
	now := t.opt.Clock.Now()
	for _, r := range reports {
		if r.DataAge != nil {
			t.age.WithLabelValues(r.ProductID).Set(*r.DataAge)
		}
		for _, o := range r.Objectives {
			t.target.WithLabelValues(r.ProductID, o.SLO).Set(o.Target / 100)
			if o.Attainment != nil {
				t.attainment.WithLabelValues(r.ProductID, o.SLO).Set(*o.Attainment / 100)
				t.budget.WithLabelValues(r.ProductID, o.SLO).Set(o.Budget.Remaining / 100)
			}
			if o.SLO == Freshness && t.opt.Alerts != nil && o.Error == "" {
				t.opt.Alerts.Observe(ctx, staleCondition(r, o, now))
			}
			if o.Status == StatusNoData {
				continue
			}
			if err := t.breach(ctx, r, o, now); err != nil {
				t.log.Warn("slo: recording a breach", "product", r.ProductID, "slo", o.SLO, "err", err)
			}
		}
	}
	return nil
}

func staleCondition(r Report, o Objective, now time.Time) alert.Condition {
	c := alert.Condition{Key: alert.KindStale + "/" + r.ProductID, Kind: alert.KindStale, ProductID: r.ProductID,
		Severity: "warning", Firing: r.Stale, At: now}
	if r.DataAge != nil {
		age := time.Duration(*r.DataAge) * time.Second
		c.Summary = fmt.Sprintf("data is %s old; the freshness SLA is %s", age.Round(time.Second), o.Threshold)
		c.Details = map[string]any{"data_age_seconds": *r.DataAge, "freshness": o.Threshold, "last_publish": r.LastPublish}
	} else {
		c.Summary = fmt.Sprintf("no data published yet; the freshness SLA is %s", o.Threshold)
		c.Details = map[string]any{"freshness": o.Threshold}
	}
	return c
}

// breach records a state change of an objective between breached and not.
// The last event is read in the writing transaction, so two processes
// ticking at once record one change.
func (t *Tracker) breach(ctx context.Context, r Report, o Objective, now time.Time) error {
	is := o.Status == StatusBreached
	state := StatusBreached
	if !is {
		state = "recovered"
	}
	e := Event{ProductID: r.ProductID, SLO: o.SLO, State: state, At: now, Target: o.Target, Window: r.Window}
	if o.Attainment != nil {
		e.Attainment = *o.Attainment
	}
	body, _ := json.Marshal(e)
	changed := false
	err := t.opt.Store.Update(ctx, func(tx metastore.Tx) error {
		changed = false
		last, err := tx.ListRecords(ctx, metastore.RecordQuery{Collection: CollectionEvent, ProductID: r.ProductID, Subject: o.SLO, Desc: true, Limit: 1})
		if err != nil {
			return err
		}
		was := len(last) > 0 && last[0].State == StatusBreached
		if was == is {
			return nil
		}
		changed = true
		return tx.InsertRecord(ctx, &metastore.Record{Collection: CollectionEvent, ID: fmt.Sprintf("%s/%s/%d/%s", r.ProductID, o.SLO, now.UnixNano(), state),
			ProductID: r.ProductID, Subject: o.SLO, State: state, At: now, Body: body})
	})
	if err != nil {
		return err
	}
	key := alert.KindSLOBreach + "/" + r.ProductID + "/" + o.SLO
	if t.opt.Alerts != nil && (changed || is) {
		// While breached, re-assert: a no-op while the alert is active;
		// raises it again if it was lost.
		t.opt.Alerts.Observe(ctx, breachCondition(key, r, o, now, is))
	}
	return nil
}

func breachCondition(key string, r Report, o Objective, now time.Time, firing bool) alert.Condition {
	att := 0.0
	if o.Attainment != nil {
		att = *o.Attainment
	}
	return alert.Condition{Key: key, Kind: alert.KindSLOBreach, ProductID: r.ProductID, Severity: "critical", Firing: firing, At: now,
		Summary: fmt.Sprintf("%s SLO breached: %.3g%% over %s, target %.4g%%", o.SLO, att, r.Window, o.Target),
		Details: map[string]any{"slo": o.SLO, "attainment_pct": att, "target_pct": o.Target, "window": r.Window}}
}

// SortReports orders reports by product id.
func SortReports(rs []Report) {
	sort.Slice(rs, func(i, j int) bool { return strings.Compare(rs[i].ProductID, rs[j].ProductID) < 0 })
}

func round(f float64) float64 { return math.Round(f*1e4) / 1e4 }
func ptr[T any](v T) *T       { return &v }

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
