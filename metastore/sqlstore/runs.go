package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/metastore"
)

// runQueries are the statements of run history (migration 0003).
type runQueries struct {
	upsertRun     string
	getRun        string
	appendLog     string
	appendLogAuto string
	runLogs       string
	putLineage    string
	lineageOfRun  string
}

const runCols = `id, product_id, version, run_trigger, state, actor, attempt, range_from, range_to,
	queued_at, started_at, finished_at, rows_in, rows_out, bytes, duration_ms, snapshot_id, error`

func newRunQueries(d *Dialect) runQueries {
	r := d.rebind
	return runQueries{
		upsertRun: r(`INSERT INTO runs (` + runCols + `)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
	product_id = excluded.product_id, version = excluded.version, run_trigger = excluded.run_trigger,
	state = excluded.state, actor = excluded.actor, attempt = excluded.attempt,
	range_from = excluded.range_from, range_to = excluded.range_to, queued_at = excluded.queued_at,
	started_at = excluded.started_at, finished_at = excluded.finished_at,
	rows_in = excluded.rows_in, rows_out = excluded.rows_out, bytes = excluded.bytes,
	duration_ms = excluded.duration_ms, snapshot_id = excluded.snapshot_id, error = excluded.error`),
		getRun: r(`SELECT ` + runCols + ` FROM runs WHERE id = ?`),
		// DO NOTHING so that a taken seq is reported as a conflict without
		// aborting a Postgres transaction.
		appendLog: r(`INSERT INTO run_logs (run_id, seq, at, level, msg) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (run_id, seq) DO NOTHING RETURNING seq`),
		appendLogAuto: r(`INSERT INTO run_logs (run_id, seq, at, level, msg)
VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM run_logs WHERE run_id = ?), ?, ?, ?)
ON CONFLICT (run_id, seq) DO NOTHING RETURNING seq`),
		runLogs:      r(`SELECT run_id, seq, at, level, msg FROM run_logs WHERE run_id = ? AND seq > ? ORDER BY seq`),
		putLineage:   r(`INSERT INTO lineage_events (run_id, event_type, at, body) VALUES (?, ?, ?, ?)`),
		lineageOfRun: r(`SELECT body FROM lineage_events WHERE run_id = ? ORDER BY seq`),
	}
}

// runListQuery builds ListRuns' statement: newest first by (queued_at, id),
// the cursor being the last id of the previous page.
func runListQuery(opt metastore.RunListOptions, limit int) (string, []any) {
	q := `SELECT ` + runCols + ` FROM runs r WHERE 1 = 1`
	var args []any
	if opt.ProductID != "" {
		q += ` AND product_id = ?`
		args = append(args, opt.ProductID)
	}
	if opt.State != "" {
		q += ` AND state = ?`
		args = append(args, string(opt.State))
	}
	if opt.After != "" {
		q += ` AND (queued_at < (SELECT c.queued_at FROM runs c WHERE c.id = ?)
	OR (queued_at = (SELECT c.queued_at FROM runs c WHERE c.id = ?) AND id < ?))`
		args = append(args, opt.After, opt.After, opt.After)
	}
	q += ` ORDER BY queued_at DESC, id DESC LIMIT ?`
	return q, append(args, limit)
}

func validRunState(s rhizome.RunState) bool {
	switch s {
	case rhizome.RunQueued, rhizome.RunRunning, rhizome.RunSucceeded, rhizome.RunFailed, rhizome.RunCancelled:
		return true
	}
	return false
}

func (rd *reader) GetRun(ctx context.Context, id string) (*rhizome.Run, error) {
	rows, err := rd.r.query(ctx, rd.s.rq.getRun, id)
	if err != nil {
		return nil, rd.s.wrap(err, "metastore: get run %q", id)
	}
	runs, err := scanRuns(rows)
	if err != nil {
		return nil, rd.s.wrap(err, "metastore: get run %q", id)
	}
	if len(runs) == 0 {
		return nil, rhizome.Errorf(rhizome.ENotFound, "run %q not found", id)
	}
	return &runs[0], nil
}

func (rd *reader) ListRuns(ctx context.Context, opt metastore.RunListOptions) ([]rhizome.Run, string, error) {
	limit := opt.Limit
	switch {
	case limit < 0:
		return nil, "", rhizome.Errorf(rhizome.EInvalid, "limit %d is negative", limit).WithHint("use 1..%d, or 0 for %d", MaxLimit, DefaultLimit)
	case limit == 0:
		limit = DefaultLimit
	case limit > MaxLimit:
		limit = MaxLimit
	}
	if opt.State != "" && !validRunState(opt.State) {
		return nil, "", rhizome.Errorf(rhizome.EInvalid, "run state %q is not one of queued, running, succeeded, failed, cancelled", opt.State)
	}
	q, args := runListQuery(opt, limit+1)
	rows, err := rd.r.query(ctx, rd.s.d.rebind(q), args...)
	if err != nil {
		return nil, "", rd.s.wrap(err, "metastore: list runs")
	}
	runs, err := scanRuns(rows)
	if err != nil {
		return nil, "", rd.s.wrap(err, "metastore: list runs")
	}
	next := ""
	if len(runs) > limit {
		runs = runs[:limit]
		next = runs[limit-1].ID
	}
	return runs, next, nil
}

