// Package metastoretest owns the conformance suite that every
// metastore.Store backend must pass, in the manner of River's
// riverdrivertest: a backend's own test calls Run with a constructor, and
// gets the same subtests as every other backend. It also provides Clock, a
// fake clock, so that the suite (and other packages' tests) can assert
// stored times exactly.
package metastoretest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/metastore"
)

// NewStore opens an empty store for one subtest with the given options
// (the suite passes a fake clock). The suite closes the store; anything
// else the backend needs cleaned up, it registers with t.Cleanup.
type NewStore func(t *testing.T, opt metastore.Options) metastore.Store

// Run runs the conformance suite against the backend newStore opens. Each
// subtest gets a fresh, empty store.
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(*testing.T, *env)
	}{
		{"CRUD", testCRUD},
		{"Revisions", testRevisions},
		{"HistoryAfterDelete", testHistoryAfterDelete},
		{"OptimisticConcurrency", testOptimistic},
		{"Atomicity", testAtomicity},
		{"Isolation", testIsolation},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"ConcurrentCreates", testConcurrentCreates},
		{"Invalid", testInvalid},
		{"ListFilters", testListFilters},
		{"ListPagination", testListPagination},
		{"ListLabelsChange", testListLabelsChange},
		{"ProductVersions", testProductVersions},
		{"Principals", testPrincipals},
		{"Tokens", testTokens},
		{"TeamsOf", testTeamsOf},
		{"RunsPutGet", testRunsPutGet},
		{"RunsList", testRunsList},
		{"RunsInTx", testRunsInTx},
		{"RunLogs", testRunLogs},
		{"LineageEvents", testLineageEvents},
		{"Records", testRecords},
		{"RecordsList", testRecordsList},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := NewClock(Epoch)
			s := newStore(t, metastore.Options{Clock: clk})
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			if err := s.Ping(context.Background()); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			tc.fn(t, &env{t: t, s: s, clk: clk, ctx: context.Background()})
		})
	}
}

// Epoch is where the suite's clock starts: nanoseconds and a zone other
// than UTC, so that the suite sees the store cut and convert times.
var Epoch = time.Date(2025, 3, 14, 16, 9, 26, 535897932, time.FixedZone("CET", 3600))

// Clock is a fake rhizome.Clock that moves only when told. It is safe for
// concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock reading t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock by d and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// Stored is t as a store keeps it: UTC, microseconds.
func Stored(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// env is one subtest's store and clock.
type env struct {
	t   *testing.T
	s   metastore.Store
	clk *Clock
	ctx context.Context
}

// now is the clock as the store will record it.
func (e *env) now() time.Time { return Stored(e.clk.Now()) }

// tick advances the clock by a second and a few nanoseconds (which the
// store must cut).
func (e *env) tick() time.Time { return Stored(e.clk.Advance(time.Second + 1234567*time.Nanosecond)) }

func (e *env) update(fn func(metastore.Tx) error) error { return e.s.Update(e.ctx, fn) }

func (e *env) mustUpdate(fn func(metastore.Tx) error) {
	e.t.Helper()
	if err := e.update(fn); err != nil {
		e.t.Fatalf("Update: %v", err)
	}
}

func (e *env) put(o *rhizome.Object, expected int64, actor, applyID string) (int64, error) {
	var rev int64
	err := e.update(func(tx metastore.Tx) error {
		var err error
		rev, err = tx.Put(e.ctx, o, expected, actor, applyID)
		return err
	})
	return rev, err
}

func (e *env) mustPut(o *rhizome.Object, expected int64) int64 {
	e.t.Helper()
	rev, err := e.put(o, expected, "alice@example.com", "")
	if err != nil {
		e.t.Fatalf("Put %s %s (expected %d): %v", o.Kind, o.ID, expected, err)
	}
	return rev
}

func (e *env) del(kind rhizome.Kind, id string, expected int64, actor, applyID string) error {
	return e.update(func(tx metastore.Tx) error {
		return tx.Delete(e.ctx, kind, id, expected, actor, applyID)
	})
}

func (e *env) mustGet(kind rhizome.Kind, id string) *rhizome.Object {
	e.t.Helper()
	o, err := e.s.Get(e.ctx, kind, id)
	if err != nil {
		e.t.Fatalf("Get %s %s: %v", kind, id, err)
	}
	return o
}

func (e *env) mustHistory(kind rhizome.Kind, id string) []rhizome.Revision {
	e.t.Helper()
	h, err := e.s.History(e.ctx, kind, id)
	if err != nil {
		e.t.Fatalf("History %s %s: %v", kind, id, err)
	}
	return h
}

func (e *env) list(opt metastore.ListOptions) *metastore.Page {
	e.t.Helper()
	p, err := e.s.List(e.ctx, opt)
	if err != nil {
		e.t.Fatalf("List %+v: %v", opt, err)
	}
	return p
}

// newObject returns an object whose body has keys out of alphabetical
// order, so that a store that re-encodes the body is caught.
func newObject(kind rhizome.Kind, id string, l rhizome.Labels) *rhizome.Object {
	body := fmt.Sprintf(`{"kind":%q,"name":%q,"zeta":1,"alpha":{"b":2,"a":1}}`, kind, id)
	return &rhizome.Object{Kind: kind, ID: id, Body: json.RawMessage(body), Labels: l}
}

func wantCode(t *testing.T, err error, code rhizome.ErrorCode, contains ...string) {
	t.Helper()
	if got := rhizome.Code(err); got != code {
		t.Fatalf("error %v: code %q, want %q", err, got, code)
	}
	var re *rhizome.Error
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T) is not a *rhizome.Error", err, err)
	}
	for _, s := range contains {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}

func wantTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("%s = %v (%v), want %v UTC", what, got, got.Location(), want)
	}
}

func ids(objs []*rhizome.Object) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = o.ID
	}
	return out
}

func equalStrings(a, b []string) bool { return slices.Equal(a, b) }
