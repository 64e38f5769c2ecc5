package metastoretest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/metastore"
)

func (e *env) putRecord(r *metastore.Record, insert bool) error {
	return e.update(func(tx metastore.Tx) error {
		if insert {
			return tx.InsertRecord(e.ctx, r)
		}
		return tx.PutRecord(e.ctx, r)
	})
}

func (e *env) listRecords(q metastore.RecordQuery) []metastore.Record {
	e.t.Helper()
	recs, err := e.s.ListRecords(e.ctx, q)
	if err != nil {
		e.t.Fatalf("ListRecords(%+v): %v", q, err)
	}
	return recs
}

func recordIDs(recs []metastore.Record) string {
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.ID)
	}
	return fmt.Sprint(ids)
}

func testRecords(t *testing.T, e *env) {
	at := Epoch.Add(-time.Hour - time.Nanosecond)
	r := &metastore.Record{Collection: "alert", ID: "a1", ProductID: "dp.x", Subject: "team-a", State: "firing", At: at,
		Body: json.RawMessage(`{"summary":"stale"}`)}
	if err := e.putRecord(r, true); err != nil {
		t.Fatalf("InsertRecord: %v", err)
	}
	if r.Seq <= 0 {
		t.Fatalf("Seq = %d, want > 0", r.Seq)
	}
	got, err := e.s.GetRecord(e.ctx, "alert", "a1")
	if err != nil {
		t.Fatalf("GetRecord: %v", err)
	}
	wantTime(t, "At", got.At, Stored(at))
	if got.Seq != r.Seq || got.ProductID != "dp.x" || got.Subject != "team-a" || got.State != "firing" || string(got.Body) != `{"summary":"stale"}` {
		t.Errorf("GetRecord = %+v", got)
	}
	// Insert of an existing id is a conflict and changes nothing.
	err = e.putRecord(&metastore.Record{Collection: "alert", ID: "a1", State: "resolved"}, true)
	wantCode(t, err, rhizome.EConflict, "a1")
	// The same id in another collection is another record.
	if err := e.putRecord(&metastore.Record{Collection: "grant", ID: "a1"}, true); err != nil {
		t.Fatalf("InsertRecord in another collection: %v", err)
	}
	// Put replaces, with a fresh seq; a zero At takes the store's clock.
	before := r.Seq
	r2 := &metastore.Record{Collection: "alert", ID: "a1", ProductID: "dp.x", State: "resolved"}
	if err := e.putRecord(r2, false); err != nil {
		t.Fatalf("PutRecord: %v", err)
	}
	if r2.Seq <= before {
		t.Errorf("Seq after put = %d, want > %d", r2.Seq, before)
	}
	got, _ = e.s.GetRecord(e.ctx, "alert", "a1")
	if got.State != "resolved" || got.Subject != "" || got.Body != nil {
		t.Errorf("after put: %+v", got)
	}
	wantTime(t, "At from the clock", got.At, e.now())

	_, err = e.s.GetRecord(e.ctx, "alert", "nope")
	wantCode(t, err, rhizome.ENotFound, "nope")
	_, err = e.s.LastRecord(e.ctx, "audit")
	wantCode(t, err, rhizome.ENotFound, "audit")
	for _, bad := range []*metastore.Record{{ID: "x"}, {Collection: "c"}, {Collection: "c", ID: "x", Body: json.RawMessage("{")}} {
		wantCode(t, e.putRecord(bad, false), rhizome.EInvalid, "")
	}
	_, err = e.s.ListRecords(e.ctx, metastore.RecordQuery{})
	wantCode(t, err, rhizome.EInvalid, "collection")
}

