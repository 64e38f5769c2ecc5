package sqlstore

import "strings"

// queries are the fixed statements, rebound once for the dialect. List
// builds its own, since its shape depends on the filters.
type queries struct {
	getObject      string
	lockObject     string
	insertObject   string
	updateObject   string
	deleteObject   string
	insertRevision string
	history        string
	insertTags     setInsert
	deleteTags     string
	insertMembers  setInsert
	deleteMembers  string
	teamsOf        string

	upsertVersion   string
	uncurrent       string
	versions        string
	version         string
	upsertPrincipal string
	getPrincipal    string
	listPrincipals  string
	principalExists string
	insertToken     string
	tokenExists     string
	revokeToken     string
	tokenByHash     string
	tokensOf        string
	allTokens       string
}

const objectCols = `o.kind, o.id, o.revision, o.body, o.labels, o.created_at, o.updated_at, o.updated_by`

const tokenCols = `id, principal_id, name, hash, created_at, expires_at, revoked_at`

func newQueries(d *Dialect) queries {
	r := d.rebind
	return queries{
		getObject:  r(`SELECT ` + objectCols + ` FROM objects o WHERE o.kind = ? AND o.id = ?`),
		lockObject: r(`SELECT revision, created_at, labels FROM objects WHERE kind = ? AND id = ?` + d.ForUpdate),
		// A create takes the next revision after the last one ever written
		// (history outlives the object, so a re-create continues the
		// numbers), and does nothing if the object exists: one statement,
		// no read first, and a lost race is a conflict that does not abort
		// a Postgres transaction.
		insertObject: r(`INSERT INTO objects (kind, id, revision, body, labels, domain, owner_team, sensitivity, created_at, updated_at, updated_by)
VALUES (?, ?, (SELECT COALESCE(MAX(revision), 0) + 1 FROM revisions WHERE kind = ? AND id = ?), ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (kind, id) DO NOTHING
RETURNING revision`),
		updateObject: r(`UPDATE objects SET revision = ?, body = ?, labels = ?, domain = ?, owner_team = ?, sensitivity = ?, updated_at = ?, updated_by = ?
WHERE kind = ? AND id = ?`),
		deleteObject:   r(`DELETE FROM objects WHERE kind = ? AND id = ?`),
		insertRevision: r(`INSERT INTO revisions (kind, id, revision, op, body, actor, at, apply_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		history:        r(`SELECT kind, id, revision, op, body, actor, at, apply_id FROM revisions WHERE kind = ? AND id = ? ORDER BY revision`),
		insertTags:     newSetInsert(d, "object_tags", "tag"),
		deleteTags:     r(`DELETE FROM object_tags WHERE kind = ? AND id = ?`),
		insertMembers:  newSetInsert(d, "object_members", "member"),
		deleteMembers:  r(`DELETE FROM object_members WHERE kind = ? AND id = ?`),
		teamsOf:        r(`SELECT id FROM object_members WHERE kind = ? AND member = ? ORDER BY id`),

		// A zero revision or an empty body does not overwrite what an
		// earlier declaration stored (see metastore.Tx.PutVersion).
		upsertVersion: r(`INSERT INTO product_versions (product_id, version, current, revision, body, created_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (product_id, version) DO UPDATE SET
	current = excluded.current,
	revision = CASE WHEN excluded.revision = 0 THEN product_versions.revision ELSE excluded.revision END,
	body = COALESCE(excluded.body, product_versions.body)
RETURNING revision, body, created_at`),
		uncurrent: r(`UPDATE product_versions SET current = ? WHERE product_id = ? AND version <> ? AND current = ?`),
		versions:  r(`SELECT product_id, version, current, revision, body, created_at FROM product_versions WHERE product_id = ? ORDER BY created_at DESC, version DESC`),
		version:   r(`SELECT product_id, version, current, revision, body, created_at FROM product_versions WHERE product_id = ? AND version = ?`),

		upsertPrincipal: r(`INSERT INTO principals (id, kind, admin, created_at) VALUES (?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, admin = excluded.admin
RETURNING created_at`),
		getPrincipal:    r(`SELECT id, kind, admin, created_at FROM principals WHERE id = ?`),
		listPrincipals:  r(`SELECT id, kind, admin, created_at FROM principals ORDER BY id`),
		principalExists: r(`SELECT COUNT(*) FROM principals WHERE id = ?`),
		// DO NOTHING without a target covers both the id and the hash, and
		// (unlike a failed INSERT) does not abort a Postgres transaction.
		insertToken: r(`INSERT INTO tokens (` + tokenCols + `) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`),
		tokenExists: r(`SELECT COUNT(*) FROM tokens WHERE id = ?`),
		revokeToken: r(`UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`),
		tokenByHash: r(`SELECT ` + tokenCols + ` FROM tokens WHERE hash = ?`),
		tokensOf:    r(`SELECT ` + tokenCols + ` FROM tokens WHERE principal_id = ? ORDER BY created_at, id`),
		allTokens:   r(`SELECT ` + tokenCols + ` FROM tokens ORDER BY created_at, id`),
	}
}

// setInsert writes an object's tags or members in one statement: one
// VALUES row per value, with the statement for each row count built once.
type setInsert struct {
	byCount []string // [n] inserts n rows
}

// maxSetRows is the most rows one statement inserts; longer sets take
// several.
const maxSetRows = 64

func newSetInsert(d *Dialect, table, col string) setInsert {
	s := setInsert{byCount: make([]string, maxSetRows+1)}
	for n := 1; n <= maxSetRows; n++ {
		var b strings.Builder
		b.WriteString("INSERT INTO " + table + " (kind, " + col + ", id) VALUES ")
		for i := range n {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?)")
		}
		s.byCount[n] = d.rebind(b.String())
	}
	return s
}
