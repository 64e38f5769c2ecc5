package stream

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/rhizome-mesh/rhizome"
)

// Default micro-batch thresholds, as the stream connector documents them.
const (
	DefaultInterval       = 10 * time.Second
	DefaultRows     int64 = 10000
)

// PortConfig is a product's stream input port and its micro-batch
// thresholds: a run is due when Rows rows are pending or the oldest
// pending batch is Interval old.
type PortConfig struct {
	Port     string
	Interval time.Duration // <= 0: DefaultInterval
	Rows     int64         // <= 0: DefaultRows
}

// Flusher queues a run of a product when its pending batches reach a
// threshold. It only asks: the run, claiming the spool, does the work, and
// enqueue's key keeps repeated asks for the same pending set to one run.
type Flusher struct {
	spool   *Spool
	enqueue func(ctx context.Context, productID, key string) error
	clock   rhizome.Clock

	mu     sync.Mutex
	ports  map[string]PortConfig
	kicked map[string]bool
	kick   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

// NewFlusher returns a Flusher that calls enqueue for due products. The
// error enqueue returns is Tick's; enqueue should log it.
func NewFlusher(spool *Spool, enqueue func(ctx context.Context, productID, key string) error, clock rhizome.Clock) *Flusher {
	if clock == nil {
		clock = rhizome.SystemClock{}
	}
	return &Flusher{spool: spool, enqueue: enqueue, clock: clock, ports: map[string]PortConfig{},
		kicked: map[string]bool{}, kick: make(chan struct{}, 1)}
}

// SetPorts replaces the products the Flusher watches: product id to its
// stream input port.
func (f *Flusher) SetPorts(ports map[string]PortConfig) {
	m := make(map[string]PortConfig, len(ports))
	for id, pc := range ports {
		if pc.Interval <= 0 {
			pc.Interval = DefaultInterval
		}
		if pc.Rows <= 0 {
			pc.Rows = DefaultRows
		}
		m[id] = pc
	}
	f.mu.Lock()
	f.ports = m
	f.mu.Unlock()
}

// Notify says a batch was put for the product: when the Flusher is
// started, it checks the row threshold at once rather than at the next
// second's tick.
func (f *Flusher) Notify(productID string) {
	f.mu.Lock()
	f.kicked[productID] = true
	f.mu.Unlock()
	select {
	case f.kick <- struct{}{}:
	default: // a kick is already waiting; it will see this product
	}
}

// Tick checks every watched product at now and queues a run for each one
// that is due.
func (f *Flusher) Tick(ctx context.Context, now time.Time) error {
	f.mu.Lock()
	ids := make([]string, 0, len(f.ports))
	for id := range f.ports {
		ids = append(ids, id)
	}
	f.mu.Unlock()
	sort.Strings(ids)
	return f.check(ctx, ids, now)
}

func (f *Flusher) check(ctx context.Context, ids []string, now time.Time) error {
	var errs []error
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		f.mu.Lock()
		pc, ok := f.ports[id]
		f.mu.Unlock()
		if !ok {
			continue
		}
		files, rows, oldest, err := f.spool.Pending(id, pc.Port)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(files) == 0 || (rows < pc.Rows && now.Sub(oldest) < pc.Interval) {
			continue
		}
		if err := f.enqueue(ctx, id, f.key(id, pc.Port, files[0])); err != nil {
			errs = append(errs, fmt.Errorf("stream: queueing a run of %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// key names the pending set by its first batch: until a run claims that
// batch, every ask is the same run. A batch a failed run handed back
// counts its releases in the key, so that it gets a new run.
func (f *Flusher) key(productID, port, first string) string {
	id := BatchOf(first)
	k := "push:" + productID + ":" + id
	if n := f.spool.released(productID, port, id); n > 0 {
		k += fmt.Sprintf(":retry%d", n)
	}
	return k
}

// Start runs Tick every second, and a check of each notified product as
// it is notified, until Stop or ctx ends.
func (f *Flusher) Start(ctx context.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done != nil {
		return
	}
	ctx, f.cancel = context.WithCancel(ctx)
	f.done = make(chan struct{})
	go f.loop(ctx, f.done)
}

func (f *Flusher) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = f.Tick(ctx, f.clock.Now()) // enqueue logs its own errors
		case <-f.kick:
			f.mu.Lock()
			ids := make([]string, 0, len(f.kicked))
			for id := range f.kicked {
				ids = append(ids, id)
			}
			clear(f.kicked)
			f.mu.Unlock()
			sort.Strings(ids)
			_ = f.check(ctx, ids, f.clock.Now())
		}
	}
}

// Stop ends the goroutine Start began and waits for it.
func (f *Flusher) Stop() {
	f.mu.Lock()
	cancel, done := f.cancel, f.done
	f.cancel, f.done = nil, nil
	f.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}
