package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/metastore"
)

// Collections the log writes.
const (
	Collection     = "audit"
	HeadCollection = "audit.head"
	headID         = "head"
)

// Options configure a Log.
type Options struct {
	Store  metastore.Store
	Clock  rhizome.Clock
	Logger *slog.Logger
	// MaxBatch bounds the entries one transaction appends (default 256).
	MaxBatch int
}

// Log is the audit log over a metastore; it implements Recorder.
type Log struct {
	store    metastore.Store
	clock    rhizome.Clock
	log      *slog.Logger
	maxBatch int

	mu     sync.RWMutex // guards closed against sends on reqs
	closed bool
	reqs   chan *pending
	done   chan struct{}
}

var _ Recorder = (*Log)(nil)

type pending struct {
	e    Entry
	err  chan error // buffered: the writer never blocks on it
	sync bool       // a Flush barrier: no entry
}

// Open starts a Log's writer; Close stops it.
func Open(opt Options) *Log {
	if opt.Clock == nil {
		opt.Clock = rhizome.SystemClock{}
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.MaxBatch <= 0 {
		opt.MaxBatch = 256
	}
	l := &Log{store: opt.Store, clock: opt.Clock, log: opt.Logger, maxBatch: opt.MaxBatch,
		reqs: make(chan *pending, 4*opt.MaxBatch), done: make(chan struct{})}
	go l.writer()
	return l
}

// Record appends e to the chain and returns once it is committed (see
// the package doc). If ctx ends first Record returns its error, and the
// entry may still be written.
func (l *Log) Record(ctx context.Context, e Entry) error {
	if e.Actor == "" || e.Action == "" {
		return rhizome.Errorf(rhizome.EInvalid, "audit: an entry needs an actor and an action")
	}
	if e.Decision != Allow && e.Decision != Deny {
		return rhizome.Errorf(rhizome.EInvalid, "audit: decision %q", e.Decision).WithHint(`want "allow" or "deny"`)
	}
	if e.At.IsZero() {
		e.At = l.clock.Now()
	}
	if err := canonicalize(&e); err != nil {
		return err
	}
	return l.send(ctx, &pending{e: e, err: make(chan error, 1)})
}

// Flush returns once every entry recorded before it is committed.
func (l *Log) Flush(ctx context.Context) error {
	return l.send(ctx, &pending{sync: true, err: make(chan error, 1)})
}

func (l *Log) send(ctx context.Context, p *pending) error {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return rhizome.Errorf(rhizome.EUnavailable, "audit: the log is closed")
	}
	select {
	case l.reqs <- p:
		l.mu.RUnlock()
	case <-ctx.Done():
		l.mu.RUnlock()
		return rhizome.Wrap(ctx.Err(), "audit: queueing an entry")
	}
	select {
	case err := <-p.err:
		return err
	case <-ctx.Done():
		return rhizome.Wrap(ctx.Err(), "audit: waiting for an entry to commit")
	}
}

// Close writes the entries queued so far and stops the writer.
func (l *Log) Close() error {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.reqs)
	}
	l.mu.Unlock()
	<-l.done
	return nil
}

// writer commits batches: each holds what queued while the last ran.
func (l *Log) writer() {
	defer close(l.done)
	for first := range l.reqs {
		batch := []*pending{first}
	fill:
		for len(batch) < l.maxBatch {
			select {
			case p, ok := <-l.reqs:
				if !ok {
					break fill
				}
				batch = append(batch, p)
			default:
				break fill
			}
		}
		err := l.commit(batch)
		for _, p := range batch {
			p.err <- err
		}
	}
}

func (l *Log) commit(batch []*pending) error {
	var entries []Entry
	for _, p := range batch {
		if !p.sync {
			entries = append(entries, p.e)
		}
	}
	if len(entries) == 0 {
		return nil
	}
	// The entries were accepted: a caller that gave up waiting must not
	// cancel the append of the others.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := l.store.Update(ctx, func(tx metastore.Tx) error {
		pos, prev, err := tip(ctx, tx)
		if err != nil {
			return err
		}
		for _, e := range entries {
			pos++
			e.Seq, e.PrevHash = pos, prev
			e.Hash = ""
			e.Hash, err = hashOf(e)
			if err != nil {
				return err
			}
			body, err := json.Marshal(e)
			if err != nil {
				return rhizome.Wrap(err, "audit: encoding entry %d", pos)
			}
			if err := tx.InsertRecord(ctx, &metastore.Record{Collection: Collection, ID: PositionID(pos),
				ProductID: e.ProductID, Subject: e.Actor, State: e.Decision, At: e.At, Body: body}); err != nil {
				return err
			}
			prev = e.Hash
		}
		head, _ := json.Marshal(headBody{Seq: pos, Hash: prev})
		return tx.PutRecord(ctx, &metastore.Record{Collection: HeadCollection, ID: headID, At: l.clock.Now(), Body: head})
	})
	if err != nil {
		l.log.Error("audit: appending entries failed", "entries", len(entries), "err", err)
		return rhizome.Wrap(err, "audit: appending %d entries", len(entries))
	}
	return nil
}

