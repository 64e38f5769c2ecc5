package qreport

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/quality"
)

// Collections.
const (
	CollectionResult = "quality.result"
	CollectionRun    = "quality.run"
)

// OnDemandPrefix starts the id of an on-demand check run.
const OnDemandPrefix = "check-"

// Result states.
const (
	StatePassed  = "passed"
	StateFailed  = "failed"
	StateError   = "error"
	StateSkipped = "skipped"
)

// ResultBody is the body of a "quality.result" record.
type ResultBody struct {
	RunID      string         `json:"run_id"`
	Version    string         `json:"version"`
	SnapshotID int64          `json:"snapshot_id"` // 0 when quarantined; on demand, the checked one
	Gate       string         `json:"gate"`
	Result     quality.Result `json:"result"`
}

// RunBody is the body of a "quality.run" record: one per gated run or
// on-demand check. Other packages read it (the accuracy SLO): its fields
// are a stable contract.
type RunBody struct {
	RunID      string `json:"run_id"`
	ProductID  string `json:"product_id"`
	Version    string `json:"version"`
	SnapshotID int64  `json:"snapshot_id"`
	// Gate is publish, publish-with-warnings or quarantine.
	Gate string `json:"gate"`
	// OnDemand is true for `rhizome check` runs against the current
	// snapshot (they never publish or quarantine anything).
	OnDemand bool `json:"on_demand,omitempty"`
	// Checks counts every check; Passed those that passed; Failures the
	// error-severity failures, Warnings the warn-severity ones; Errors the
	// checks that could not be evaluated (counted in Failures or
	// Warnings by their severity too).
	Checks   int `json:"checks"`
	Passed   int `json:"passed"`
	Failures int `json:"failures"`
	Warnings int `json:"warnings"`
	Errors   int `json:"errors"`
	// Rows is the number of rows checked (-1: unknown).
	Rows int64 `json:"rows"`
	// Metrics are the run's quality.Metrics (completeness and accuracy in
	// percent, freshness as the age of the last publish at check time).
	// The accuracy SLO reads metrics.accuracy.
	Metrics quality.QualityMetrics `json:"metrics"`
	// Quarantine is the file that keeps a quarantined snapshot's data.
	Quarantine string `json:"quarantine,omitempty"`
	// Failed names the checks that failed.
	Failed     []string `json:"failed,omitempty"`
	DurationMS int64    `json:"duration_ms"`
}

// PassRate is the share of checks that passed in this run (1 when there
// were none).
func (b RunBody) PassRate() float64 {
	if b.Checks == 0 {
		return 1
	}
	return float64(b.Passed) / float64(b.Checks)
}

// Record is what Save writes for one run.
type Record struct {
	RunID, ProductID, Version string
	SnapshotID                int64
	OnDemand                  bool
	At                        time.Time
	Report                    *quality.Report
	Rows                      int64
	// LastPublished is the publish the run's freshness is measured from:
	// the run's own for a publish, the current snapshot's otherwise.
	LastPublished time.Time
	Quarantine    string
}

// StateOf is a result's record state.
func StateOf(r quality.Result) string {
	switch {
	case r.Error != "":
		return StateError
	case r.Note != "" && r.Metric == 0 && r.Passed:
		return StateSkipped
	case r.Passed:
		return StatePassed
	}
	return StateFailed
}

// Summary is the RunBody of a report.
func Summary(rec Record) RunBody {
	rep := rec.Report
	b := RunBody{RunID: rec.RunID, ProductID: rec.ProductID, Version: rec.Version, SnapshotID: rec.SnapshotID,
		Gate: rep.Gate(), OnDemand: rec.OnDemand, Checks: len(rep.Results), Failures: rep.Failures, Warnings: rep.Warnings,
		Rows: rec.Rows, Metrics: quality.Metrics(rep, rec.LastPublished, rec.At), Quarantine: rec.Quarantine, DurationMS: rep.Duration.Milliseconds()}
	for _, r := range rep.Results {
		if r.Passed {
			b.Passed++
		} else {
			b.Failed = append(b.Failed, r.Check.Name)
		}
		if r.Error != "" {
			b.Errors++
		}
	}
	return b
}

