package metastoretest

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/metastore"
)

func testCRUD(t *testing.T, e *env) {
	created := e.now()
	o := newObject(rhizome.KindDataProduct, "dp.customer.360", rhizome.Labels{
		Domain: "customer", OwnerTeam: "customer-team", Sensitivity: "confidential",
		Tags: []string{"pii", "360", "pii"}, Owners: []string{"b", "a"},
	})
	body := string(o.Body)
	rev, err := e.put(o, 0, "alice@example.com", "apply-1")
	if err != nil || rev != 1 {
		t.Fatalf("create: rev %d, err %v; want 1, nil", rev, err)
	}
	// Put fills in what the store decided.
	if o.Revision != 1 || o.UpdatedBy != "alice@example.com" {
		t.Errorf("after Put: revision %d, updated_by %q", o.Revision, o.UpdatedBy)
	}
	wantTime(t, "Put's CreatedAt", o.CreatedAt, created)
	wantTime(t, "Put's UpdatedAt", o.UpdatedAt, created)

	got := e.mustGet(rhizome.KindDataProduct, "dp.customer.360")
	wantLabels := rhizome.Labels{Domain: "customer", OwnerTeam: "customer-team", Sensitivity: "confidential",
		Tags: []string{"360", "pii"}, Owners: []string{"a", "b"}}
	if got.Kind != rhizome.KindDataProduct || got.ID != "dp.customer.360" || got.Revision != 1 {
		t.Errorf("Get = %s %s rev %d", got.Kind, got.ID, got.Revision)
	}
	if string(got.Body) != body {
		t.Errorf("Get body = %s, want exactly %s (key order kept)", got.Body, body)
	}
	if !reflect.DeepEqual(got.Labels, wantLabels) {
		t.Errorf("Get labels = %+v, want %+v (sorted, de-duplicated)", got.Labels, wantLabels)
	}
	wantTime(t, "CreatedAt", got.CreatedAt, created)
	wantTime(t, "UpdatedAt", got.UpdatedAt, created)
	if got.UpdatedBy != "alice@example.com" {
		t.Errorf("UpdatedBy = %q", got.UpdatedBy)
	}

	// Update: CreatedAt stays, UpdatedAt and UpdatedBy move.
	updated := e.tick()
	o2 := newObject(rhizome.KindDataProduct, "dp.customer.360", rhizome.Labels{Domain: "customer"})
	o2.Body = []byte(`{"v":2}`)
	if rev, err := e.put(o2, 1, "bob@example.com", "apply-2"); err != nil || rev != 2 {
		t.Fatalf("update: rev %d, err %v; want 2, nil", rev, err)
	}
	got = e.mustGet(rhizome.KindDataProduct, "dp.customer.360")
	if got.Revision != 2 || string(got.Body) != `{"v":2}` || got.UpdatedBy != "bob@example.com" {
		t.Errorf("after update: rev %d body %s by %q", got.Revision, got.Body, got.UpdatedBy)
	}
	if !reflect.DeepEqual(got.Labels, rhizome.Labels{Domain: "customer"}) {
		t.Errorf("after update: labels %+v", got.Labels)
	}
	wantTime(t, "CreatedAt after update", got.CreatedAt, created)
	wantTime(t, "UpdatedAt after update", got.UpdatedAt, updated)

	// The same id under another kind is another object.
	if _, err := e.s.Get(e.ctx, rhizome.KindDomain, "dp.customer.360"); rhizome.Code(err) != rhizome.ENotFound {
		t.Errorf("Get other kind: %v, want not_found", err)
	}
	e.mustPut(newObject(rhizome.KindDomain, "dp.customer.360", rhizome.Labels{}), 0)
	if got := e.mustGet(rhizome.KindDataProduct, "dp.customer.360"); got.Revision != 2 {
		t.Errorf("a Put of another kind changed the product to revision %d", got.Revision)
	}

	// Delete, then Get and Delete are not found.
	if err := e.del(rhizome.KindDataProduct, "dp.customer.360", 2, "carol@example.com", "apply-3"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err = e.s.Get(e.ctx, rhizome.KindDataProduct, "dp.customer.360")
	wantCode(t, err, rhizome.ENotFound, "dp.customer.360")
	wantCode(t, e.del(rhizome.KindDataProduct, "dp.customer.360", metastore.AnyRevision, "x", ""), rhizome.ENotFound)
	wantCode(t, e.del(rhizome.KindDataProduct, "never", metastore.AnyRevision, "x", ""), rhizome.ENotFound)
	if p := e.list(metastore.ListOptions{Kind: rhizome.KindDataProduct}); len(p.Items) != 0 {
		t.Errorf("List after delete = %v", ids(p.Items))
	}
}

func testRevisions(t *testing.T, e *env) {
	var times []rhizome.Revision
	for i := 1; i <= 3; i++ {
		at := e.tick()
		o := newObject(rhizome.KindTeam, "team-a", rhizome.Labels{})
		o.Body = []byte(fmt.Sprintf(`{"n":%d}`, i))
		actor, applyID := fmt.Sprintf("user%d", i), fmt.Sprintf("apply-%d", i)
		if rev, err := e.put(o, int64(i-1), actor, applyID); err != nil || rev != int64(i) {
			t.Fatalf("put %d: rev %d, err %v", i, rev, err)
		}
		op := rhizome.OpUpdate
		if i == 1 {
			op = rhizome.OpCreate
		}
		times = append(times, rhizome.Revision{Kind: rhizome.KindTeam, ID: "team-a", Revision: int64(i), Op: op,
			Body: o.Body, Actor: actor, At: at, ApplyID: applyID})
	}
	h := e.mustHistory(rhizome.KindTeam, "team-a")
	checkHistory(t, h, times)

	_, err := e.s.History(e.ctx, rhizome.KindTeam, "never")
	wantCode(t, err, rhizome.ENotFound, "never")
}

func checkHistory(t *testing.T, got, want []rhizome.Revision) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("history has %d revisions, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Kind != w.Kind || g.ID != w.ID || g.Revision != w.Revision || g.Op != w.Op ||
			string(g.Body) != string(w.Body) || g.Actor != w.Actor || g.ApplyID != w.ApplyID {
			t.Errorf("history[%d] = %+v (body %s), want %+v (body %s)", i, g, g.Body, w, w.Body)
		}
		wantTime(t, fmt.Sprintf("history[%d].At", i), g.At, w.At)
	}
}