type headBody struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// tip returns the chain's last position and hash (0, "" when empty).
func tip(ctx context.Context, tx metastore.RecordReader) (int64, string, error) {
	last, err := tx.LastRecord(ctx, Collection)
	if rhizome.Code(err) == rhizome.ENotFound {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", err
	}
	e, err := decode(last.Body)
	if err != nil {
		return 0, "", rhizome.Wrap(err, "audit: the last entry (%s) is unreadable; run `rhizome audit verify`", last.ID)
	}
	return e.Seq, e.Hash, nil
}

// PositionID is the record id of chain position n: zero-padded so that
// ids sort as positions do.
func PositionID(n int64) string { return fmt.Sprintf("%012d", n) }

// canonicalize gives e the form it has after a JSON round trip (UTC at
// microseconds, as the store keeps At; Details as plain JSON values), so
// that the hash computed now is the one Verify computes from the body.
func canonicalize(e *Entry) error {
	e.At = e.At.UTC().Truncate(time.Microsecond)
	if len(e.Details) == 0 {
		e.Details = nil
		return nil
	}
	b, err := json.Marshal(e.Details)
	if err != nil {
		return rhizome.Errorf(rhizome.EInvalid, "audit: details are not JSON: %v", err)
	}
	var d map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&d); err != nil {
		return rhizome.Wrap(err, "audit: details")
	}
	e.Details = d
	return nil
}

// hashOf is sha256(PrevHash || JSON of e with Hash empty), hex.
func hashOf(e Entry) (string, error) {
	e.Hash = ""
	b, err := json.Marshal(e)
	if err != nil {
		return "", rhizome.Wrap(err, "audit: encoding entry %d", e.Seq)
	}
	h := sha256.New()
	h.Write([]byte(e.PrevHash))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)), nil
}

func decode(body []byte) (Entry, error) {
	var e Entry
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	err := dec.Decode(&e)
	return e, err
}

// Verification is what Verify found.
type Verification struct {
	OK      bool   `json:"ok"`
	Entries int64  `json:"entries"` // entries checked
	Head    string `json:"head,omitempty"`
	// BrokenAt is the first position whose link is broken (0 when OK).
	BrokenAt int64  `json:"broken_at,omitempty"`
	Problem  string `json:"problem,omitempty"`
}

// Verify walks the chain from position 1 and reports the first broken
// link: an entry whose body or indexed fields were edited, a missing
// position, entries out of order, or a chain that ends before the head
// the log last wrote.
func (l *Log) Verify(ctx context.Context) (*Verification, error) {
	v := &Verification{}
	broken := func(pos int64, format string, args ...any) (*Verification, error) {
		v.BrokenAt, v.Problem = pos, fmt.Sprintf(format, args...)
		return v, nil
	}
	// The head first: entries appended while we walk come after it.
	var head *headBody
	hr, err := l.store.GetRecord(ctx, HeadCollection, headID)
	switch {
	case rhizome.Code(err) == rhizome.ENotFound:
	case err != nil:
		return nil, err
	default:
		head = new(headBody)
		if err := json.Unmarshal(hr.Body, head); err != nil {
			return broken(1, "the chain's head record is unreadable")
		}
	}
	var (
		pos   int64
		prev  string
		after int64
	)
	for {
		recs, err := l.store.ListRecords(ctx, metastore.RecordQuery{Collection: Collection, AfterSeq: after, Limit: 5000})
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			after = r.Seq
			want := pos + 1
			e, err := decode(r.Body)
			if err != nil {
				return broken(want, "entry %s: the body is not an audit entry: %v", r.ID, err)
			}
			n, idErr := strconv.ParseInt(r.ID, 10, 64)
			switch {
			case idErr != nil:
				return broken(want, "record %q is not a chain position", r.ID)
			case n > want:
				return broken(want, "entry %d is missing (the next stored entry is %d)", want, n)
			case n < want:
				return broken(n, "entry %d is out of order (found after entry %d)", n, pos)
			case e.Seq != n:
				return broken(n, "entry %d's body says position %d: bodies were moved", n, e.Seq)
			case e.PrevHash != prev:
				return broken(n, "entry %d does not link to entry %d (prev_hash differs)", n, pos)
			}
			h, err := hashOf(e)
			if err != nil {
				return nil, err
			}
			switch {
			case h != e.Hash:
				return broken(n, "entry %d was edited: its hash does not match its content", n)
			case r.Subject != e.Actor || r.ProductID != e.ProductID || r.State != e.Decision || !r.At.Equal(e.At):
				return broken(n, "entry %d's indexed fields (actor, product, decision, time) differ from its content", n)
			}
			if head != nil && n == head.Seq && e.Hash != head.Hash {
				return broken(n, "entry %d differs from the head the log recorded", n)
			}
			pos, prev = n, e.Hash
			v.Entries++
		}
		if len(recs) < 5000 {
			break
		}
	}
	if head == nil && pos > 0 {
		// Entries may have come since the head was read (in the same
		// transactions as the head): look again.
		if _, err := l.store.GetRecord(ctx, HeadCollection, headID); rhizome.Code(err) == rhizome.ENotFound {
			return broken(pos, "the chain's head record is missing")
		} else if err != nil {
			return nil, err
		}
	}
	switch {
	case head != nil && head.Seq > pos:
		return broken(pos+1, "entries %d..%d are missing: the log's head is at %d", pos+1, head.Seq, head.Seq)
	}
	v.OK, v.Head = true, prev
	return v, nil
}

