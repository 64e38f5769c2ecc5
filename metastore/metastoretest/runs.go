package metastoretest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/metastore"
)

func (e *env) putRun(r *rhizome.Run) error {
	return e.update(func(tx metastore.Tx) error { return tx.PutRun(e.ctx, r) })
}

func (e *env) mustPutRun(r *rhizome.Run) {
	e.t.Helper()
	if err := e.putRun(r); err != nil {
		e.t.Fatalf("PutRun %s: %v", r.ID, err)
	}
}

func testRunsPutGet(t *testing.T, e *env) {
	from := Epoch.Add(-24 * time.Hour)
	to := Epoch.Add(-time.Nanosecond) // cut to microseconds
	r := &rhizome.Run{ID: "run_1", ProductID: "dp.a", Version: "1.2.0", Trigger: rhizome.TriggerBackfill,
		State: rhizome.RunQueued, Actor: "alice", From: &from, To: &to}
	e.mustPutRun(r)
	wantTime(t, "QueuedAt (from the clock)", r.QueuedAt, e.now())

	got, err := e.s.GetRun(e.ctx, "run_1")
	if err != nil {
		t.Fatalf("GetRun: %v", err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Errorf("GetRun = %+v\nwant      %+v", got, r)
	}
	wantTime(t, "From", *got.From, Stored(from))

	// Update by id: every field replaced.
	started, finished := e.tick(), e.tick()
	r.State, r.Attempt, r.StartedAt, r.FinishedAt = rhizome.RunSucceeded, 2, &started, &finished
	r.RowsIn, r.RowsOut, r.Bytes, r.DurationMS, r.SnapshotID = 10, 9, 1<<40, 1500, 77
	r.Error, r.From, r.To = "", nil, nil
	e.mustPutRun(r)
	got, err = e.s.GetRun(e.ctx, "run_1")
	if err != nil {
		t.Fatalf("GetRun after update: %v", err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Errorf("GetRun after update = %+v\nwant                   %+v", got, r)
	}

	_, err = e.s.GetRun(e.ctx, "run_missing")
	wantCode(t, err, rhizome.ENotFound, "run_missing")

	for _, bad := range []*rhizome.Run{
		{ProductID: "dp.a", Trigger: rhizome.TriggerManual, State: rhizome.RunQueued},
		{ID: "run_x", Trigger: rhizome.TriggerManual, State: rhizome.RunQueued},
		{ID: "run_x", ProductID: "dp.a", Trigger: rhizome.TriggerManual, State: "paused"},
		{ID: "run_x", ProductID: "dp.a", State: rhizome.RunQueued},
	} {
		wantCode(t, e.putRun(bad), rhizome.EInvalid)
	}
}

func testRunsList(t *testing.T, e *env) {
	// 25 runs over 3 products, one a second; the ids do not follow time,
	// and two runs share a queued time (the id breaks the tie).
	var (
		all  []string
		prev time.Time
	)
	for i := range 25 {
		at := e.tick()
		if i == 24 {
			at = prev // same as i == 23
		}
		prev = at
		state := rhizome.RunSucceeded
		if i%4 == 0 {
			state = rhizome.RunFailed
		}
		r := &rhizome.Run{ID: fmt.Sprintf("run_%02d", (i*7)%25), ProductID: fmt.Sprintf("dp.%d", i%3),
			Trigger: rhizome.TriggerSchedule, State: state, QueuedAt: at}
		e.mustPutRun(r)
		all = append(all, r.ID)
	}
	byTime, _, err := e.s.ListRuns(e.ctx, metastore.RunListOptions{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(byTime); i++ {
		a, b := byTime[i-1], byTime[i]
		if a.QueuedAt.Before(b.QueuedAt) || (a.QueuedAt.Equal(b.QueuedAt) && a.ID < b.ID) {
			t.Fatalf("ListRuns not newest first at %d: %s (%v) before %s (%v)", i, a.ID, a.QueuedAt, b.ID, b.QueuedAt)
		}
	}
	if len(byTime) != len(all) {
		t.Fatalf("ListRuns returned %d runs, want %d", len(byTime), len(all))
	}

	cases := []struct {
		name string
		opt  metastore.RunListOptions
		keep func(rhizome.Run) bool
	}{
		{"all", metastore.RunListOptions{}, func(rhizome.Run) bool { return true }},
		{"product", metastore.RunListOptions{ProductID: "dp.1"}, func(r rhizome.Run) bool { return r.ProductID == "dp.1" }},
		{"state", metastore.RunListOptions{State: rhizome.RunFailed}, func(r rhizome.Run) bool { return r.State == rhizome.RunFailed }},
		{"product+state", metastore.RunListOptions{ProductID: "dp.0", State: rhizome.RunSucceeded}, func(r rhizome.Run) bool {
			return r.ProductID == "dp.0" && r.State == rhizome.RunSucceeded
		}},
		{"none", metastore.RunListOptions{ProductID: "dp.none"}, func(rhizome.Run) bool { return false }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var want []string
			for _, r := range byTime {
				if tc.keep(r) {
					want = append(want, r.ID)
				}
			}
			for _, limit := range []int{1, 3, 7, 100} {
				opt := tc.opt
				opt.Limit = limit
				var got []string
				for pages := 0; ; pages++ {
					if pages > 30 {
						t.Fatalf("limit %d: more than 30 pages", limit)
					}
					runs, next, err := e.s.ListRuns(e.ctx, opt)
					if err != nil {
						t.Fatalf("ListRuns %+v: %v", opt, err)
					}
					if len(runs) > limit {
						t.Fatalf("limit %d: page of %d", limit, len(runs))
					}
					for _, r := range runs {
						got = append(got, r.ID)
					}
					if next == "" {
						break
					}
					opt.After = next
				}
				if !equalStrings(got, want) {
					t.Errorf("limit %d: got %v\nwant %v", limit, got, want)
				}
			}
		})
	}
	_, _, err = e.s.ListRuns(e.ctx, metastore.RunListOptions{Limit: -1})
	wantCode(t, err, rhizome.EInvalid, "negative")
	_, _, err = e.s.ListRuns(e.ctx, metastore.RunListOptions{State: "paused"})
	wantCode(t, err, rhizome.EInvalid, "paused")
}

func testRunLogs(t *testing.T, e *env) {
	appendLog := func(l rhizome.RunLog) error {
		return e.update(func(tx metastore.Tx) error { return tx.AppendRunLog(e.ctx, l) })
	}
	at := e.now()
	for i := range 5 {
		if err := appendLog(rhizome.RunLog{RunID: "run_a", Level: "info", Msg: fmt.Sprint("line ", i)}); err != nil {
			t.Fatalf("AppendRunLog: %v", err)
		}
		// Another run's log interleaved: its own numbering.
		if err := appendLog(rhizome.RunLog{RunID: "run_b", Level: "warn", Msg: "b"}); err != nil {
			t.Fatalf("AppendRunLog: %v", err)
		}
	}
	explicit := Epoch.Add(time.Hour)
	if err := appendLog(rhizome.RunLog{RunID: "run_a", Seq: 10, At: explicit, Level: "error", Msg: "ten"}); err != nil {
		t.Fatalf("AppendRunLog with a seq: %v", err)
	}
	wantCode(t, appendLog(rhizome.RunLog{RunID: "run_a", Seq: 10, Level: "error", Msg: "again"}), rhizome.EConflict, "10")
	// After a seq was given, assignment continues past it.
	if err := appendLog(rhizome.RunLog{RunID: "run_a", Level: "info", Msg: "eleven"}); err != nil {
		t.Fatal(err)
	}

	logs, err := e.s.RunLogs(e.ctx, "run_a", 0)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for _, l := range logs {
		seqs = append(seqs, l.Seq)
	}
	if want := []int64{1, 2, 3, 4, 5, 10, 11}; !reflect.DeepEqual(seqs, want) {
		t.Fatalf("seqs = %v, want %v", seqs, want)
	}
	if l := logs[0]; l.RunID != "run_a" || l.Level != "info" || l.Msg != "line 0" {
		t.Errorf("first line = %+v", l)
	}
	wantTime(t, "At (from the clock)", logs[0].At, at)
	wantTime(t, "At (given)", logs[5].At, Stored(explicit))

	tail, err := e.s.RunLogs(e.ctx, "run_a", 5)
	if err != nil || len(tail) != 2 || tail[0].Msg != "ten" {
		t.Errorf("RunLogs after 5 = %+v, %v; want lines 10 and 11", tail, err)
	}
	none, err := e.s.RunLogs(e.ctx, "run_none", 0)
	if err != nil || none == nil || len(none) != 0 {
		t.Errorf("RunLogs of an unknown run = %#v, %v; want an empty list", none, err)
	}
	wantCode(t, appendLog(rhizome.RunLog{Level: "info"}), rhizome.EInvalid)
}

func testLineageEvents(t *testing.T, e *env) {
	bodies := []string{
		`{"eventType":"START","zeta":1,"alpha":2}`,
		`{"eventType":"RUNNING"}`,
		`{"eventType":"COMPLETE","run":{"runId":"x"}}`,
	}
	e.mustUpdate(func(tx metastore.Tx) error {
		for i, b := range bodies {
			// Times out of order: the events keep the order they were stored.
			at := Epoch.Add(time.Duration(len(bodies)-i) * time.Minute)
			if err := tx.PutLineageEvent(e.ctx, "run_a", fmt.Sprint("T", i), at, json.RawMessage(b)); err != nil {
				return err
			}
			if err := tx.PutLineageEvent(e.ctx, "run_b", "START", time.Time{}, json.RawMessage(`{}`)); err != nil {
				return err
			}
		}
		return nil
	})
	evs, err := e.s.LineageEvents(e.ctx, "run_a")
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != len(bodies) {
		t.Fatalf("LineageEvents = %d events, want %d", len(evs), len(bodies))
	}
	for i, ev := range evs {
		if string(ev) != bodies[i] {
			t.Errorf("event %d = %s, want %s (byte for byte)", i, ev, bodies[i])
		}
	}
	if evs, err := e.s.LineageEvents(e.ctx, "run_none"); err != nil || evs == nil || len(evs) != 0 {
		t.Errorf("LineageEvents of an unknown run = %#v, %v; want an empty list", evs, err)
	}
	err = e.update(func(tx metastore.Tx) error {
		return tx.PutLineageEvent(e.ctx, "run_a", "START", Epoch, json.RawMessage(`{not json`))
	})
	wantCode(t, err, rhizome.EInvalid, "not JSON")
}

// testRunsInTx checks that run writes roll back with the transaction and
// are visible to the transaction's own reads.
func testRunsInTx(t *testing.T, e *env) {
	boom := fmt.Errorf("boom")
	err := e.update(func(tx metastore.Tx) error {
		r := &rhizome.Run{ID: "run_tx", ProductID: "dp.a", Trigger: rhizome.TriggerManual, State: rhizome.RunQueued}
		if err := tx.PutRun(e.ctx, r); err != nil {
			return err
		}
		if _, err := tx.GetRun(e.ctx, "run_tx"); err != nil {
			return fmt.Errorf("read own write: %w", err)
		}
		if err := tx.AppendRunLog(e.ctx, rhizome.RunLog{RunID: "run_tx", Level: "info", Msg: "x"}); err != nil {
			return err
		}
		return boom
	})
	if err != boom {
		t.Fatalf("Update = %v, want the error of fn", err)
	}
	if _, err := e.s.GetRun(e.ctx, "run_tx"); rhizome.Code(err) != rhizome.ENotFound {
		t.Errorf("GetRun after rollback: %v, want not found", err)
	}
	if logs, _ := e.s.RunLogs(e.ctx, "run_tx", 0); len(logs) != 0 {
		t.Errorf("RunLogs after rollback: %v", logs)
	}
}
