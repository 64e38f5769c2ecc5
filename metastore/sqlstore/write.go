package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/metastore"
)

// tx is a metastore.Tx: the reader plus the writes, in one *sql.Tx.
type tx struct {
	reader
}

var _ metastore.Tx = (*tx)(nil)

// current is what Put and Delete read (and lock) before writing.
type current struct {
	exists   bool
	revision int64
	created  time.Time
	labels   rhizome.Labels
}

func (t *tx) current(ctx context.Context, kind rhizome.Kind, id string) (current, error) {
	var (
		c      current
		labels []byte
	)
	err := t.r.scanRow(ctx, t.s.q.lockObject, []any{string(kind), id}, &c.revision, timeScan{&c.created}, &labels)
	if errors.Is(err, sql.ErrNoRows) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	c.exists = true
	return c, json.Unmarshal(labels, &c.labels)
}

// checkExpected applies Put's and Delete's optimistic check.
func checkExpected(kind rhizome.Kind, id string, c current, expected int64) error {
	switch {
	case expected == metastore.AnyRevision:
		return nil
	case expected == 0 && c.exists:
		return rhizome.Errorf(rhizome.EConflict, "%s %q already exists (revision %d)", kind, id, c.revision).
			WithHint("read it and pass its revision to replace it")
	case expected > 0 && !c.exists:
		return rhizome.Errorf(rhizome.EConflict, "%s %q does not exist, but revision %d was expected", kind, id, expected).
			WithHint("it was deleted since you read it; read it again")
	case expected > 0 && c.revision != expected:
		return rhizome.Errorf(rhizome.EConflict, "%s %q is at revision %d, not the expected revision %d", kind, id, c.revision, expected).
			WithHint("someone changed it since you read it; read it again and retry")
	}
	return nil
}

func (t *tx) Put(ctx context.Context, obj *rhizome.Object, expected int64, actor, applyID string) (int64, error) {
	if obj == nil || obj.Kind == "" || obj.ID == "" {
		return 0, rhizome.Errorf(rhizome.EInvalid, "metastore: put needs an object with a kind and an id")
	}
	if expected < metastore.AnyRevision {
		return 0, rhizome.Errorf(rhizome.EInvalid, "metastore: put %s %q: expected revision %d is negative", obj.Kind, obj.ID, expected)
	}
	if !json.Valid(obj.Body) {
		return 0, rhizome.Errorf(rhizome.EInvalid, "metastore: put %s %q: the body is not JSON", obj.Kind, obj.ID)
	}
	kind, id := string(obj.Kind), obj.ID
	labels := obj.Labels
	labels.Normalize()
	labelsJSON, err := json.Marshal(labels)
	if err != nil {
		return 0, rhizome.Wrap(err, "metastore: put %s %q: labels", kind, id)
	}
	now := t.s.now()
	w := write{kind: kind, id: id, body: string(obj.Body), labels: labels, labelsJSON: string(labelsJSON),
		now: t.s.d.BindTime(now), actor: actor}

	// A create ("must not exist") is one insert that does nothing if the
	// object exists; anything else reads and locks the current row first.
	var c current
	created := true
	if expected != 0 {
		if c, err = t.current(ctx, obj.Kind, id); err != nil {
			return 0, t.s.wrap(err, "metastore: put %s %q", kind, id)
		}
		if err := checkExpected(obj.Kind, id, c, expected); err != nil {
			return 0, err
		}
		created = !c.exists
	}
	var rev int64
	if created {
		var ok bool
		if rev, ok, err = t.insertObject(ctx, w); err != nil {
			return 0, t.s.wrap(err, "metastore: put %s %q", kind, id)
		}
		if !ok {
			// It exists: say at which revision.
			if c, err = t.current(ctx, obj.Kind, id); err != nil {
				return 0, t.s.wrap(err, "metastore: put %s %q", kind, id)
			}
			return 0, checkExpected(obj.Kind, id, c, 0)
		}
	} else {
		rev = c.revision + 1
		if _, err := t.r.exec(ctx, t.s.q.updateObject, rev, w.body, w.labelsJSON,
			labels.Domain, labels.OwnerTeam, labels.Sensitivity, w.now, actor, kind, id); err != nil {
			return 0, t.s.wrap(err, "metastore: put %s %q", kind, id)
		}
	}
	op := rhizome.OpUpdate
	if created {
		op = rhizome.OpCreate
	}
	if _, err := t.r.exec(ctx, t.s.q.insertRevision, kind, id, rev, string(op), w.body, actor, w.now, applyID); err != nil {
		return 0, t.s.wrap(err, "metastore: put %s %q: revision", kind, id)
	}
	if err := t.replaceSet(ctx, t.s.q.deleteTags, t.s.q.insertTags, kind, id, !created, c.labels.Tags, labels.Tags); err != nil {
		return 0, t.s.wrap(err, "metastore: put %s %q: tags", kind, id)
	}
	if err := t.replaceSet(ctx, t.s.q.deleteMembers, t.s.q.insertMembers, kind, id, !created, c.labels.Members, labels.Members); err != nil {
		return 0, t.s.wrap(err, "metastore: put %s %q: members", kind, id)
	}

	obj.Revision, obj.Labels = rev, labels
	obj.CreatedAt, obj.UpdatedAt, obj.UpdatedBy = now, now, actor
	if !created {
		obj.CreatedAt = c.created
	}
	return rev, nil
}

