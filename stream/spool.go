// Package stream owns push ingestion's buffer: a spool on local disk that
// accepts NDJSON batches for a product's stream input port, exactly once per
// batch id, holds them until a run claims them, and forgets their data (not
// their ids) once the run publishes. The Flusher decides when enough has
// gathered to queue a run. HTTP belongs to server, staging the claimed files
// to connector/stream, and the run itself to jobs and pipeline.
//
// This is our own code because nothing off the shelf fits: brokers (Kafka,
// NATS) are a second process to run, and embedded queues (River included)
// hold jobs, not the data of a micro-batch that a run must see as files and
// may hand back when it fails. A few hundred lines of rename-based file
// moves give the three states we need (pending, claimed by a run,
// committed) with crash safety from atomic renames.
//
// On disk, under the root:
//
//	<product>/<port>/pending/<seq>-<batch>.ndjson   accepted, waiting for a run
//	<product>/<port>/claimed/<run>/...              taken by a run
//	<product>/<port>/batches.log                    every accepted batch (JSON lines): the dedupe index
//	<product>/<port>/committed.ids                  "<batch> <run>" per published batch
//	<product>/<port>/tmp/                           uploads in flight
package stream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rhizome-mesh/rhizome"
)

// Batch is one accepted push.
type Batch struct {
	ID        string    `json:"batch_id"`
	Rows      int64     `json:"rows"`
	Bytes     int64     `json:"bytes"`
	At        time.Time `json:"at"`
	Duplicate bool      `json:"duplicate"`
}

// Spool is the on-disk buffer of pushed batches. It is safe for concurrent
// use; one process owns a root.
type Spool struct {
	root  string
	clock rhizome.Clock

	mu    sync.Mutex
	locks map[string]*sync.Mutex // by product
	ports map[string]*portState  // by product/port, loaded on first use
}

// portState is the in-memory copy of a port's batches.log.
type portState struct {
	batches map[string]*entry
	nextSeq int64
}

// entry is one line of batches.log: an accepted batch, or (Released > 0)
// a note that a failed run handed it back.
type entry struct {
	ID       string    `json:"id"`
	Seq      int64     `json:"seq,omitempty"`
	Rows     int64     `json:"rows,omitempty"`
	Bytes    int64     `json:"bytes,omitempty"`
	At       time.Time `json:"at,omitzero"`
	Released int       `json:"released,omitempty"`
}

const (
	pendingDir   = "pending"
	claimedDir   = "claimed"
	tmpDir       = "tmp"
	indexFile    = "batches.log"
	committedIDs = "committed.ids"
	ext          = ".ndjson"
	seqWidth     = 12
)

// names of products, ports, batches and runs become path elements.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$`)

