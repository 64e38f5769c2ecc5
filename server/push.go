package server

import (
	"context"
	"encoding/json"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/internal/nearest"
	"github.com/rhizome-mesh/rhizome/jobs"
	"github.com/rhizome-mesh/rhizome/stream"
)

// Push ingestion: POST /products/{id}/ports/{port}/batches spools an NDJSON
// batch for a product's stream input port, once per batch id; the flusher
// queues the run that commits it.

// pushResponse is the answer to a push.
type pushResponse struct {
	BatchID   string `json:"batch_id"`
	Rows      int64  `json:"rows"`
	Bytes     int64  `json:"bytes"`
	Duplicate bool   `json:"duplicate"`
}

// ndjsonTypes are the media types a push body may declare; none means NDJSON.
var ndjsonTypes = []string{"application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines"}

// pushTo returns the push handler over a spool and its flusher (nil
// spool: push ingestion is not running, 503).
func (s *Server) pushTo(spool *stream.Spool, flusher *stream.Flusher) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, port := chi.URLParam(r, "id"), chi.URLParam(r, "port")
		if spool == nil {
			s.writeError(w, r, rhizome.Errorf(rhizome.EUnavailable, "push ingestion is not running in this server").
				WithHint("start it with `rhizome up`"))
			return
		}
		batchID, err := pushBatchID(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "" {
			if mt, _, _ := mime.ParseMediaType(ct); !slices.Contains(ndjsonTypes, mt) {
				s.writeError(w, r, rhizome.Errorf(rhizome.EInvalid, "Content-Type %s is not NDJSON", ct).
					WithHint("send Content-Type: application/x-ndjson, one JSON object per line"))
				return
			}
		}
		if err := s.catalog.MayOperate(r.Context(), principalOf(r.Context()), id); err != nil {
			s.writeError(w, r, err)
			return
		}
		if err := s.streamPort(r, id, port); err != nil {
			s.writeError(w, r, err)
			return
		}
		// One byte over the limit so that Put, not the reader, says "too large".
		body := http.MaxBytesReader(w, r.Body, MaxBodyBytes+1)
		b, err := spool.Put(r.Context(), id, port, batchID, body, MaxBodyBytes)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		status := http.StatusOK
		if !b.Duplicate {
			status = http.StatusAccepted
			if flusher != nil {
				flusher.Notify(id)
			}
		}
		writeJSON(w, status, pushResponse{BatchID: b.ID, Rows: b.Rows, Bytes: b.Bytes, Duplicate: b.Duplicate})
	}
}

// pushBatchID is the batch id of a push: the Idempotency-Key header or the
// batch_id query parameter.
func pushBatchID(r *http.Request) (string, error) {
	h, q := r.Header.Get("Idempotency-Key"), r.URL.Query().Get("batch_id")
	switch {
	case h != "" && q != "" && h != q:
		return "", rhizome.Errorf(rhizome.EInvalid, "Idempotency-Key %q and batch_id %q differ", h, q).
			WithHint("send the batch id once, in either place")
	case h != "":
		return h, nil
	case q != "":
		return q, nil
	}
	return "", rhizome.Errorf(rhizome.EInvalid, "a batch needs a batch id").
		WithHint("send an Idempotency-Key header (or ?batch_id=) that is unique per batch; a retry with the same id is accepted once")
}

// streamPort checks that the product has an input port named port that
// reads with the stream connector.
func (s *Server) streamPort(r *http.Request, id, port string) error {
	obj, err := s.store.Get(r.Context(), rhizome.KindDataProduct, id)
	if err != nil {
		return err
	}
	var dp rhizome.DataProduct
	if err := json.Unmarshal(obj.Body, &dp); err != nil {
		return rhizome.Wrap(err, "decoding %s", id)
	}
	var streams []string
	for _, p := range dp.InputPorts {
		if p.Connector == "stream" {
			streams = append(streams, p.Name)
		}
	}
	for _, p := range dp.InputPorts {
		if p.Name != port {
			continue
		}
		if p.Connector == "stream" {
			return nil
		}
		how := "connector " + p.Connector
		if p.Product != "" {
			how = "product " + p.Product
		}
		return rhizome.Errorf(rhizome.EInvalid, "input port %s of %s reads %s, not pushed batches", port, id, how).
			WithHint("%s", streamHint(streams))
	}
	return rhizome.Errorf(rhizome.EInvalid, "%s has no input port %s", id, port).WithHint("%s", nearestOr(port, streams))
}

func nearestOr(port string, streams []string) string {
	if len(streams) == 0 {
		return streamHint(nil)
	}
	return nearest.Hint(port, streams)
}

func streamHint(streams []string) string {
	if len(streams) == 0 {
		return "push to an input port with `connector: stream`; this product has none"
	}
	return "push to one of its input ports with `connector: stream`: " + strings.Join(nearest.Quote(streams), ", ")
}

// enqueuePush is the Flusher's enqueue: it asks for the run that commits
// a product's pending batches, keyed by the pending set. A key's run is
// for ever that run (jobs dedupes by key), so when it has already ended
// and the batches are still pending (it was cancelled while queued, or
// never reached the queue), the next key chains from the ended run.
func enqueuePush(ctx context.Context, sched *jobs.Scheduler, productID, key string) error {
	for range maxPushChain {
		run, err := sched.Enqueue(ctx, jobs.Request{ProductID: productID, Trigger: rhizome.TriggerPush, Actor: "push", Key: key})
		if err != nil {
			return err
		}
		if !run.State.Done() {
			return nil
		}
		key += ">" + run.ID
	}
	return rhizome.Errorf(rhizome.EUnavailable, "%d runs of %s for the same pushed batches ended without committing them", maxPushChain, productID).
		WithHint("see why in its runs: GET /api/v1/products/%s/runs", productID)
}

const maxPushChain = 16