// write is what Put writes for one object, encoded.
type write struct {
	kind, id, body    string
	labels            rhizome.Labels
	labelsJSON, actor string
	now               any
}

// insertObject creates the object with the revision after the last one in
// its history; ok is false (and nothing written) if it exists.
func (t *tx) insertObject(ctx context.Context, w write) (rev int64, ok bool, err error) {
	err = t.r.scanRow(ctx, t.s.q.insertObject, []any{w.kind, w.id, w.kind, w.id, w.body, w.labelsJSON,
		w.labels.Domain, w.labels.OwnerTeam, w.labels.Sensitivity, w.now, w.now, w.actor}, &rev)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return rev, err == nil, err
}

// replaceSet rewrites an object's rows in object_tags or object_members
// when the set changed (the common re-apply leaves it alone).
func (t *tx) replaceSet(ctx context.Context, del string, ins setInsert, kind, id string, existed bool, old, new []string) error {
	if existed && slices.Equal(old, new) {
		return nil
	}
	if existed && len(old) > 0 {
		if _, err := t.r.exec(ctx, del, kind, id); err != nil {
			return err
		}
	}
	for len(new) > 0 {
		n := min(len(new), maxSetRows)
		args := make([]any, 0, 3*n)
		for _, v := range new[:n] {
			args = append(args, kind, v, id)
		}
		if _, err := t.r.exec(ctx, ins.byCount[n], args...); err != nil {
			return err
		}
		new = new[n:]
	}
	return nil
}

func (t *tx) Delete(ctx context.Context, kind rhizome.Kind, id string, expected int64, actor, applyID string) error {
	if expected < metastore.AnyRevision {
		return rhizome.Errorf(rhizome.EInvalid, "metastore: delete %s %q: expected revision %d is negative", kind, id, expected)
	}
	c, err := t.current(ctx, kind, id)
	if err != nil {
		return t.s.wrap(err, "metastore: delete %s %q", kind, id)
	}
	if !c.exists {
		return rhizome.Errorf(rhizome.ENotFound, "%s %q not found", kind, id)
	}
	if expected != metastore.AnyRevision && expected != c.revision {
		return rhizome.Errorf(rhizome.EConflict, "%s %q is at revision %d, not the expected revision %d", kind, id, c.revision, expected).
			WithHint("someone changed it since you read it; read it again and retry")
	}
	k := string(kind)
	if _, err := t.r.exec(ctx, t.s.q.deleteObject, k, id); err != nil {
		return t.s.wrap(err, "metastore: delete %s %q", kind, id)
	}
	if len(c.labels.Tags) > 0 {
		if _, err := t.r.exec(ctx, t.s.q.deleteTags, k, id); err != nil {
			return t.s.wrap(err, "metastore: delete %s %q: tags", kind, id)
		}
	}
	if len(c.labels.Members) > 0 {
		if _, err := t.r.exec(ctx, t.s.q.deleteMembers, k, id); err != nil {
			return t.s.wrap(err, "metastore: delete %s %q: members", kind, id)
		}
	}
	now := t.s.d.BindTime(t.s.now())
	if _, err := t.r.exec(ctx, t.s.q.insertRevision, k, id, c.revision+1, string(rhizome.OpDelete), nil, actor, now, applyID); err != nil {
		return t.s.wrap(err, "metastore: delete %s %q: revision", kind, id)
	}
	return nil
}