func testRecordsList(t *testing.T, e *env) {
	for i := range 10 {
		prod := "dp.a"
		if i%2 == 1 {
			prod = "dp.b"
		}
		r := &metastore.Record{Collection: "audit", ID: fmt.Sprintf("e%02d", i), ProductID: prod,
			Subject: fmt.Sprintf("p%d", i%3), State: map[bool]string{true: "allow", false: "deny"}[i%4 != 0],
			At: Epoch.Add(time.Duration(i) * time.Minute)}
		if err := e.putRecord(r, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.putRecord(&metastore.Record{Collection: "other", ID: "o", ProductID: "dp.a"}, true); err != nil {
		t.Fatal(err)
	}
	all := e.listRecords(metastore.RecordQuery{Collection: "audit"})
	if got := recordIDs(all); got != "[e00 e01 e02 e03 e04 e05 e06 e07 e08 e09]" {
		t.Errorf("all = %s", got)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq <= all[i-1].Seq {
			t.Errorf("seq not increasing: %d then %d", all[i-1].Seq, all[i].Seq)
		}
	}
	last, err := e.s.LastRecord(e.ctx, "audit")
	if err != nil || last.ID != "e09" {
		t.Errorf("LastRecord = %v, %v", last, err)
	}
	cases := []struct {
		q    metastore.RecordQuery
		want string
	}{
		{metastore.RecordQuery{ProductID: "dp.b"}, "[e01 e03 e05 e07 e09]"},
		{metastore.RecordQuery{Subject: "p0"}, "[e00 e03 e06 e09]"},
		{metastore.RecordQuery{State: "deny"}, "[e00 e04 e08]"},
		{metastore.RecordQuery{ProductID: "dp.a", State: "allow"}, "[e02 e06]"},
		{metastore.RecordQuery{Since: Epoch.Add(3 * time.Minute), Until: Epoch.Add(5 * time.Minute)}, "[e03 e04]"},
		{metastore.RecordQuery{Limit: 3}, "[e00 e01 e02]"},
		{metastore.RecordQuery{AfterSeq: all[6].Seq}, "[e07 e08 e09]"},
		{metastore.RecordQuery{Desc: true, Limit: 2}, "[e09 e08]"},
		{metastore.RecordQuery{Desc: true, AfterSeq: all[2].Seq}, "[e01 e00]"},
	}
	for _, c := range cases {
		c.q.Collection = "audit"
		if got := recordIDs(e.listRecords(c.q)); got != c.want {
			t.Errorf("ListRecords(%+v) = %s, want %s", c.q, got, c.want)
		}
	}
	_, err = e.s.ListRecords(e.ctx, metastore.RecordQuery{Collection: "audit", Limit: -1})
	wantCode(t, err, rhizome.EInvalid, "limit")

	// DeleteRecords deletes what the query selects, in one collection only.
	var n int64
	e.mustUpdate(func(tx metastore.Tx) error {
		var err error
		n, err = tx.DeleteRecords(e.ctx, metastore.RecordQuery{Collection: "audit", ProductID: "dp.a", Until: Epoch.Add(5 * time.Minute)})
		return err
	})
	if n != 3 {
		t.Errorf("DeleteRecords = %d, want 3", n)
	}
	if got := recordIDs(e.listRecords(metastore.RecordQuery{Collection: "audit", ProductID: "dp.a"})); got != "[e06 e08]" {
		t.Errorf("after delete: %s", got)
	}
	if got := recordIDs(e.listRecords(metastore.RecordQuery{Collection: "other"})); got != "[o]" {
		t.Errorf("other collection after delete: %s", got)
	}
	// A write that fails rolls back the records it wrote.
	err = e.update(func(tx metastore.Tx) error {
		if err := tx.InsertRecord(e.ctx, &metastore.Record{Collection: "audit", ID: "tx1"}); err != nil {
			return err
		}
		return tx.InsertRecord(e.ctx, &metastore.Record{Collection: "audit", ID: "e09"})
	})
	wantCode(t, err, rhizome.EConflict, "e09")
	if _, err := e.s.GetRecord(e.ctx, "audit", "tx1"); rhizome.Code(err) != rhizome.ENotFound {
		t.Errorf("tx1 survived a rolled back transaction: %v", err)
	}
}