func testHistoryAfterDelete(t *testing.T, e *env) {
	kind, id := rhizome.KindDataContract, "orders-contract"
	o := newObject(kind, id, rhizome.Labels{Tags: []string{"orders"}})
	at1 := e.now()
	e.mustPut(o, 0)
	at2 := e.tick()
	e.mustPut(newObject(kind, id, rhizome.Labels{Tags: []string{"orders"}}), 1)
	at3 := e.tick()
	if err := e.del(kind, id, metastore.AnyRevision, "bob", "apply-del"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	want := []rhizome.Revision{
		{Kind: kind, ID: id, Revision: 1, Op: rhizome.OpCreate, Body: o.Body, Actor: "alice@example.com", At: at1},
		{Kind: kind, ID: id, Revision: 2, Op: rhizome.OpUpdate, Body: o.Body, Actor: "alice@example.com", At: at2},
		{Kind: kind, ID: id, Revision: 3, Op: rhizome.OpDelete, Actor: "bob", At: at3, ApplyID: "apply-del"},
	}
	checkHistory(t, e.mustHistory(kind, id), want)
	if p := e.list(metastore.ListOptions{Kind: kind, Tag: "orders"}); len(p.Items) != 0 {
		t.Errorf("List by tag after delete = %v", ids(p.Items))
	}

	// A re-create continues the numbering, so history stays monotonic; the
	// object's CreatedAt is the re-create's.
	at4 := e.tick()
	o4 := newObject(kind, id, rhizome.Labels{})
	// After a delete, "must not exist" holds again.
	if rev, err := e.put(o4, 0, "carol", "apply-4"); err != nil || rev != 4 {
		t.Fatalf("re-create: rev %d, err %v; want 4", rev, err)
	}
	got := e.mustGet(kind, id)
	if got.Revision != 4 {
		t.Errorf("re-created revision = %d, want 4", got.Revision)
	}
	wantTime(t, "re-created CreatedAt", got.CreatedAt, at4)
	want = append(want, rhizome.Revision{Kind: kind, ID: id, Revision: 4, Op: rhizome.OpCreate, Body: o4.Body, Actor: "carol", At: at4, ApplyID: "apply-4"})
	checkHistory(t, e.mustHistory(kind, id), want)
}

func testOptimistic(t *testing.T, e *env) {
	kind, id := rhizome.KindDataProduct, "dp.orders"
	e.mustPut(newObject(kind, id, rhizome.Labels{Domain: "sales"}), 0)
	e.mustPut(newObject(kind, id, rhizome.Labels{Domain: "sales"}), 1)
	before := e.mustGet(kind, id)
	e.tick()

	stale := newObject(kind, id, rhizome.Labels{Domain: "other"})
	stale.Body = []byte(`{"stale":true}`)
	_, err := e.put(stale, 1, "mallory", "")
	wantCode(t, err, rhizome.EConflict, id, "revision 2", "expected revision 1")
	_, err = e.put(stale, 0, "mallory", "")
	wantCode(t, err, rhizome.EConflict, id, "already exists")
	_, err = e.put(newObject(kind, "dp.absent", rhizome.Labels{}), 3, "mallory", "")
	wantCode(t, err, rhizome.EConflict, "dp.absent", "does not exist")
	wantCode(t, e.del(kind, id, 1, "mallory", ""), rhizome.EConflict, "revision 2", "expected revision 1")

	// Nothing was written by the failed calls.
	after := e.mustGet(kind, id)
	if after.Revision != 2 || string(after.Body) != string(before.Body) || after.Labels.Domain != "sales" ||
		!after.UpdatedAt.Equal(before.UpdatedAt) {
		t.Errorf("a conflicting write changed the object: %+v", after)
	}
	if h := e.mustHistory(kind, id); len(h) != 2 {
		t.Errorf("history has %d revisions after conflicts, want 2", len(h))
	}
	if _, err := e.s.History(e.ctx, kind, "dp.absent"); rhizome.Code(err) != rhizome.ENotFound {
		t.Errorf("a conflicting create left history: %v", err)
	}
	if p := e.list(metastore.ListOptions{Kind: kind, Domain: "other"}); len(p.Items) != 0 {
		t.Errorf("a conflicting write changed the labels index: %v", ids(p.Items))
	}

	// AnyRevision skips the check, on create and update.
	if rev, err := e.put(newObject(kind, "dp.any", rhizome.Labels{}), metastore.AnyRevision, "x", ""); err != nil || rev != 1 {
		t.Errorf("create with AnyRevision: rev %d, err %v", rev, err)
	}
	if rev, err := e.put(newObject(kind, id, rhizome.Labels{}), metastore.AnyRevision, "x", ""); err != nil || rev != 3 {
		t.Errorf("update with AnyRevision: rev %d, err %v", rev, err)
	}
	if err := e.del(kind, id, 3, "x", ""); err != nil {
		t.Errorf("Delete with the current revision: %v", err)
	}
}

func testAtomicity(t *testing.T, e *env) {
	kind := rhizome.KindDataProduct
	e.mustPut(newObject(kind, "dp.kept", rhizome.Labels{Tags: []string{"t"}}), 0)

	boom := errors.New("boom")
	err := e.update(func(tx metastore.Tx) error {
		if _, err := tx.Put(e.ctx, newObject(kind, "dp.a", rhizome.Labels{Tags: []string{"t"}}), 0, "x", ""); err != nil {
			return err
		}
		if _, err := tx.Put(e.ctx, newObject(kind, "dp.kept", rhizome.Labels{}), 1, "x", ""); err != nil {
			return err
		}
		if err := tx.Delete(e.ctx, kind, "dp.kept", 2, "x", ""); err != nil {
			return err
		}
		if err := tx.PutPrincipal(e.ctx, &rhizome.Principal{ID: "p", Kind: rhizome.PrincipalUser}); err != nil {
			return err
		}
		// The transaction reads its own writes.
		if _, err := tx.Get(e.ctx, kind, "dp.a"); err != nil {
			return fmt.Errorf("read own write: %w", err)
		}
		return boom
	})
	if err != boom {
		t.Fatalf("Update returned %v, want fn's error as is", err)
	}
	if _, err := e.s.Get(e.ctx, kind, "dp.a"); rhizome.Code(err) != rhizome.ENotFound {
		t.Errorf("rolled-back create is visible: %v", err)
	}
	if _, err := e.s.History(e.ctx, kind, "dp.a"); rhizome.Code(err) != rhizome.ENotFound {
		t.Errorf("rolled-back create left history: %v", err)
	}
	if got := e.mustGet(kind, "dp.kept"); got.Revision != 1 || len(got.Labels.Tags) != 1 {
		t.Errorf("rolled-back update and delete are visible: %+v", got)
	}
	if p := e.list(metastore.ListOptions{Kind: kind, Tag: "t"}); !equalStrings(ids(p.Items), []string{"dp.kept"}) {
		t.Errorf("List by tag after rollback = %v", ids(p.Items))
	}
	if _, err := e.s.GetPrincipal(e.ctx, "p"); rhizome.Code(err) != rhizome.ENotFound {
		t.Errorf("rolled-back principal is visible: %v", err)
	}

	// A failed Put half-way (a conflict) that fn returns rolls back the
	// writes before it.
	err = e.update(func(tx metastore.Tx) error {
		if _, err := tx.Put(e.ctx, newObject(kind, "dp.b", rhizome.Labels{}), 0, "x", ""); err != nil {
			return err
		}
		_, err := tx.Put(e.ctx, newObject(kind, "dp.kept", rhizome.Labels{}), 7, "x", "")
		return err
	})
	wantCode(t, err, rhizome.EConflict)
	if _, err := e.s.Get(e.ctx, kind, "dp.b"); rhizome.Code(err) != rhizome.ENotFound {
		t.Errorf("write before a conflict is visible: %v", err)
	}

	// A panic in fn rolls back, propagates, and leaves the store usable.
	func() {
		defer func() {
			if r := recover(); r != "fn panicked" {
				t.Errorf("recovered %v, want the panic from fn", r)
			}
		}()
		_ = e.update(func(tx metastore.Tx) error {
			if _, err := tx.Put(e.ctx, newObject(kind, "dp.c", rhizome.Labels{}), 0, "x", ""); err != nil {
				return err
			}
			panic("fn panicked")
		})
	}()
	if _, err := e.s.Get(e.ctx, kind, "dp.c"); rhizome.Code(err) != rhizome.ENotFound {
		t.Errorf("write before a panic is visible: %v", err)
	}
	e.mustPut(newObject(kind, "dp.after-panic", rhizome.Labels{}), 0)
}

func testIsolation(t *testing.T, e *env) {
	kind := rhizome.KindDataProduct
	e.mustUpdate(func(tx metastore.Tx) error {
		if _, err := tx.Put(e.ctx, newObject(kind, "dp.new", rhizome.Labels{}), 0, "x", ""); err != nil {
			return err
		}
		if _, err := e.s.Get(e.ctx, kind, "dp.new"); rhizome.Code(err) != rhizome.ENotFound {
			t.Errorf("an uncommitted write is visible outside the transaction: %v", err)
		}
		if p, err := tx.List(e.ctx, metastore.ListOptions{Kind: kind}); err != nil || len(p.Items) != 1 {
			t.Errorf("List in the transaction: %v, %v", p, err)
		}
		return nil
	})
	e.mustGet(kind, "dp.new")
}

// testConcurrentUpdates: eight writers read revision 1 and all try to
// write revision 2. Exactly one may succeed; the others get EConflict
// and write nothing.
func testConcurrentUpdates(t *testing.T, e *env) {
	kind, id := rhizome.KindDataProduct, "dp.hot"
	e.mustPut(newObject(kind, id, rhizome.Labels{}), 0)
	meet := newBarrier(8)
	errs := race(8, func(i int) error {
		o := newObject(kind, id, rhizome.Labels{Tags: []string{fmt.Sprint("w", i)}})
		return e.update(func(tx metastore.Tx) error {
			// Everyone reads revision 1 before anyone writes.
			if _, err := tx.Get(e.ctx, kind, id); err != nil {
				return err
			}
			meet.wait()
			_, err := tx.Put(e.ctx, o, 1, fmt.Sprint("writer", i), "")
			return err
		})
	})
	winner := checkOneWinner(t, errs)
	got := e.mustGet(kind, id)
	if got.Revision != 2 || got.UpdatedBy != fmt.Sprint("writer", winner) {
		t.Errorf("after the race: revision %d by %q, want 2 by writer%d", got.Revision, got.UpdatedBy, winner)
	}
	if !equalStrings(got.Labels.Tags, []string{fmt.Sprint("w", winner)}) {
		t.Errorf("after the race: tags %v", got.Labels.Tags)
	}
	if h := e.mustHistory(kind, id); len(h) != 2 {
		t.Errorf("history has %d revisions, want 2", len(h))
	}
}

func testConcurrentCreates(t *testing.T, e *env) {
	kind, id := rhizome.KindDomain, "customer"
	meet := newBarrier(8)
	errs := race(8, func(i int) error {
		return e.update(func(tx metastore.Tx) error {
			// Not found, or found when a backend runs fn again after a
			// serialization failure.
			if _, err := tx.Get(e.ctx, kind, id); err != nil && rhizome.Code(err) != rhizome.ENotFound {
				return err
			}
			meet.wait()
			_, err := tx.Put(e.ctx, newObject(kind, id, rhizome.Labels{}), 0, fmt.Sprint("writer", i), "")
			return err
		})
	})
	winner := checkOneWinner(t, errs)
	if got := e.mustGet(kind, id); got.Revision != 1 || got.UpdatedBy != fmt.Sprint("writer", winner) {
		t.Errorf("after the race: revision %d by %q", got.Revision, got.UpdatedBy)
	}
	if h := e.mustHistory(kind, id); len(h) != 1 {
		t.Errorf("history has %d revisions, want 1", len(h))
	}
}

// barrier lets transactions that can run at once (Postgres) meet after
// their reads, so that their writes really collide. Where transactions
// run one at a time (SQLite), nobody else can arrive, so each waits only
// briefly, and the test still checks the outcome.
type barrier struct {
	mu   sync.Mutex
	n    int
	done chan struct{}
}

func newBarrier(n int) *barrier { return &barrier{n: n, done: make(chan struct{})} }

func (b *barrier) wait() {
	b.mu.Lock()
	b.n--
	if b.n == 0 {
		close(b.done)
	}
	b.mu.Unlock()
	select {
	case <-b.done:
	case <-time.After(50 * time.Millisecond):
	}
}

// race runs n calls of fn at once (as near as goroutines allow).
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

func checkOneWinner(t *testing.T, errs []error) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("writers %d and %d both succeeded", winner, i)
		case err == nil:
			winner = i
		case rhizome.Code(err) != rhizome.EConflict:
			t.Errorf("writer %d: %v, want a conflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no writer succeeded: %v", errs)
	}
	return winner
}

func testInvalid(t *testing.T, e *env) {
	_, err := e.put(&rhizome.Object{Kind: rhizome.KindTeam, Body: []byte(`{}`)}, 0, "x", "")
	wantCode(t, err, rhizome.EInvalid)
	_, err = e.put(&rhizome.Object{ID: "x", Body: []byte(`{}`)}, 0, "x", "")
	wantCode(t, err, rhizome.EInvalid)
	_, err = e.put(&rhizome.Object{Kind: rhizome.KindTeam, ID: "x", Body: []byte(`{not json`)}, 0, "x", "")
	wantCode(t, err, rhizome.EInvalid, "JSON")
	_, err = e.put(newObject(rhizome.KindTeam, "x", rhizome.Labels{}), -7, "x", "")
	wantCode(t, err, rhizome.EInvalid)
	_, err = e.s.List(e.ctx, metastore.ListOptions{})
	wantCode(t, err, rhizome.EInvalid, "kind")
	_, err = e.s.List(e.ctx, metastore.ListOptions{Kind: rhizome.KindTeam, Limit: -1})
	wantCode(t, err, rhizome.EInvalid, "limit")
}