func (t *tx) PutVersion(ctx context.Context, v *rhizome.ProductVersion) error {
	if v == nil || v.ProductID == "" || v.Version == "" {
		return rhizome.Errorf(rhizome.EInvalid, "metastore: a product version needs a product id and a version")
	}
	var body any // NULL keeps the stored body
	if len(v.Body) > 0 {
		if !json.Valid(v.Body) {
			return rhizome.Errorf(rhizome.EInvalid, "metastore: version %s of %q: the body is not JSON", v.Version, v.ProductID)
		}
		body = string(v.Body)
	}
	var (
		rev       int64
		stored    []byte
		createdAt time.Time
	)
	err := t.r.scanRow(ctx, t.s.q.upsertVersion,
		[]any{v.ProductID, v.Version, v.Current, v.Revision, body, t.s.d.BindTime(t.s.now())},
		&rev, &stored, timeScan{&createdAt})
	if err != nil {
		return t.s.wrap(err, "metastore: put version %s of %q", v.Version, v.ProductID)
	}
	if v.Current {
		if _, err := t.r.exec(ctx, t.s.q.uncurrent, false, v.ProductID, v.Version, true); err != nil {
			return t.s.wrap(err, "metastore: put version %s of %q: current", v.Version, v.ProductID)
		}
	}
	v.Revision, v.Body, v.CreatedAt = rev, stored, createdAt
	return nil
}

func (t *tx) PutPrincipal(ctx context.Context, p *rhizome.Principal) error {
	if p == nil || p.ID == "" {
		return rhizome.Errorf(rhizome.EInvalid, "metastore: a principal needs an id")
	}
	if p.Kind != rhizome.PrincipalUser && p.Kind != rhizome.PrincipalService {
		return rhizome.Errorf(rhizome.EInvalid, "principal %q: kind %q is not %q or %q", p.ID, p.Kind, rhizome.PrincipalUser, rhizome.PrincipalService)
	}
	var created time.Time
	err := t.r.scanRow(ctx, t.s.q.upsertPrincipal,
		[]any{p.ID, string(p.Kind), p.Admin, t.s.d.BindTime(t.s.now())}, timeScan{&created})
	if err != nil {
		return t.s.wrap(err, "metastore: put principal %q", p.ID)
	}
	p.CreatedAt = created
	return nil
}

func (t *tx) CreateToken(ctx context.Context, tok *rhizome.Token) error {
	if tok == nil || tok.ID == "" || tok.PrincipalID == "" || tok.Hash == "" {
		return rhizome.Errorf(rhizome.EInvalid, "metastore: a token needs an id, a principal and a hash")
	}
	var n int
	if err := t.r.scanRow(ctx, t.s.q.principalExists, []any{tok.PrincipalID}, &n); err != nil {
		return t.s.wrap(err, "metastore: create token %q", tok.ID)
	}
	if n == 0 {
		return rhizome.Errorf(rhizome.ENotFound, "token %q: principal %q not found", tok.ID, tok.PrincipalID).
			WithHint("create the principal first")
	}
	now := t.s.now()
	res, err := t.r.exec(ctx, t.s.q.insertToken, tok.ID, tok.PrincipalID, tok.Name, tok.Hash,
		t.s.d.BindTime(now), t.nullTime(tok.ExpiresAt), t.nullTime(tok.RevokedAt))
	if err != nil {
		return t.s.wrap(err, "metastore: create token %q", tok.ID)
	}
	if added, err := res.RowsAffected(); err != nil {
		return t.s.wrap(err, "metastore: create token %q", tok.ID)
	} else if added == 0 {
		if err := t.r.scanRow(ctx, t.s.q.tokenExists, []any{tok.ID}, &n); err != nil {
			return t.s.wrap(err, "metastore: create token %q", tok.ID)
		}
		if n > 0 {
			return rhizome.Errorf(rhizome.EConflict, "token %q already exists", tok.ID)
		}
		return rhizome.Errorf(rhizome.EConflict, "token %q: another token has the same hash", tok.ID).
			WithHint("generate a new secret")
	}
	tok.CreatedAt = now
	tok.ExpiresAt, tok.RevokedAt = cutTime(tok.ExpiresAt), cutTime(tok.RevokedAt)
	return nil
}

func (t *tx) RevokeToken(ctx context.Context, id string) error {
	res, err := t.r.exec(ctx, t.s.q.revokeToken, t.s.d.BindTime(t.s.now()), id)
	if err != nil {
		return t.s.wrap(err, "metastore: revoke token %q", id)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return t.s.wrap(err, "metastore: revoke token %q", id)
	}
	if n == 0 {
		return rhizome.Errorf(rhizome.ENotFound, "token %q not found", id)
	}
	return nil
}

func (t *tx) nullTime(tp *time.Time) any {
	if tp == nil {
		return nil
	}
	return t.s.d.BindTime(normTime(*tp))
}

func cutTime(tp *time.Time) *time.Time {
	if tp == nil {
		return nil
	}
	c := normTime(*tp)
	return &c
}
