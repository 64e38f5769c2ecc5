-- 0003: run history. A run is one execution of a product's pipeline; jobs
-- owns its state machine, this schema only keeps it. Times are TEXT in
-- TimeText form like everywhere else.
CREATE TABLE runs (
	id           TEXT    NOT NULL PRIMARY KEY,
	product_id   TEXT    NOT NULL,
	version      TEXT    NOT NULL DEFAULT '',
	run_trigger  TEXT    NOT NULL,
	state        TEXT    NOT NULL,
	actor        TEXT    NOT NULL DEFAULT '',
	attempt      INTEGER NOT NULL DEFAULT 0,
	range_from   TEXT,
	range_to     TEXT,
	queued_at    TEXT    NOT NULL,
	started_at   TEXT,
	finished_at  TEXT,
	rows_in      INTEGER NOT NULL DEFAULT 0,
	rows_out     INTEGER NOT NULL DEFAULT 0,
	bytes        INTEGER NOT NULL DEFAULT 0,
	duration_ms  INTEGER NOT NULL DEFAULT 0,
	snapshot_id  INTEGER NOT NULL DEFAULT 0,
	error        TEXT    NOT NULL DEFAULT ''
);
-- ListRuns reads newest first, optionally of one product or in one state.
CREATE INDEX runs_by_time    ON runs (queued_at, id);
CREATE INDEX runs_by_product ON runs (product_id, queued_at, id);
CREATE INDEX runs_by_state   ON runs (state, product_id, queued_at, id);

CREATE TABLE run_logs (
	run_id TEXT    NOT NULL,
	seq    INTEGER NOT NULL,
	at     TEXT    NOT NULL,
	level  TEXT    NOT NULL,
	msg    TEXT    NOT NULL,
	PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;

-- OpenLineage RunEvents as the pipeline emitted them, in arrival order.
CREATE TABLE lineage_events (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	run_id     TEXT NOT NULL,
	event_type TEXT NOT NULL,
	at         TEXT NOT NULL,
	body       TEXT NOT NULL
);
CREATE INDEX lineage_events_by_run ON lineage_events (run_id, seq);
