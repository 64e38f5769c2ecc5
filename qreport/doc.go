// Package qreport keeps quality results and builds get_quality_report():
// the suite of a product (its manifest's `quality`, its infrastructure's
// spec.quality.checks and its contract's ODCS quality rules, see Gather),
// the results of every gated run or on-demand check as metastore records,
// metric history for anomaly checks, and the report served at
// GET /api/v1/products/{id}/quality (latest result per check with history
// and trend, the guide's quality_metrics against the product's targets and
// SLA).
//
// The check types, their execution, quality.Metrics and JUnit XML are
// package quality's; the gate itself (what happens to a snapshot) is the
// pipeline's. Completeness and accuracy are quality.Metrics of the latest
// run; freshness as the guide's score (a share of time within
// sla.freshness) needs publish history, so FreshnessScore computes it here.
// The definitions are DefCompleteness, DefFreshness and DefAccuracy
// (docs/quality.md).
//
// Records (metastore collections):
//
//   - "quality.result": ID "<run id>/<check name>", ProductID, Subject the
//     check name, State passed|failed|error|skipped, At the check time,
//     Body ResultBody {run_id, version, snapshot_id (0 if quarantined or
//     checked snapshot on demand), gate, result (quality.Result)}.
//   - "quality.run": ID the run id (on-demand checks: "check-..."),
//     ProductID, State the gate (publish|publish-with-warnings|quarantine),
//     At the check time, Body RunBody {run_id, product_id, version,
//     snapshot_id, gate, on_demand, checks, passed, failures, warnings,
//     errors, rows, metrics (quality.QualityMetrics: completeness and
//     accuracy in percent, freshness_seconds), quarantine, failed,
//     duration_ms}. The accuracy SLO reads metrics.accuracy from here.
package qreport
