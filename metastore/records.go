package metastore

import (
	"context"
	"encoding/json"
	"time"
)

// Record is an entry of one of the collections the platform keeps besides
// manifests and runs: quality results, alerts, SLO events, access grants and
// requests, audit entries. The store indexes the few fields every such
// collection filters on (product, subject, state, time) and keeps the rest
// as an opaque JSON body that the owning package defines. Collection names
// are owned by the package that writes them ("quality.result", "alert",
// "access.grant", "audit", ...).
type Record struct {
	Collection string `json:"collection"`
	ID         string `json:"id"` // unique within the collection
	// Seq is assigned by the store on every insert and update: increasing
	// across all collections within one process's commits (on Postgres a
	// sequence: a later commit may carry a smaller Seq than one already
	// read, so pollers should not rely on AfterSeq alone for completeness).
	Seq       int64           `json:"seq"`
	ProductID string          `json:"product_id,omitempty"`
	Subject   string          `json:"subject,omitempty"` // a principal, check name, team...
	State     string          `json:"state,omitempty"`
	At        time.Time       `json:"at"` // the caller's time; stored UTC at microsecond precision
	Body      json.RawMessage `json:"body,omitempty"`
}

// RecordQuery selects records of one collection. Empty fields do not filter.
type RecordQuery struct {
	Collection string // required
	ProductID  string
	Subject    string
	State      string
	// Since and Until bound At: Since <= At < Until (zero: unbounded).
	Since, Until time.Time
	// AfterSeq keeps records with Seq > AfterSeq (with Desc: Seq < AfterSeq
	// when AfterSeq > 0), the cursor of a paged read.
	AfterSeq int64
	// Desc orders newest first (by Seq); the default is oldest first.
	Desc bool
	// Limit is the page size; 0 means 100; at most 10000.
	Limit int
}

// RecordReader reads records; both Store and Tx have it.
type RecordReader interface {
	// GetRecord returns one record, or ENotFound.
	GetRecord(ctx context.Context, collection, id string) (*Record, error)
	// ListRecords returns the records q selects, ordered by Seq.
	ListRecords(ctx context.Context, q RecordQuery) ([]Record, error)
	// LastRecord returns the record of a collection with the highest Seq,
	// or ENotFound when the collection is empty.
	LastRecord(ctx context.Context, collection string) (*Record, error)
}

// RecordWriter writes records; only Tx has it.
type RecordWriter interface {
	// InsertRecord adds a record; EConflict if (Collection, ID) exists.
	// It sets r.Seq.
	InsertRecord(ctx context.Context, r *Record) error
	// PutRecord creates or replaces a record by (Collection, ID). It sets
	// r.Seq.
	PutRecord(ctx context.Context, r *Record) error
	// DeleteRecords deletes the records q selects (Limit and order are
	// ignored) and returns how many it deleted.
	DeleteRecords(ctx context.Context, q RecordQuery) (int64, error)
}
