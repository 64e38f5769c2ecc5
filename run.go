package rhizome

import "time"

// RunState is where a pipeline run is in its life.
type RunState string

const (
	RunQueued    RunState = "queued"
	RunRunning   RunState = "running"
	RunSucceeded RunState = "succeeded"
	RunFailed    RunState = "failed"
	RunCancelled RunState = "cancelled"
)

// Done reports whether the state is final.
func (s RunState) Done() bool {
	return s == RunSucceeded || s == RunFailed || s == RunCancelled
}

// Trigger says what started a run.
type Trigger string

const (
	TriggerManual   Trigger = "manual"
	TriggerSchedule Trigger = "schedule"
	TriggerUpstream Trigger = "upstream" // an input product published
	TriggerBackfill Trigger = "backfill"
	TriggerPush     Trigger = "push" // streaming micro-batch
)

// Run is one execution of a product's pipeline: ingest, transform,
// publish. Its history is kept in the metastore.
type Run struct {
	ID        string   `json:"id"`
	ProductID string   `json:"product_id"`
	Version   string   `json:"version,omitempty"` // product version it publishes
	Trigger   Trigger  `json:"trigger"`
	State     RunState `json:"state"`
	Actor     string   `json:"actor,omitempty"`
	Attempt   int      `json:"attempt"`
	// Backfill range, for TriggerBackfill.
	From *time.Time `json:"from,omitempty"`
	To   *time.Time `json:"to,omitempty"`

	QueuedAt   time.Time  `json:"queued_at"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`

	RowsIn     int64  `json:"rows_in"`
	RowsOut    int64  `json:"rows_out"`
	Bytes      int64  `json:"bytes"`
	DurationMS int64  `json:"duration_ms"`
	SnapshotID int64  `json:"snapshot_id,omitempty"` // Iceberg snapshot it committed
	Error      string `json:"error,omitempty"`
}

// RunLog is one line of a run's log.
type RunLog struct {
	RunID string    `json:"run_id"`
	Seq   int64     `json:"seq"`
	At    time.Time `json:"at"`
	Level string    `json:"level"`
	Msg   string    `json:"msg"`
}