// Filter selects entries. Empty fields do not filter.
type Filter struct {
	ProductID string
	Principal string
	Action    string // exact, or a prefix ending in "*" or "." ("access.")
	Decision  string
	// Since <= At < Until.
	Since, Until time.Time
	// Cursor continues a Query (Page.Next).
	Cursor string
	// Limit is the page size: default 100, at most 1000.
	Limit int
}

// Page is one page of entries, newest first.
type Page struct {
	Items []Entry `json:"items"`
	Next  string  `json:"next,omitempty"`
}

func (f Filter) query(desc bool) (metastore.RecordQuery, error) {
	q := metastore.RecordQuery{Collection: Collection, ProductID: f.ProductID, Subject: f.Principal,
		State: f.Decision, Since: f.Since, Until: f.Until, Desc: desc}
	if f.Cursor != "" {
		n, err := strconv.ParseInt(f.Cursor, 10, 64)
		if err != nil || n <= 0 {
			return q, rhizome.Errorf(rhizome.EInvalid, "audit: cursor %q is not one this API gave", f.Cursor)
		}
		q.AfterSeq = n
	}
	return q, nil
}

func (f Filter) matches(e *Entry) bool {
	if f.Action == "" {
		return true
	}
	if p, ok := strings.CutSuffix(f.Action, "*"); ok {
		return strings.HasPrefix(e.Action, p)
	}
	if strings.HasSuffix(f.Action, ".") {
		return strings.HasPrefix(e.Action, f.Action)
	}
	return e.Action == f.Action
}

// Query returns one page of the entries f selects, newest first.
func (l *Log) Query(ctx context.Context, f Filter) (*Page, error) {
	limit := f.Limit
	switch {
	case limit < 0:
		return nil, rhizome.Errorf(rhizome.EInvalid, "audit: limit %d is negative", limit)
	case limit == 0:
		limit = 100
	case limit > 1000:
		limit = 1000
	}
	q, err := f.query(true)
	if err != nil {
		return nil, err
	}
	page := &Page{Items: []Entry{}}
	// The action is not indexed: scan pages of records until the page is
	// full or the records end.
	for scanned := 0; ; {
		q.Limit = max(limit, 200)
		recs, err := l.store.ListRecords(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			q.AfterSeq = r.Seq
			e, err := decode(r.Body)
			if err != nil {
				continue
			}
			if !f.matches(&e) {
				continue
			}
			page.Items = append(page.Items, e)
			if len(page.Items) == limit {
				page.Next = strconv.FormatInt(r.Seq, 10)
				return page, nil
			}
		}
		scanned += len(recs)
		if len(recs) < q.Limit {
			return page, nil
		}
		if scanned >= 50000 {
			// Bound one request's work; the caller continues from here.
			page.Next = strconv.FormatInt(q.AfterSeq, 10)
			return page, nil
		}
	}
}

// Export writes the entries f selects as JSON lines, oldest first, each
// the stored body (so an exported line verifies against its hash), and
// returns how many it wrote. Cursor and Limit are ignored.
func (l *Log) Export(ctx context.Context, w io.Writer, f Filter) (int64, error) {
	f.Cursor = ""
	q, err := f.query(false)
	if err != nil {
		return 0, err
	}
	var n int64
	for {
		q.Limit = 5000
		recs, err := l.store.ListRecords(ctx, q)
		if err != nil {
			return n, err
		}
		for _, r := range recs {
			q.AfterSeq = r.Seq
			if f.Action != "" {
				e, err := decode(r.Body)
				if err != nil || !f.matches(&e) {
					continue
				}
			}
			line := bytes.TrimSpace(r.Body)
			if _, err := w.Write(append(line, '\n')); err != nil {
				return n, rhizome.Wrap(err, "audit: writing the export")
			}
			n++
		}
		if len(recs) < q.Limit {
			return n, nil
		}
	}
}
