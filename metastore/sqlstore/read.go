package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/metastore"
)

// List page sizes.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// reader implements metastore.Reader for the Store (on the pool) and for
// a tx (in the transaction).
type reader struct {
	s *Store
	r runner
}

func (rd *reader) Get(ctx context.Context, kind rhizome.Kind, id string) (*rhizome.Object, error) {
	rows, err := rd.r.query(ctx, rd.s.q.getObject, string(kind), id)
	if err != nil {
		return nil, rd.s.wrap(err, "metastore: get %s %q", kind, id)
	}
	objs, err := scanObjects(rows, 1)
	if err != nil {
		return nil, rd.s.wrap(err, "metastore: get %s %q", kind, id)
	}
	if len(objs) == 0 {
		return nil, rhizome.Errorf(rhizome.ENotFound, "%s %q not found", kind, id)
	}
	return objs[0], nil
}

// List drives the query from the index that matches the most selective
// filter it can use in id order (tag or member first, then domain, owner
// team, sensitivity), so that one filter plus a cursor is one index range
// scan; the remaining filters are checked on the rows it yields.
func (rd *reader) List(ctx context.Context, opt metastore.ListOptions) (*metastore.Page, error) {
	if opt.Kind == "" {
		return nil, rhizome.Errorf(rhizome.EInvalid, "metastore: list needs a kind")
	}
	limit := opt.Limit
	switch {
	case limit < 0:
		return nil, rhizome.Errorf(rhizome.EInvalid, "limit %d is negative", limit).WithHint("use 1..%d, or 0 for %d", MaxLimit, DefaultLimit)
	case limit == 0:
		limit = DefaultLimit
	case limit > MaxLimit:
		limit = MaxLimit
	}
	q, args := ListQuery(opt, limit+1)
	rows, err := rd.r.query(ctx, rd.s.d.rebind(q), args...)
	if err != nil {
		return nil, rd.s.wrap(err, "metastore: list %s", opt.Kind.Plural())
	}
	objs, err := scanObjects(rows, limit+1)
	if err != nil {
		return nil, rd.s.wrap(err, "metastore: list %s", opt.Kind.Plural())
	}
	page := &metastore.Page{Items: objs}
	if len(objs) > limit {
		page.Items = objs[:limit]
		page.Next = objs[limit-1].ID
	}
	return page, nil
}

// ListQuery returns the SQL (with "?" placeholders) and arguments of a
// List fetching limit rows; exported so backends can test query plans.
func ListQuery(opt metastore.ListOptions, limit int) (string, []any) {
	var b strings.Builder
	var args []any
	idCol := "o.id"
	b.WriteString("SELECT " + objectCols + " FROM ")
	switch {
	case opt.Tag != "":
		b.WriteString("object_tags t JOIN objects o ON o.kind = t.kind AND o.id = t.id WHERE t.kind = ? AND t.tag = ?")
		args = append(args, string(opt.Kind), opt.Tag)
		idCol = "t.id"
	case opt.Member != "":
		b.WriteString("object_members m JOIN objects o ON o.kind = m.kind AND o.id = m.id WHERE m.kind = ? AND m.member = ?")
		args = append(args, string(opt.Kind), opt.Member)
		idCol = "m.id"
	default:
		b.WriteString("objects o WHERE o.kind = ?")
		args = append(args, string(opt.Kind))
	}
	if opt.Tag != "" && opt.Member != "" {
		b.WriteString(" AND EXISTS (SELECT 1 FROM object_members m WHERE m.kind = o.kind AND m.member = ? AND m.id = o.id)")
		args = append(args, opt.Member)
	}
	for _, f := range []struct{ col, val string }{
		{"o.domain", opt.Domain}, {"o.owner_team", opt.OwnerTeam}, {"o.sensitivity", opt.Sensitivity},
	} {
		if f.val != "" {
			b.WriteString(" AND " + f.col + " = ?")
			args = append(args, f.val)
		}
	}
	if opt.After != "" {
		b.WriteString(" AND " + idCol + " > ?")
		args = append(args, opt.After)
	}
	b.WriteString(" ORDER BY " + idCol + " LIMIT ?")
	args = append(args, limit)
	return b.String(), args
}

func scanObjects(rows *sql.Rows, capHint int) ([]*rhizome.Object, error) {
	defer rows.Close()
	objs := make([]*rhizome.Object, 0, min(capHint, 128))
	for rows.Next() {
		var (
			o            rhizome.Object
			kind         string
			body, labels []byte
		)
		if err := rows.Scan(&kind, &o.ID, &o.Revision, &body, &labels,
			timeScan{&o.CreatedAt}, timeScan{&o.UpdatedAt}, &o.UpdatedBy); err != nil {
			return nil, err
		}
		o.Kind = rhizome.Kind(kind)
		o.Body = body
		if err := json.Unmarshal(labels, &o.Labels); err != nil {
			return nil, err
		}
		objs = append(objs, &o)
	}
	return objs, rows.Err()
}

func (rd *reader) History(ctx context.Context, kind rhizome.Kind, id string) ([]rhizome.Revision, error) {
	rows, err := rd.r.query(ctx, rd.s.q.history, string(kind), id)
	if err != nil {
		return nil, rd.s.wrap(err, "metastore: history of %s %q", kind, id)
	}
	defer rows.Close()
	var revs []rhizome.Revision
	for rows.Next() {
		var (
			rv    rhizome.Revision
			k, op string
			body  []byte
		)
		if err := rows.Scan(&k, &rv.ID, &rv.Revision, &op, &body, &rv.Actor, timeScan{&rv.At}, &rv.ApplyID); err != nil {
			return nil, rd.s.wrap(err, "metastore: history of %s %q", kind, id)
		}
		rv.Kind, rv.Op, rv.Body = rhizome.Kind(k), rhizome.Op(op), body
		revs = append(revs, rv)
	}
	if err := rows.Err(); err != nil {
		return nil, rd.s.wrap(err, "metastore: history of %s %q", kind, id)
	}
	if len(revs) == 0 {
		return nil, rhizome.Errorf(rhizome.ENotFound, "%s %q has no history: it never existed", kind, id)
	}
	return revs, nil
}