func scanRuns(rows *sql.Rows) ([]rhizome.Run, error) {
	defer rows.Close()
	runs := []rhizome.Run{}
	for rows.Next() {
		var (
			r              rhizome.Run
			trigger, state string
		)
		if err := rows.Scan(&r.ID, &r.ProductID, &r.Version, &trigger, &state, &r.Actor, &r.Attempt,
			nullTimeScan{&r.From}, nullTimeScan{&r.To}, timeScan{&r.QueuedAt}, nullTimeScan{&r.StartedAt},
			nullTimeScan{&r.FinishedAt}, &r.RowsIn, &r.RowsOut, &r.Bytes, &r.DurationMS, &r.SnapshotID, &r.Error); err != nil {
			return nil, err
		}
		r.Trigger, r.State = rhizome.Trigger(trigger), rhizome.RunState(state)
		runs = append(runs, r)
	}
	return runs, rows.Err()
}

func (rd *reader) RunLogs(ctx context.Context, runID string, afterSeq int64) ([]rhizome.RunLog, error) {
	rows, err := rd.r.query(ctx, rd.s.rq.runLogs, runID, afterSeq)
	if err != nil {
		return nil, rd.s.wrap(err, "metastore: logs of run %q", runID)
	}
	defer rows.Close()
	logs := []rhizome.RunLog{}
	for rows.Next() {
		var l rhizome.RunLog
		if err := rows.Scan(&l.RunID, &l.Seq, timeScan{&l.At}, &l.Level, &l.Msg); err != nil {
			return nil, rd.s.wrap(err, "metastore: logs of run %q", runID)
		}
		logs = append(logs, l)
	}
	return logs, rd.s.wrap(rows.Err(), "metastore: logs of run %q", runID)
}

func (rd *reader) LineageEvents(ctx context.Context, runID string) ([]json.RawMessage, error) {
	rows, err := rd.r.query(ctx, rd.s.rq.lineageOfRun, runID)
	if err != nil {
		return nil, rd.s.wrap(err, "metastore: lineage events of run %q", runID)
	}
	defer rows.Close()
	evs := []json.RawMessage{}
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return nil, rd.s.wrap(err, "metastore: lineage events of run %q", runID)
		}
		evs = append(evs, json.RawMessage(body))
	}
	return evs, rd.s.wrap(rows.Err(), "metastore: lineage events of run %q", runID)
}

func (t *tx) PutRun(ctx context.Context, r *rhizome.Run) error {
	switch {
	case r == nil || r.ID == "" || r.ProductID == "":
		return rhizome.Errorf(rhizome.EInvalid, "metastore: a run needs an id and a product id")
	case !validRunState(r.State):
		return rhizome.Errorf(rhizome.EInvalid, "run %q: state %q is not one of queued, running, succeeded, failed, cancelled", r.ID, r.State)
	case r.Trigger == "":
		return rhizome.Errorf(rhizome.EInvalid, "run %q has no trigger", r.ID)
	}
	if r.QueuedAt.IsZero() {
		r.QueuedAt = t.s.now()
	}
	r.QueuedAt = normTime(r.QueuedAt)
	r.From, r.To, r.StartedAt, r.FinishedAt = cutTime(r.From), cutTime(r.To), cutTime(r.StartedAt), cutTime(r.FinishedAt)
	_, err := t.r.exec(ctx, t.s.rq.upsertRun, r.ID, r.ProductID, r.Version, string(r.Trigger), string(r.State),
		r.Actor, r.Attempt, t.nullTime(r.From), t.nullTime(r.To), t.s.d.BindTime(r.QueuedAt),
		t.nullTime(r.StartedAt), t.nullTime(r.FinishedAt), r.RowsIn, r.RowsOut, r.Bytes, r.DurationMS,
		r.SnapshotID, r.Error)
	return t.s.wrap(err, "metastore: put run %q", r.ID)
}

func (t *tx) AppendRunLog(ctx context.Context, l rhizome.RunLog) error {
	if l.RunID == "" || l.Seq < 0 {
		return rhizome.Errorf(rhizome.EInvalid, "metastore: a run log line needs a run id and a seq >= 0")
	}
	at := t.s.now()
	if !l.At.IsZero() {
		at = normTime(l.At)
	}
	var (
		seq int64
		err error
	)
	if l.Seq == 0 {
		err = t.r.scanRow(ctx, t.s.rq.appendLogAuto, []any{l.RunID, l.RunID, t.s.d.BindTime(at), l.Level, l.Msg}, &seq)
	} else {
		err = t.r.scanRow(ctx, t.s.rq.appendLog, []any{l.RunID, l.Seq, t.s.d.BindTime(at), l.Level, l.Msg}, &seq)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return rhizome.Errorf(rhizome.EConflict, "run %q already has log line %d", l.RunID, l.Seq)
	}
	return t.s.wrap(err, "metastore: append to the log of run %q", l.RunID)
}

func (t *tx) PutLineageEvent(ctx context.Context, runID, eventType string, at time.Time, body json.RawMessage) error {
	if runID == "" || eventType == "" {
		return rhizome.Errorf(rhizome.EInvalid, "metastore: a lineage event needs a run id and an event type")
	}
	if !json.Valid(body) {
		return rhizome.Errorf(rhizome.EInvalid, "metastore: lineage event of run %q: the body is not JSON", runID)
	}
	if at.IsZero() {
		at = t.s.now()
	}
	_, err := t.r.exec(ctx, t.s.rq.putLineage, runID, eventType, t.s.d.BindTime(normTime(at)), string(body))
	return t.s.wrap(err, "metastore: put lineage event of run %q", runID)
}
