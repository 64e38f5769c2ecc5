-- 0001: the initial schema. Keys and label columns use the "C" collation
-- so that ids sort bytewise, as in SQLite and Go, whatever the database's
-- locale. Bodies are TEXT, not JSONB, to keep the author's key order.

CREATE TABLE objects (
	kind        TEXT COLLATE "C" NOT NULL,
	id          TEXT COLLATE "C" NOT NULL,
	revision    BIGINT           NOT NULL,
	body        TEXT             NOT NULL,
	labels      TEXT             NOT NULL,
	domain      TEXT COLLATE "C" NOT NULL DEFAULT '',
	owner_team  TEXT COLLATE "C" NOT NULL DEFAULT '',
	sensitivity TEXT COLLATE "C" NOT NULL DEFAULT '',
	created_at  TIMESTAMPTZ      NOT NULL,
	updated_at  TIMESTAMPTZ      NOT NULL,
	updated_by  TEXT             NOT NULL,
	PRIMARY KEY (kind, id)
);
CREATE INDEX objects_by_domain      ON objects (kind, domain, id);
CREATE INDEX objects_by_owner_team  ON objects (kind, owner_team, id);
CREATE INDEX objects_by_sensitivity ON objects (kind, sensitivity, id);

CREATE TABLE object_tags (
	kind TEXT COLLATE "C" NOT NULL,
	tag  TEXT COLLATE "C" NOT NULL,
	id   TEXT COLLATE "C" NOT NULL,
	PRIMARY KEY (kind, tag, id)
);
CREATE INDEX object_tags_by_object ON object_tags (kind, id);

CREATE TABLE object_members (
	kind   TEXT COLLATE "C" NOT NULL,
	member TEXT COLLATE "C" NOT NULL,
	id     TEXT COLLATE "C" NOT NULL,
	PRIMARY KEY (kind, member, id)
);
CREATE INDEX object_members_by_object ON object_members (kind, id);

CREATE TABLE revisions (
	kind     TEXT COLLATE "C" NOT NULL,
	id       TEXT COLLATE "C" NOT NULL,
	revision BIGINT           NOT NULL,
	op       TEXT             NOT NULL CHECK (op IN ('create', 'update', 'delete')),
	body     TEXT,
	actor    TEXT             NOT NULL,
	at       TIMESTAMPTZ      NOT NULL,
	apply_id TEXT             NOT NULL DEFAULT '',
	PRIMARY KEY (kind, id, revision)
);

CREATE TABLE product_versions (
	product_id TEXT COLLATE "C" NOT NULL,
	version    TEXT COLLATE "C" NOT NULL,
	current    BOOLEAN          NOT NULL DEFAULT false,
	revision   BIGINT           NOT NULL DEFAULT 0,
	body       TEXT,
	created_at TIMESTAMPTZ      NOT NULL,
	PRIMARY KEY (product_id, version)
);

CREATE TABLE principals (
	id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	kind       TEXT             NOT NULL,
	admin      BOOLEAN          NOT NULL DEFAULT false,
	created_at TIMESTAMPTZ      NOT NULL
);

CREATE TABLE tokens (
	id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	principal_id TEXT COLLATE "C" NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
	name         TEXT             NOT NULL DEFAULT '',
	hash         TEXT             NOT NULL UNIQUE,
	created_at   TIMESTAMPTZ      NOT NULL,
	expires_at   TIMESTAMPTZ,
	revoked_at   TIMESTAMPTZ
);
CREATE INDEX tokens_by_principal ON tokens (principal_id, created_at, id);
