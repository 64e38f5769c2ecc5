package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/table"
)

// The change feed: GET /products/{id}/changes streams Server-Sent Events,
// one "snapshot" event per new snapshot of the product's current version.
// The stream learns of publishes two ways: the Broker, which this
// process's runs (and retention rewrites) notify when they publish, and a
// poll of the table's snapshots every few seconds, for publishes by other
// processes (worker-only nodes sharing the metastore). Either way the
// events come from table.Snapshots, so a resumed stream (Last-Event-ID)
// replays exactly the snapshots it missed.

// Feed timings.
var (
	ChangesPollInterval = 3 * time.Second
	ChangesHeartbeat    = 15 * time.Second
)

// Broker tells change-feed subscribers that a product published.
type Broker struct {
	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{}
}

// NewBroker returns an empty Broker.
func NewBroker() *Broker { return &Broker{subs: map[string]map[chan struct{}]struct{}{}} }

// Notify wakes the subscribers of productID; it never blocks. A nil
// Broker does nothing.
func (b *Broker) Notify(productID string) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs[productID] {
		select {
		case ch <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
}

func (b *Broker) subscribe(productID string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	b.mu.Lock()
	if b.subs[productID] == nil {
		b.subs[productID] = map[chan struct{}]struct{}{}
	}
	b.subs[productID][ch] = struct{}{}
	b.mu.Unlock()
	return ch, func() {
		b.mu.Lock()
		delete(b.subs[productID], ch)
		if len(b.subs[productID]) == 0 {
			delete(b.subs, productID)
		}
		b.mu.Unlock()
	}
}

// ChangeEvent is the data of one "snapshot" event.
type ChangeEvent struct {
	Product    string    `json:"product"`
	Version    string    `json:"version"`
	SnapshotID int64     `json:"snapshot_id"`
	Rows       int64     `json:"rows"`       // the table's rows as of the snapshot
	RowsAdded  int64     `json:"rows_added"` // rows the snapshot wrote: an append's new rows, a replace's all
	Operation  string    `json:"operation"`
	At         time.Time `json:"at"`
}

// CloseStreams ends every open change feed (the server is shutting
// down: http.Server.Shutdown waits for handlers, and a feed never ends on
// its own).
func (s *Server) CloseStreams() {
	s.closeOnce.Do(func() { close(s.closing) })
}

func (s *Server) handleChanges(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	if s.tables == nil {
		s.writeError(w, r, rhizome.Errorf(rhizome.EUnavailable, "no table catalog in this server"))
		return
	}
	if _, err := s.store.Get(r.Context(), rhizome.KindDataProduct, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("last_event_id")
	}
	var lastID int64
	if last != "" {
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil {
			s.writeError(w, r, rhizome.Errorf(rhizome.EInvalid, "Last-Event-ID %q is not a snapshot id", last))
			return
		}
		lastID = n
	}
	wake, unsubscribe := s.broker.subscribe(id) // before the first listing: no publish falls between
	defer unsubscribe()

	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprintf(w, ": changes of %s\nretry: 3000\n\n", id); err != nil {
		return
	}
	_ = rc.Flush()

	seen := map[int64]bool{}
	first := true
	send := func() error {
		version, snaps, err := s.productSnapshots(r, id)
		if err != nil {
			if first && rhizome.Code(err) == rhizome.ENotFound {
				first = false // not published yet: every snapshot to come is new
			}
			return nil // wait for a publish (or for the store to answer)
		}
		start := 0
		if first {
			first = false
			if lastID == 0 {
				// A new subscriber hears of new snapshots only.
				for _, sn := range snaps {
					seen[sn.ID] = true
				}
				return nil
			}
			// Resume after lastID; if it was expired, replay what is kept.
			for i, sn := range snaps {
				if sn.ID == lastID {
					start = i + 1
					for _, old := range snaps[:i+1] {
						seen[old.ID] = true
					}
				}
			}
		}
		rows := map[int64]int64{}
		for _, sn := range snaps {
			rows[sn.ID] = sn.Rows
		}
		for _, sn := range snaps[start:] {
			if seen[sn.ID] {
				continue
			}
			seen[sn.ID] = true
			ev := ChangeEvent{Product: id, Version: version, SnapshotID: sn.ID, Rows: sn.Rows, RowsAdded: sn.Rows, Operation: sn.Operation, At: sn.Time}
			if parent, ok := rows[sn.ParentID]; ok && sn.Operation == "append" {
				ev.RowsAdded = sn.Rows - parent
			}
			data, _ := json.Marshal(ev)
			if _, err := fmt.Fprintf(w, "id: %d\nevent: snapshot\ndata: %s\n\n", sn.ID, data); err != nil {
				return err
			}
		}
		return rc.Flush()
	}
	if err := send(); err != nil {
		return
	}
	poll := time.NewTicker(ChangesPollInterval)
	defer poll.Stop()
	beat := time.NewTicker(ChangesHeartbeat)
	defer beat.Stop()
	for {
		var err error
		select {
		case <-r.Context().Done():
			return
		case <-s.closing:
			return
		case <-wake:
			err = send()
		case <-poll.C:
			err = send()
		case <-beat.C:
			if _, err = fmt.Fprint(w, ": heartbeat\n\n"); err == nil {
				err = rc.Flush()
			}
		}
		if err != nil {
			return // the client went away
		}
	}
}

// productSnapshots lists the snapshots of a product's current version.
func (s *Server) productSnapshots(r *http.Request, id string) (string, []table.Snapshot, error) {
	obj, err := s.store.Get(r.Context(), rhizome.KindDataProduct, id)
	if err != nil {
		return "", nil, err
	}
	var dp rhizome.DataProduct
	if err := json.Unmarshal(obj.Body, &dp); err != nil {
		return "", nil, err
	}
	snaps, err := s.tables.Snapshots(r.Context(), table.RefFor(id, dp.CurrentVersion))
	return dp.CurrentVersion, snaps, err
}
