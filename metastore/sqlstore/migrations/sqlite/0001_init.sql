-- 0001: the initial schema. Times are TEXT in TimeText form (UTC,
-- microseconds, fixed width); booleans are 0/1.

-- The current version of each object. labels is the JSON of
-- rhizome.Labels; domain, owner_team and sensitivity are copied out of it
-- so that a filtered List is one index range scan.
CREATE TABLE objects (
	kind        TEXT    NOT NULL,
	id          TEXT    NOT NULL,
	revision    INTEGER NOT NULL,
	body        TEXT    NOT NULL,
	labels      TEXT    NOT NULL,
	domain      TEXT    NOT NULL DEFAULT '',
	owner_team  TEXT    NOT NULL DEFAULT '',
	sensitivity TEXT    NOT NULL DEFAULT '',
	created_at  TEXT    NOT NULL,
	updated_at  TEXT    NOT NULL,
	updated_by  TEXT    NOT NULL,
	PRIMARY KEY (kind, id)
);
CREATE INDEX objects_by_domain      ON objects (kind, domain, id);
CREATE INDEX objects_by_owner_team  ON objects (kind, owner_team, id);
CREATE INDEX objects_by_sensitivity ON objects (kind, sensitivity, id);

CREATE TABLE object_tags (
	kind TEXT NOT NULL,
	tag  TEXT NOT NULL,
	id   TEXT NOT NULL,
	PRIMARY KEY (kind, tag, id)
) WITHOUT ROWID;
CREATE INDEX object_tags_by_object ON object_tags (kind, id);

-- Team members, from Labels.Members (TeamsOf and List by member).
CREATE TABLE object_members (
	kind   TEXT NOT NULL,
	member TEXT NOT NULL,
	id     TEXT NOT NULL,
	PRIMARY KEY (kind, member, id)
) WITHOUT ROWID;
CREATE INDEX object_members_by_object ON object_members (kind, id);

-- Every write, kept after the object is deleted. body is NULL for a delete.
CREATE TABLE revisions (
	kind     TEXT    NOT NULL,
	id       TEXT    NOT NULL,
	revision INTEGER NOT NULL,
	op       TEXT    NOT NULL CHECK (op IN ('create', 'update', 'delete')),
	body     TEXT,
	actor    TEXT    NOT NULL,
	at       TEXT    NOT NULL,
	apply_id TEXT    NOT NULL DEFAULT '',
	PRIMARY KEY (kind, id, revision)
);

CREATE TABLE product_versions (
	product_id TEXT    NOT NULL,
	version    TEXT    NOT NULL,
	current    INTEGER NOT NULL DEFAULT 0,
	revision   INTEGER NOT NULL DEFAULT 0,
	body       TEXT,
	created_at TEXT    NOT NULL,
	PRIMARY KEY (product_id, version)
);

CREATE TABLE principals (
	id         TEXT    NOT NULL PRIMARY KEY,
	kind       TEXT    NOT NULL,
	admin      INTEGER NOT NULL DEFAULT 0,
	created_at TEXT    NOT NULL
);

CREATE TABLE tokens (
	id           TEXT NOT NULL PRIMARY KEY,
	principal_id TEXT NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
	name         TEXT NOT NULL DEFAULT '',
	hash         TEXT NOT NULL UNIQUE,
	created_at   TEXT NOT NULL,
	expires_at   TEXT,
	revoked_at   TEXT
);
CREATE INDEX tokens_by_principal ON tokens (principal_id, created_at, id);