func (rd *reader) Versions(ctx context.Context, productID string) ([]rhizome.ProductVersion, error) {
	rows, err := rd.r.query(ctx, rd.s.q.versions, productID)
	if err != nil {
		return nil, rd.s.wrap(err, "metastore: versions of %q", productID)
	}
	defer rows.Close()
	vs := []rhizome.ProductVersion{}
	for rows.Next() {
		v, err := scanVersion(rows)
		if err != nil {
			return nil, rd.s.wrap(err, "metastore: versions of %q", productID)
		}
		vs = append(vs, *v)
	}
	return vs, rd.s.wrap(rows.Err(), "metastore: versions of %q", productID)
}

func (rd *reader) Version(ctx context.Context, productID, version string) (*rhizome.ProductVersion, error) {
	rows, err := rd.r.query(ctx, rd.s.q.version, productID, version)
	if err != nil {
		return nil, rd.s.wrap(err, "metastore: version %s of %q", version, productID)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, rd.s.wrap(err, "metastore: version %s of %q", version, productID)
		}
		return nil, rhizome.Errorf(rhizome.ENotFound, "data product %q has no version %q", productID, version)
	}
	v, err := scanVersion(rows)
	return v, rd.s.wrap(err, "metastore: version %s of %q", version, productID)
}

func scanVersion(rows *sql.Rows) (*rhizome.ProductVersion, error) {
	var (
		v    rhizome.ProductVersion
		body []byte
	)
	if err := rows.Scan(&v.ProductID, &v.Version, &v.Current, &v.Revision, &body, timeScan{&v.CreatedAt}); err != nil {
		return nil, err
	}
	v.Body = body
	return &v, nil
}

func (rd *reader) TeamsOf(ctx context.Context, principal string) ([]string, error) {
	rows, err := rd.r.query(ctx, rd.s.q.teamsOf, string(rhizome.KindTeam), principal)
	if err != nil {
		return nil, rd.s.wrap(err, "metastore: teams of %q", principal)
	}
	defer rows.Close()
	teams := []string{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, rd.s.wrap(err, "metastore: teams of %q", principal)
		}
		teams = append(teams, id)
	}
	return teams, rd.s.wrap(rows.Err(), "metastore: teams of %q", principal)
}

func (rd *reader) GetPrincipal(ctx context.Context, id string) (*rhizome.Principal, error) {
	var (
		p    rhizome.Principal
		kind string
	)
	err := rd.r.scanRow(ctx, rd.s.q.getPrincipal, []any{id}, &p.ID, &kind, &p.Admin, timeScan{&p.CreatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, rhizome.Errorf(rhizome.ENotFound, "principal %q not found", id)
	}
	if err != nil {
		return nil, rd.s.wrap(err, "metastore: get principal %q", id)
	}
	p.Kind = rhizome.PrincipalKind(kind)
	return &p, nil
}

func (rd *reader) ListPrincipals(ctx context.Context) ([]rhizome.Principal, error) {
	rows, err := rd.r.query(ctx, rd.s.q.listPrincipals)
	if err != nil {
		return nil, rd.s.wrap(err, "metastore: list principals")
	}
	defer rows.Close()
	ps := []rhizome.Principal{}
	for rows.Next() {
		var (
			p    rhizome.Principal
			kind string
		)
		if err := rows.Scan(&p.ID, &kind, &p.Admin, timeScan{&p.CreatedAt}); err != nil {
			return nil, rd.s.wrap(err, "metastore: list principals")
		}
		p.Kind = rhizome.PrincipalKind(kind)
		ps = append(ps, p)
	}
	return ps, rd.s.wrap(rows.Err(), "metastore: list principals")
}

func (rd *reader) TokenByHash(ctx context.Context, hash string) (*rhizome.Token, error) {
	toks, err := rd.tokens(ctx, rd.s.q.tokenByHash, hash)
	if err != nil {
		return nil, rd.s.wrap(err, "metastore: token by hash")
	}
	if len(toks) == 0 {
		return nil, rhizome.Errorf(rhizome.ENotFound, "no token with that hash")
	}
	return &toks[0], nil
}

// ListTokens lists a principal's tokens, oldest first; every token when
// principal is empty.
func (rd *reader) ListTokens(ctx context.Context, principal string) ([]rhizome.Token, error) {
	var (
		toks []rhizome.Token
		err  error
	)
	if principal == "" {
		toks, err = rd.tokens(ctx, rd.s.q.allTokens)
	} else {
		toks, err = rd.tokens(ctx, rd.s.q.tokensOf, principal)
	}
	return toks, rd.s.wrap(err, "metastore: tokens of %q", principal)
}

func (rd *reader) tokens(ctx context.Context, q string, args ...any) ([]rhizome.Token, error) {
	rows, err := rd.r.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	toks := []rhizome.Token{}
	for rows.Next() {
		var t rhizome.Token
		if err := rows.Scan(&t.ID, &t.PrincipalID, &t.Name, &t.Hash, timeScan{&t.CreatedAt},
			nullTimeScan{&t.ExpiresAt}, nullTimeScan{&t.RevokedAt}); err != nil {
			return nil, err
		}
		toks = append(toks, t)
	}
	return toks, rows.Err()
}
