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

// Record page sizes.
const (
	DefaultRecordLimit = 100
	MaxRecordLimit     = 10000
)

const recordCols = `seq, collection, id, product_id, subject, state, at, body`

func scanRecords(rows *sql.Rows) ([]metastore.Record, error) {
	defer rows.Close()
	out := []metastore.Record{}
	for rows.Next() {
		var (
			r    metastore.Record
			body string
		)
		if err := rows.Scan(&r.Seq, &r.Collection, &r.ID, &r.ProductID, &r.Subject, &r.State, timeScan{&r.At}, &body); err != nil {
			return nil, err
		}
		if body != "" {
			r.Body = json.RawMessage(body)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (rd *reader) GetRecord(ctx context.Context, collection, id string) (*metastore.Record, error) {
	rows, err := rd.r.query(ctx, rd.s.d.rebind(`SELECT `+recordCols+` FROM records WHERE collection = ? AND id = ?`), collection, id)
	if err != nil {
		return nil, rd.s.wrap(err, "metastore: get record %s/%s", collection, id)
	}
	recs, err := scanRecords(rows)
	if err != nil {
		return nil, rd.s.wrap(err, "metastore: get record %s/%s", collection, id)
	}
	if len(recs) == 0 {
		return nil, rhizome.Errorf(rhizome.ENotFound, "%s %q not found", collection, id)
	}
	return &recs[0], nil
}

func (rd *reader) LastRecord(ctx context.Context, collection string) (*metastore.Record, error) {
	rows, err := rd.r.query(ctx, rd.s.d.rebind(`SELECT `+recordCols+` FROM records WHERE collection = ? ORDER BY seq DESC LIMIT 1`), collection)
	if err != nil {
		return nil, rd.s.wrap(err, "metastore: last record of %s", collection)
	}
	recs, err := scanRecords(rows)
	if err != nil {
		return nil, rd.s.wrap(err, "metastore: last record of %s", collection)
	}
	if len(recs) == 0 {
		return nil, rhizome.Errorf(rhizome.ENotFound, "%s has no records", collection)
	}
	return &recs[0], nil
}

// recordWhere builds the WHERE clause of q (without ordering or paging).
func (s *Store) recordWhere(q metastore.RecordQuery) (string, []any, error) {
	if q.Collection == "" {
		return "", nil, rhizome.Errorf(rhizome.EInvalid, "metastore: a record query needs a collection")
	}
	var b strings.Builder
	b.WriteString(` WHERE collection = ?`)
	args := []any{q.Collection}
	add := func(cond string, v any) {
		b.WriteString(" AND " + cond)
		args = append(args, v)
	}
	if q.ProductID != "" {
		add("product_id = ?", q.ProductID)
	}
	if q.Subject != "" {
		add("subject = ?", q.Subject)
	}
	if q.State != "" {
		add("state = ?", q.State)
	}
	if !q.Since.IsZero() {
		add("at >= ?", s.d.BindTime(normTime(q.Since)))
	}
	if !q.Until.IsZero() {
		add("at < ?", s.d.BindTime(normTime(q.Until)))
	}
	return b.String(), args, nil
}

func (rd *reader) ListRecords(ctx context.Context, q metastore.RecordQuery) ([]metastore.Record, error) {
	limit := q.Limit
	switch {
	case limit < 0:
		return nil, rhizome.Errorf(rhizome.EInvalid, "limit %d is negative", limit).WithHint("use 1..%d, or 0 for %d", MaxRecordLimit, DefaultRecordLimit)
	case limit == 0:
		limit = DefaultRecordLimit
	case limit > MaxRecordLimit:
		limit = MaxRecordLimit
	}
	where, args, err := rd.s.recordWhere(q)
	if err != nil {
		return nil, err
	}
	order := " ORDER BY seq"
	if q.Desc {
		order = " ORDER BY seq DESC"
		if q.AfterSeq > 0 {
			where += " AND seq < ?"
			args = append(args, q.AfterSeq)
		}
	} else if q.AfterSeq > 0 {
		where += " AND seq > ?"
		args = append(args, q.AfterSeq)
	}
	rows, err := rd.r.query(ctx, rd.s.d.rebind(`SELECT `+recordCols+` FROM records`+where+order+` LIMIT ?`), append(args, limit)...)
	if err != nil {
		return nil, rd.s.wrap(err, "metastore: list %s", q.Collection)
	}
	recs, err := scanRecords(rows)
	return recs, rd.s.wrap(err, "metastore: list %s", q.Collection)
}

func validRecord(r *metastore.Record) error {
	switch {
	case r == nil || r.Collection == "" || r.ID == "":
		return rhizome.Errorf(rhizome.EInvalid, "metastore: a record needs a collection and an id")
	case len(r.Body) > 0 && !json.Valid(r.Body):
		return rhizome.Errorf(rhizome.EInvalid, "metastore: record %s/%s: the body is not JSON", r.Collection, r.ID)
	}
	return nil
}

func (t *tx) insertRecord(ctx context.Context, r *metastore.Record) error {
	if r.At.IsZero() {
		r.At = t.s.now()
	}
	r.At = normTime(r.At)
	var seq int64
	err := t.r.scanRow(ctx, t.s.d.rebind(`INSERT INTO records (collection, id, product_id, subject, state, at, body)
VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (collection, id) DO NOTHING RETURNING seq`),
		[]any{r.Collection, r.ID, r.ProductID, r.Subject, r.State, t.s.d.BindTime(r.At), string(r.Body)}, &seq)
	if errors.Is(err, sql.ErrNoRows) {
		return rhizome.Errorf(rhizome.EConflict, "%s %q already exists", r.Collection, r.ID)
	}
	if err != nil {
		return t.s.wrap(err, "metastore: insert record %s/%s", r.Collection, r.ID)
	}
	r.Seq = seq
	return nil
}

func (t *tx) InsertRecord(ctx context.Context, r *metastore.Record) error {
	if err := validRecord(r); err != nil {
		return err
	}
	return t.insertRecord(ctx, r)
}

func (t *tx) PutRecord(ctx context.Context, r *metastore.Record) error {
	if err := validRecord(r); err != nil {
		return err
	}
	if _, err := t.r.exec(ctx, t.s.d.rebind(`DELETE FROM records WHERE collection = ? AND id = ?`), r.Collection, r.ID); err != nil {
		return t.s.wrap(err, "metastore: put record %s/%s", r.Collection, r.ID)
	}
	return t.insertRecord(ctx, r)
}

func (t *tx) DeleteRecords(ctx context.Context, q metastore.RecordQuery) (int64, error) {
	where, args, err := t.s.recordWhere(q)
	if err != nil {
		return 0, err
	}
	if q.AfterSeq > 0 {
		where += " AND seq > ?"
		args = append(args, q.AfterSeq)
	}
	res, err := t.r.exec(ctx, t.s.d.rebind(`DELETE FROM records`+where), args...)
	if err != nil {
		return 0, t.s.wrap(err, "metastore: delete %s records", q.Collection)
	}
	n, err := res.RowsAffected()
	return n, t.s.wrap(err, "metastore: delete %s records", q.Collection)
}
