package stream_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rhizome-mesh/rhizome/stream"
)

// runs records enqueue calls and dedupes keys as jobs.Enqueue does.
type runs struct {
	mu    sync.Mutex
	calls []string
	runs  map[string]bool
	err   error
}

func (r *runs) enqueue(_ context.Context, productID, key string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	if r.runs == nil {
		r.runs = map[string]bool{}
	}
	r.calls = append(r.calls, productID+" "+key)
	r.runs[productID+" "+key] = true
	return nil
}

func (r *runs) got() ([]string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls), len(r.runs)
}

func rowsBody(n int) string { return strings.Repeat("{\"a\":1}\n", n) }

func TestFlusherTriggersOnRows(t *testing.T) {
	c := newClock()
	s, _ := open(t, c)
	var r runs
	f := stream.NewFlusher(s, r.enqueue, c)
	f.SetPorts(map[string]stream.PortConfig{product: {Port: port, Interval: time.Minute, Rows: 5}})
	ctx := context.Background()

	put(t, s, "b1", rowsBody(3))
	if err := f.Tick(ctx, c.Now()); err != nil {
		t.Fatal(err)
	}
	if calls, _ := r.got(); len(calls) != 0 {
		t.Fatalf("3 of 5 rows triggered %v", calls)
	}
	put(t, s, "b2", rowsBody(2))
	for range 2 { // a repeated trigger asks for the same run
		if err := f.Tick(ctx, c.Now()); err != nil {
			t.Fatal(err)
		}
	}
	calls, distinct := r.got()
	if !slices.Equal(calls, []string{product + " push:dp.clicks:b1", product + " push:dp.clicks:b1"}) || distinct != 1 {
		t.Fatalf("calls = %v (%d runs)", calls, distinct)
	}

	// Once a run claims and commits them, the next pending set is a new run.
	if _, err := s.Claim(product, port, "run_1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit("run_1"); err != nil {
		t.Fatal(err)
	}
	put(t, s, "b3", rowsBody(5))
	if err := f.Tick(ctx, c.Now()); err != nil {
		t.Fatal(err)
	}
	if calls, distinct := r.got(); calls[len(calls)-1] != product+" push:dp.clicks:b3" || distinct != 2 {
		t.Errorf("calls = %v", calls)
	}
}

func TestFlusherTriggersOnInterval(t *testing.T) {
	c := newClock()
	s, _ := open(t, c)
	var r runs
	f := stream.NewFlusher(s, r.enqueue, c)
	f.SetPorts(map[string]stream.PortConfig{product: {Port: port, Interval: 10 * time.Second, Rows: 1000}})
	ctx := context.Background()

	if err := f.Tick(ctx, c.Now()); err != nil { // nothing pending
		t.Fatal(err)
	}
	put(t, s, "b1", rowsBody(1))
	c.Add(5 * time.Second)
	put(t, s, "b2", rowsBody(1))
	if err := f.Tick(ctx, c.Add(4*time.Second)); err != nil {
		t.Fatal(err)
	}
	if calls, _ := r.got(); len(calls) != 0 {
		t.Fatalf("triggered before the interval: %v", calls)
	}
	if err := f.Tick(ctx, c.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if calls, _ := r.got(); !slices.Equal(calls, []string{product + " push:dp.clicks:b1"}) {
		t.Fatalf("calls = %v", calls)
	}

	// A failed run hands the batches back: the same first batch, a new key.
	if _, err := s.Claim(product, port, "run_1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Release("run_1"); err != nil {
		t.Fatal(err)
	}
	if err := f.Tick(ctx, c.Now()); err != nil {
		t.Fatal(err)
	}
	if calls, _ := r.got(); calls[len(calls)-1] != product+" push:dp.clicks:b1:retry1" {
		t.Errorf("calls = %v", calls)
	}
}

func TestFlusherReportsEnqueueErrors(t *testing.T) {
	c := newClock()
	s, _ := open(t, c)
	r := runs{err: errors.New("queue down")}
	f := stream.NewFlusher(s, r.enqueue, c)
	f.SetPorts(map[string]stream.PortConfig{product: {Port: port, Rows: 1}})
	put(t, s, "b1", rowsBody(1))
	if err := f.Tick(context.Background(), c.Now()); err == nil || !strings.Contains(err.Error(), "queue down") {
		t.Errorf("Tick = %v, want the enqueue error", err)
	}
}

func TestFlusherNotifyAndStop(t *testing.T) {
	c := newClock()
	s, _ := open(t, c)
	var r runs
	f := stream.NewFlusher(s, r.enqueue, c)
	f.SetPorts(map[string]stream.PortConfig{product: {Port: port, Interval: time.Hour, Rows: 2}})
	f.Start(context.Background())
	defer f.Stop()
	put(t, s, "b1", rowsBody(2))
	f.Notify(product)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if calls, _ := r.got(); len(calls) > 0 {
			if calls[0] != product+" push:dp.clicks:b1" {
				t.Errorf("calls = %v", calls)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Notify did not trigger a run")
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.Stop()
	f.Stop() // twice is fine; goleak checks nothing is left
}