func checkName(what, s string) error {
	if !nameRE.MatchString(s) {
		return rhizome.Errorf(rhizome.EInvalid, "%s %q is not a valid name", what, s).
			WithHint("use 1 to 200 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	return nil
}

// Open returns the spool rooted at root, creating it. Claims left by a
// process that stopped mid-run go back to pending: their runs are dead.
func Open(root string, clock rhizome.Clock) (*Spool, error) {
	return OpenWith(root, clock, nil)
}

// OpenWith is Open, but a claim whose run did publish before the process
// died (published says so) is committed rather than handed back: its
// batches are in a snapshot already, and delivering them again would break
// exactly-once.
func OpenWith(root string, clock rhizome.Clock, published func(productID, runID string) bool) (*Spool, error) {
	if clock == nil {
		clock = rhizome.SystemClock{}
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, rhizome.Errorf(rhizome.EInternal, "stream: creating spool %s: %v", root, err)
	}
	s := &Spool{root: root, clock: clock, locks: map[string]*sync.Mutex{}, ports: map[string]*portState{}}
	left, err := filepath.Glob(filepath.Join(root, "*", "*", claimedDir, "*"))
	if err != nil {
		return nil, rhizome.Errorf(rhizome.EInternal, "stream: %v", err)
	}
	runs := map[string]string{} // run -> product
	for _, d := range left {
		rel, _ := filepath.Rel(root, d)
		runs[filepath.Base(d)] = strings.SplitN(filepath.ToSlash(rel), "/", 2)[0]
	}
	for run, product := range runs {
		var err error
		if published != nil && published(product, run) {
			err = s.Commit(run)
		} else {
			err = s.Release(run)
		}
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Spool) lock(productID string) func() {
	s.mu.Lock()
	l, ok := s.locks[productID]
	if !ok {
		l = new(sync.Mutex)
		s.locks[productID] = l
	}
	s.mu.Unlock()
	l.Lock()
	return l.Unlock
}

func (s *Spool) portDir(productID, port string) string {
	return filepath.Join(s.root, productID, port)
}

// state returns the port's index, loading it on first use. The caller
// holds the product's lock.
func (s *Spool) state(productID, port string) (*portState, error) {
	key := productID + "/" + port
	s.mu.Lock()
	st, ok := s.ports[key]
	s.mu.Unlock()
	if ok {
		return st, nil
	}
	st, err := s.load(productID, port)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.ports[key] = st
	s.mu.Unlock()
	return st, nil
}

// load reads batches.log, then indexes any spooled file the log lacks (a
// crash between the rename into pending and the log append), so that a
// retried push of it is still a duplicate.
func (s *Spool) load(productID, port string) (*portState, error) {
	dir := s.portDir(productID, port)
	st := &portState{batches: map[string]*entry{}, nextSeq: 1}
	b, err := os.ReadFile(filepath.Join(dir, indexFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, rhizome.Errorf(rhizome.EInternal, "stream: reading %s index: %v", productID, err)
	}
	if whole := bytes.LastIndexByte(b, '\n') + 1; whole < len(b) {
		// A line torn by a crash: cut it, or the next append would join it.
		if err := os.Truncate(filepath.Join(dir, indexFile), int64(whole)); err != nil {
			return nil, rhizome.Errorf(rhizome.EInternal, "stream: repairing %s index: %v", productID, err)
		}
		b = b[:whole]
	}
	for i, line := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var e entry
		if err := json.Unmarshal(line, &e); err != nil {
			return nil, rhizome.Errorf(rhizome.EInternal, "stream: %s line %d: %v", filepath.Join(dir, indexFile), i+1, err)
		}
		st.apply(&e)
	}
	// Uploads cut short by a crash; no Put of this port is writing yet.
	if left, _ := filepath.Glob(filepath.Join(dir, tmpDir, "*")); len(left) > 0 {
		for _, f := range left {
			os.Remove(f)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, pendingDir, "*"+ext))
	claimed, _ := filepath.Glob(filepath.Join(dir, claimedDir, "*", "*"+ext))
	for _, f := range append(files, claimed...) {
		seq, id, ok := parseName(filepath.Base(f))
		if !ok || st.batches[id] != nil {
			continue
		}
		rows, n, err := countRows(f)
		if err != nil {
			return nil, err
		}
		e := &entry{ID: id, Seq: seq, Rows: rows, Bytes: n, At: s.clock.Now()}
		if err := appendLine(filepath.Join(dir, indexFile), e); err != nil {
			return nil, err
		}
		st.apply(e)
	}
	return st, nil
}

func (st *portState) apply(e *entry) {
	if e.Released > 0 {
		if b := st.batches[e.ID]; b != nil {
			b.Released = e.Released
		}
		return
	}
	c := *e
	st.batches[e.ID] = &c
	if e.Seq >= st.nextSeq {
		st.nextSeq = e.Seq + 1
	}
}

func fileName(seq int64, id string) string {
	return fmt.Sprintf("%0*d-%s%s", seqWidth, seq, id, ext)
}

func parseName(name string) (seq int64, id string, ok bool) {
	if len(name) < seqWidth+2+len(ext) || name[seqWidth] != '-' || !strings.HasSuffix(name, ext) {
		return 0, "", false
	}
	seq, err := strconv.ParseInt(name[:seqWidth], 10, 64)
	if err != nil {
		return 0, "", false
	}
	return seq, name[seqWidth+1 : len(name)-len(ext)], true
}

// BatchOf returns the batch id of a spooled file's path.
func BatchOf(path string) string {
	_, id, _ := parseName(filepath.Base(path))
	return id
}

// Put validates body as NDJSON (each non-empty line a JSON object), at
// most maxBytes long, and spools it as batchID. A batch id the port has
// already accepted, pending or committed, returns the first Batch with
// Duplicate set and writes nothing.
func (s *Spool) Put(ctx context.Context, productID, port, batchID string, body io.Reader, maxBytes int64) (Batch, error) {
	for _, c := range [][2]string{{"product", productID}, {"port", port}, {"batch id", batchID}} {
		if err := checkName(c[0], c[1]); err != nil {
			return Batch{}, err
		}
	}
	if b, dup, err := s.lookup(productID, port, batchID); err != nil || dup {
		return b, err
	}
	// Upload outside the lock: big bodies do not hold up other pushes.
	dir := s.portDir(productID, port)
	if err := os.MkdirAll(filepath.Join(dir, tmpDir), 0o700); err != nil {
		return Batch{}, rhizome.Errorf(rhizome.EInternal, "stream: %v", err)
	}
	tmp, rows, n, err := writeTemp(ctx, filepath.Join(dir, tmpDir), batchID, body, maxBytes)
	if err != nil {
		return Batch{}, err
	}
	defer os.Remove(tmp) // no-op after the rename

	unlock := s.lock(productID)
	defer unlock()
	st, err := s.state(productID, port)
	if err != nil {
		return Batch{}, err
	}
	if e := st.batches[batchID]; e != nil {
		return e.batch(true), nil // a concurrent Put of the same id won
	}
	e := &entry{ID: batchID, Seq: st.nextSeq, Rows: rows, Bytes: n, At: s.clock.Now()}
	pending := filepath.Join(dir, pendingDir)
	if err := os.MkdirAll(pending, 0o700); err != nil {
		return Batch{}, rhizome.Errorf(rhizome.EInternal, "stream: %v", err)
	}
	if err := os.Rename(tmp, filepath.Join(pending, fileName(e.Seq, batchID))); err != nil {
		return Batch{}, rhizome.Errorf(rhizome.EInternal, "stream: spooling batch %s: %v", batchID, err)
	}
	syncDir(pending)
	if err := appendLine(filepath.Join(dir, indexFile), e); err != nil {
		// The file is spooled; load indexes it again after a restart.
		return Batch{}, err
	}
	st.apply(e)
	return e.batch(false), nil
}

func (e *entry) batch(dup bool) Batch {
	return Batch{ID: e.ID, Rows: e.Rows, Bytes: e.Bytes, At: e.At, Duplicate: dup}
}

func (s *Spool) lookup(productID, port, batchID string) (Batch, bool, error) {
	unlock := s.lock(productID)
	defer unlock()
	st, err := s.state(productID, port)
	if err != nil {
		return Batch{}, false, err
	}
	if e := st.batches[batchID]; e != nil {
		return e.batch(true), true, nil
	}
	return Batch{}, false, nil
}

func appendLine(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return rhizome.Errorf(rhizome.EInternal, "stream: %v", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return rhizome.Errorf(rhizome.EInternal, "stream: %v", err)
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return rhizome.Errorf(rhizome.EInternal, "stream: writing %s: %v", path, err)
	}
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// Pending lists the port's pending files, oldest first, with their rows
// and the time the oldest was accepted (zero when none are pending).
func (s *Spool) Pending(productID, port string) (files []string, rows int64, oldest time.Time, err error) {
	if err := checkName("product", productID); err != nil {
		return nil, 0, time.Time{}, err
	}
	if err := checkName("port", port); err != nil {
		return nil, 0, time.Time{}, err
	}
	unlock := s.lock(productID)
	defer unlock()
	st, err := s.state(productID, port)
	if err != nil {
		return nil, 0, time.Time{}, err
	}
	files, err = listPending(s.portDir(productID, port))
	if err != nil {
		return nil, 0, time.Time{}, err
	}
	for _, f := range files {
		if e := st.batches[BatchOf(f)]; e != nil {
			rows += e.Rows
			if oldest.IsZero() || e.At.Before(oldest) {
				oldest = e.At
			}
		}
	}
	return files, rows, oldest, nil
}

// released says how often the batch has been handed back by failed runs.
func (s *Spool) released(productID, port, batchID string) int {
	unlock := s.lock(productID)
	defer unlock()
	st, err := s.state(productID, port)
	if err != nil || st.batches[batchID] == nil {
		return 0
	}
	return st.batches[batchID].Released
}

func listPending(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, pendingDir, "*"+ext))
	if err != nil {
		return nil, rhizome.Errorf(rhizome.EInternal, "stream: %v", err)
	}
	sort.Strings(files) // by sequence number
	return files, nil
}

// Claim moves the port's pending files to the run's claim and returns
// every file the run holds there, oldest first. A retried attempt of a run
// gets its earlier claim back plus whatever is pending now.
func (s *Spool) Claim(productID, port, runID string) ([]string, error) {
	if s == nil { // a nil *Spool in a connector.Env
		return nil, rhizome.Errorf(rhizome.EUnavailable, "stream: no spool in this process")
	}
	for _, c := range [][2]string{{"product", productID}, {"port", port}, {"run id", runID}} {
		if err := checkName(c[0], c[1]); err != nil {
			return nil, err
		}
	}
	unlock := s.lock(productID)
	defer unlock()
	dir := s.portDir(productID, port)
	files, err := listPending(dir)
	if err != nil {
		return nil, err
	}
	claim := filepath.Join(dir, claimedDir, runID)
	if len(files) > 0 {
		if err := os.MkdirAll(claim, 0o700); err != nil {
			return nil, rhizome.Errorf(rhizome.EInternal, "stream: %v", err)
		}
	}
	for _, f := range files {
		if err := os.Rename(f, filepath.Join(claim, filepath.Base(f))); err != nil {
			return nil, rhizome.Errorf(rhizome.EInternal, "stream: claiming %s for %s: %v", filepath.Base(f), runID, err)
		}
	}
	out, err := filepath.Glob(filepath.Join(claim, "*"+ext))
	if err != nil {
		return nil, rhizome.Errorf(rhizome.EInternal, "stream: %v", err)
	}
	sort.Strings(out)
	return out, nil
}

// claims lists the claim directories of a run, across products and ports.
func (s *Spool) claims(runID string) ([]string, error) {
	if err := checkName("run id", runID); err != nil {
		return nil, err
	}
	dirs, err := filepath.Glob(filepath.Join(s.root, "*", "*", claimedDir, runID))
	if err != nil {
		return nil, rhizome.Errorf(rhizome.EInternal, "stream: %v", err)
	}
	return dirs, nil
}

// productOf is the product of a claim directory <root>/<product>/<port>/claimed/<run>.
func productOf(claim string) string {
	return filepath.Base(filepath.Dir(filepath.Dir(filepath.Dir(claim))))
}

// Commit marks a run's claimed batches as published: their ids stay (so a
// re-push is still a duplicate), their data goes. A run that claimed
// nothing commits nothing.
func (s *Spool) Commit(runID string) error {
	dirs, err := s.claims(runID)
	if err != nil {
		return err
	}
	for _, claim := range dirs {
		if err := s.commit(claim, runID); err != nil {
			return err
		}
	}
	return nil
}

func (s *Spool) commit(claim, runID string) error {
	unlock := s.lock(productOf(claim))
	defer unlock()
	files, err := filepath.Glob(filepath.Join(claim, "*"+ext))
	if err != nil {
		return rhizome.Errorf(rhizome.EInternal, "stream: %v", err)
	}
	sort.Strings(files)
	var b strings.Builder
	for _, f := range files {
		fmt.Fprintf(&b, "%s %s\n", BatchOf(f), runID)
	}
	portDir := filepath.Dir(filepath.Dir(claim))
	if b.Len() > 0 {
		if err := appendRaw(filepath.Join(portDir, committedIDs), b.String()); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(claim); err != nil {
		return rhizome.Errorf(rhizome.EInternal, "stream: removing the claim of %s: %v", runID, err)
	}
	return nil
}

func appendRaw(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return rhizome.Errorf(rhizome.EInternal, "stream: %v", err)
	}
	_, err = f.WriteString(s)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return rhizome.Errorf(rhizome.EInternal, "stream: writing %s: %v", path, err)
	}
	return nil
}

// Release hands a failed run's claimed files back to pending, under their
// old names, so the next run retries them in order. Each handed-back batch
// counts a release, which the Flusher puts in its run key: the failed
// run's key would otherwise name that run again.
func (s *Spool) Release(runID string) error {
	dirs, err := s.claims(runID)
	if err != nil {
		return err
	}
	for _, claim := range dirs {
		if err := s.release(claim, runID); err != nil {
			return err
		}
	}
	return nil
}

func (s *Spool) release(claim, runID string) error {
	productID := productOf(claim)
	unlock := s.lock(productID)
	defer unlock()
	portDir := filepath.Dir(filepath.Dir(claim))
	port := filepath.Base(portDir)
	st, err := s.state(productID, port)
	if err != nil {
		return err
	}
	pending := filepath.Join(portDir, pendingDir)
	if err := os.MkdirAll(pending, 0o700); err != nil {
		return rhizome.Errorf(rhizome.EInternal, "stream: %v", err)
	}
	files, err := filepath.Glob(filepath.Join(claim, "*"+ext))
	if err != nil {
		return rhizome.Errorf(rhizome.EInternal, "stream: %v", err)
	}
	sort.Strings(files)
	for _, f := range files {
		if err := os.Rename(f, filepath.Join(pending, filepath.Base(f))); err != nil {
			return rhizome.Errorf(rhizome.EInternal, "stream: releasing %s of %s: %v", filepath.Base(f), runID, err)
		}
		if e := st.batches[BatchOf(f)]; e != nil {
			note := &entry{ID: e.ID, Released: e.Released + 1}
			if err := appendLine(filepath.Join(portDir, indexFile), note); err != nil {
				return err
			}
			st.apply(note)
		}
	}
	if err := os.RemoveAll(claim); err != nil {
		return rhizome.Errorf(rhizome.EInternal, "stream: removing the claim of %s: %v", runID, err)
	}
	return nil
}
