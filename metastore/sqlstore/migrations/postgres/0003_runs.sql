-- 0003: run history. A run is one execution of a product's pipeline; jobs
-- owns its state machine, this schema only keeps it.
CREATE TABLE runs (
	id           TEXT        NOT NULL PRIMARY KEY,
	product_id   TEXT        NOT NULL,
	version      TEXT        NOT NULL DEFAULT '',
	run_trigger  TEXT        NOT NULL,
	state        TEXT        NOT NULL,
	actor        TEXT        NOT NULL DEFAULT '',
	attempt      INTEGER     NOT NULL DEFAULT 0,
	range_from   TIMESTAMPTZ,
	range_to     TIMESTAMPTZ,
	queued_at    TIMESTAMPTZ NOT NULL,
	started_at   TIMESTAMPTZ,
	finished_at  TIMESTAMPTZ,
	rows_in      BIGINT      NOT NULL DEFAULT 0,
	rows_out     BIGINT      NOT NULL DEFAULT 0,
	bytes        BIGINT      NOT NULL DEFAULT 0,
	duration_ms  BIGINT      NOT NULL DEFAULT 0,
	snapshot_id  BIGINT      NOT NULL DEFAULT 0,
	error        TEXT        NOT NULL DEFAULT ''
);
-- ListRuns reads newest first, optionally of one product or in one state.
CREATE INDEX runs_by_time    ON runs (queued_at, id);
CREATE INDEX runs_by_product ON runs (product_id, queued_at, id);
CREATE INDEX runs_by_state   ON runs (state, product_id, queued_at, id);

CREATE TABLE run_logs (
	run_id TEXT        NOT NULL,
	seq    BIGINT      NOT NULL,
	at     TIMESTAMPTZ NOT NULL,
	level  TEXT        NOT NULL,
	msg    TEXT        NOT NULL,
	PRIMARY KEY (run_id, seq)
);

-- OpenLineage RunEvents as the pipeline emitted them, in arrival order.
-- The body is TEXT, not JSONB, so it is returned byte for byte.
CREATE TABLE lineage_events (
	seq        BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	run_id     TEXT        NOT NULL,
	event_type TEXT        NOT NULL,
	at         TIMESTAMPTZ NOT NULL,
	body       TEXT        NOT NULL
);
CREATE INDEX lineage_events_by_run ON lineage_events (run_id, seq);
