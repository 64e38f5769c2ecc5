// Package alert owns alerting: conditions raised by the quality gate, the
// SLO tracker, the freshness watcher and the run queue go to the owning
// team's communication_channel (generic JSON webhook, Slack-compatible
// webhook, SMTP email); grouped, de-duplicated, resolved when the condition
// clears, escalated along the team's escalation_path when unacknowledged.
// Alert state and history are metastore records (collection "alert").
package alert

import (
	"context"
	"time"
)

// Kinds of condition.
const (
	KindCheckFailed = "check_failed"
	KindQuarantined = "quarantined"
	KindSLOBreach   = "slo_breach"
	KindStale       = "stale"
	KindRunFailed   = "run_failed"
)

// Condition is a state a producer observed: Firing true raises (or keeps)
// an alert, false resolves it. Key identifies the condition for
// de-duplication: the same Key firing twice is one alert.
type Condition struct {
	Key       string         `json:"key"` // e.g. "check_failed/dp.sales.orders/null_pct_customer_id"
	Kind      string         `json:"kind"`
	ProductID string         `json:"product_id"`
	Severity  string         `json:"severity"` // warning | critical
	Summary   string         `json:"summary"`
	Details   map[string]any `json:"details,omitempty"`
	Firing    bool           `json:"firing"`
	At        time.Time      `json:"at"`
}

// Observer takes conditions; *Manager implements it. Observe must be cheap
// and must not fail the caller's work: delivery happens asynchronously.
type Observer interface {
	Observe(ctx context.Context, c Condition)
}