// Save stores a run's results: one "quality.result" record per check (ID
// "<run>/<check>") and one "quality.run" record (ID the run id), in one
// transaction.
func Save(ctx context.Context, store metastore.Store, rec Record) error {
	gate := rec.Report.Gate()
	sum, err := json.Marshal(Summary(rec))
	if err != nil {
		return rhizome.Wrap(err, "encoding the quality summary")
	}
	return store.Update(ctx, func(tx metastore.Tx) error {
		for _, r := range rec.Report.Results {
			body, err := json.Marshal(ResultBody{RunID: rec.RunID, Version: rec.Version, SnapshotID: rec.SnapshotID, Gate: gate, Result: r})
			if err != nil {
				return rhizome.Wrap(err, "encoding the result of %s", r.Check.Name)
			}
			if err := tx.PutRecord(ctx, &metastore.Record{Collection: CollectionResult, ID: rec.RunID + "/" + r.Check.Name,
				ProductID: rec.ProductID, Subject: r.Check.Name, State: StateOf(r), At: rec.At, Body: body}); err != nil {
				return err
			}
		}
		return tx.PutRecord(ctx, &metastore.Record{Collection: CollectionRun, ID: rec.RunID, ProductID: rec.ProductID,
			State: gate, At: rec.At, Body: sum})
	})
}

// Point is one past metric of a check.
type Point struct {
	At     time.Time `json:"at"`
	RunID  string    `json:"run_id"`
	Metric float64   `json:"metric"`
	Passed bool      `json:"passed"`
}

// results reads a product's stored results of one check (version ""
// = all), newest first, at most n.
func results(ctx context.Context, store metastore.Reader, productID, check, version string, n int) ([]ResultBody, []time.Time, error) {
	return newest(ctx, store, metastore.RecordQuery{Collection: CollectionResult, ProductID: productID, Subject: check}, n,
		func(b ResultBody) bool { return version == "" || b.Version == version })
}

// newest pages through the records q selects, newest first, and returns
// the first n bodies that decode and that keep accepts, with their times.
func newest[B any](ctx context.Context, store metastore.Reader, q metastore.RecordQuery, n int, keep func(B) bool) ([]B, []time.Time, error) {
	const page = 200
	var out []B
	var at []time.Time
	q.Desc, q.Limit = true, page
	for len(out) < n {
		recs, err := store.ListRecords(ctx, q)
		if err != nil {
			return nil, nil, err
		}
		for _, r := range recs {
			var b B
			if json.Unmarshal(r.Body, &b) != nil || !keep(b) {
				continue
			}
			out = append(out, b)
			at = append(at, r.At)
			if len(out) == n {
				break
			}
		}
		if len(recs) < page {
			break
		}
		q.AfterSeq = recs[len(recs)-1].Seq
	}
	return out, at, nil
}

// History is the metric history of each check, oldest first, from the last
// n evaluated results of pipeline runs (errors, non-finite metrics and
// on-demand checks, which measure a snapshot again, left out): what
// quality.RunOptions.History wants.
func History(ctx context.Context, store metastore.Reader, productID string, checks []quality.Check, n int) (map[string][]float64, error) {
	h := map[string][]float64{}
	for _, c := range checks {
		rs, _, err := results(ctx, store, productID, c.Name, "", n)
		if err != nil {
			return nil, err
		}
		var vals []float64
		for i := len(rs) - 1; i >= 0; i-- {
			m := rs[i].Result.Metric
			if rs[i].Result.Error == "" && !math.IsNaN(m) && !math.IsInf(m, 0) && !strings.HasPrefix(rs[i].RunID, OnDemandPrefix) {
				vals = append(vals, m)
			}
		}
		if len(vals) > 0 {
			h[c.Name] = vals
		}
	}
	return h, nil
}

// Runs reads a product's "quality.run" records, newest first, at most n
// (version "" = all versions).
func Runs(ctx context.Context, store metastore.Reader, productID, version string, n int) ([]RunBody, []time.Time, error) {
	return newest(ctx, store, metastore.RecordQuery{Collection: CollectionRun, ProductID: productID}, n,
		func(b RunBody) bool { return version == "" || b.Version == version })
}
