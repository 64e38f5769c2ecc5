// Package alert owns alerting: conditions raised by the quality gate, the
// SLO tracker, the freshness watcher and the run queue go to the owning
// team's communication_channel (generic JSON webhook, Slack-compatible
// webhook, SMTP email); grouped, de-duplicated, resolved when the condition
// clears, escalated along the team's escalation_path when unacknowledged.
// Alert state and history are metastore records (collections "alert" and
// "alert.event"); Manager implements Observer. See docs/monitoring.md.
//
// We wrote this rather than run Prometheus Alertmanager: routing follows
// the mesh's own manifests (a product's owner_team, the team's
// communication_channel and escalation_path), acknowledgement and history
// are part of our API and audit trail, and the state must live in the one
// metastore that several `rhizome up` processes share. The semantics
// (group wait, repeat interval, resolved notices) follow Alertmanager's.
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

// Alert states (the "alert" record's State).
const (
	StateFiring       = "firing"
	StateAcknowledged = "acknowledged"
	StateResolved     = "resolved"
)

// Event types (the "alert.event" record's State).
const (
	EventFire     = "fire"
	EventResolve  = "resolve"
	EventNotify   = "notify"
	EventEscalate = "escalate"
	EventAck      = "ack"
)

// Notices: what a notification says about its alerts.
const (
	NoticeFiring     = "firing"
	NoticeRepeat     = "repeat"
	NoticeEscalation = "escalation"
	NoticeResolved   = "resolved"
)

// Collections the package owns.
const (
	CollectionAlert = "alert"
	CollectionEvent = "alert.event"
)

// Alert is the state of one condition Key: the body of its "alert" record
// (ID = Key, ProductID, Subject = Team, State, At = last state change).
type Alert struct {
	Key       string         `json:"key"`
	Kind      string         `json:"kind"`
	ProductID string         `json:"product_id,omitempty"`
	Team      string         `json:"team,omitempty"`
	Severity  string         `json:"severity,omitempty"`
	Summary   string         `json:"summary"`
	Details   map[string]any `json:"details,omitempty"`
	State     string         `json:"state"`

	FiredAt    time.Time  `json:"fired_at"`
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`

	// Notifications counts the notices sent in this episode (firing,
	// repeats, escalations, resolved).
	Notifications   int        `json:"notifications"`
	FirstNotifiedAt *time.Time `json:"first_notified_at,omitempty"`
	LastNotifiedAt  *time.Time `json:"last_notified_at,omitempty"`
	ResolveNotified bool       `json:"resolve_notified,omitempty"`

	// EscalationLevel is how many entries of the team's escalation_path
	// were notified; EscalatedTo lists them.
	EscalationLevel int        `json:"escalation_level"`
	EscalatedAt     *time.Time `json:"escalated_at,omitempty"`
	EscalatedTo     []string   `json:"escalated_to,omitempty"`

	AckBy   string     `json:"ack_by,omitempty"`
	AckAt   *time.Time `json:"ack_at,omitempty"`
	AckNote string     `json:"ack_note,omitempty"`
}

// Event is one entry of an alert's history: the body of an "alert.event"
// record (ProductID, Subject = Key, State = Type, At).
type Event struct {
	ID        string    `json:"id"`
	Key       string    `json:"key"`
	Type      string    `json:"type"` // fire, resolve, notify, escalate, ack
	At        time.Time `json:"at"`
	ProductID string    `json:"product_id,omitempty"`
	Team      string    `json:"team,omitempty"`
	// Notify and escalate: the notice, where it went and how it went.
	Notice      string `json:"notice,omitempty"`
	Channel     string `json:"channel,omitempty"`
	ChannelType string `json:"channel_type,omitempty"`
	Outcome     string `json:"outcome,omitempty"` // delivered, failed, undeliverable
	Attempts    int    `json:"attempts,omitempty"`
	Error       string `json:"error,omitempty"`
	Level       int    `json:"level,omitempty"`
	// Ack: who and why.
	By   string `json:"by,omitempty"`
	Note string `json:"note,omitempty"`
}
