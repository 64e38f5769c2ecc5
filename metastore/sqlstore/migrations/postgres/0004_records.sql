-- 0004: records, the platform's collections besides manifests and runs
-- (quality results, alerts, SLO events, access grants and requests, audit
-- entries). A put replaces the row, so seq is fresh on every write.
CREATE TABLE records (
	seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	collection TEXT        NOT NULL,
	id         TEXT        NOT NULL,
	product_id TEXT        NOT NULL DEFAULT '',
	subject    TEXT        NOT NULL DEFAULT '',
	state      TEXT        NOT NULL DEFAULT '',
	at         TIMESTAMPTZ NOT NULL,
	body       TEXT        NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX records_by_id   ON records (collection, id);
CREATE INDEX records_by_product     ON records (collection, product_id, seq);
CREATE INDEX records_by_subject     ON records (collection, subject, seq);
CREATE INDEX records_by_state       ON records (collection, state, seq);
CREATE INDEX records_by_time        ON records (collection, at);
CREATE INDEX records_by_seq         ON records (collection, seq);
