// Package metastore owns the Store interface: where Rhizome keeps manifests,
// their revision history, product versions, principals and tokens. Backends
// live beneath it (sqlite, postgres) and share one SQL implementation in
// metastore/sqlstore; metastoretest is the conformance suite every backend
// must pass. The store knows nothing of manifest semantics: callers (the
// catalog) derive Labels and decide who may write.
package metastore

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/rhizome-mesh/rhizome"
)

// AnyRevision, passed as an expected revision, skips the optimistic check.
const AnyRevision int64 = -1

// Store is the metadata store.
type Store interface {
	Reader

	// Update runs fn in one transaction: all of fn's writes commit, or none
	// do. An error returned by fn rolls back and is returned as is. A
	// backend may run fn again when the database asks for a retry (a
	// Postgres serialization failure), so fn should have no effects
	// outside tx. Use tx from fn's goroutine only, and not after fn returns.
	Update(ctx context.Context, fn func(Tx) error) error

	// Ping reports whether the store answers.
	Ping(ctx context.Context) error
	Close() error
}

// Reader is what both Store and Tx read.
type Reader interface {
	// Get returns the current object, or ENotFound.
	Get(ctx context.Context, kind rhizome.Kind, id string) (*rhizome.Object, error)
	// List returns one page of objects of a kind, ordered by id.
	List(ctx context.Context, opt ListOptions) (*Page, error)
	// History returns an object's revisions, oldest first, including the
	// delete revision if it was deleted; ENotFound if it never existed.
	History(ctx context.Context, kind rhizome.Kind, id string) ([]rhizome.Revision, error)
	// Versions lists a product's versions, newest first by creation.
	Versions(ctx context.Context, productID string) ([]rhizome.ProductVersion, error)
	// Version returns one product version, or ENotFound.
	Version(ctx context.Context, productID, version string) (*rhizome.ProductVersion, error)

	// TeamsOf lists the Team ids whose Labels.Members include principal.
	TeamsOf(ctx context.Context, principal string) ([]string, error)

	GetPrincipal(ctx context.Context, id string) (*rhizome.Principal, error)
	ListPrincipals(ctx context.Context) ([]rhizome.Principal, error)
	// TokenByHash returns the token with that hash (revoked or expired
	// ones too: the caller decides), or ENotFound.
	TokenByHash(ctx context.Context, hash string) (*rhizome.Token, error)
	// ListTokens lists a principal's tokens, oldest first; every token
	// when principal is empty.
	ListTokens(ctx context.Context, principal string) ([]rhizome.Token, error)

	// GetRun returns a run, or ENotFound.
	GetRun(ctx context.Context, id string) (*rhizome.Run, error)
	// ListRuns returns one page of runs, newest first (by QueuedAt, then
	// id), and the cursor of the next page ("" on the last).
	ListRuns(ctx context.Context, opt RunListOptions) ([]rhizome.Run, string, error)
	// RunLogs returns a run's log lines with Seq > afterSeq, in order.
	RunLogs(ctx context.Context, runID string, afterSeq int64) ([]rhizome.RunLog, error)
	// LineageEvents returns the OpenLineage events stored for a run, in
	// the order they were stored, byte for byte.
	LineageEvents(ctx context.Context, runID string) ([]json.RawMessage, error)

	RecordReader
}

// Tx is a write transaction.
type Tx interface {
	Reader

	// Put creates or replaces an object. expected is the revision the
	// caller read: 0 means "must not exist", AnyRevision skips the check;
	// a mismatch is EConflict. Put records a revision with actor, the
	// object's ApplyID and the time, and returns the new revision number
	// (1 for a create, previous+1 for an update). obj.Revision,
	// CreatedAt, UpdatedAt and UpdatedBy are set by the store.
	Put(ctx context.Context, obj *rhizome.Object, expected int64, actor, applyID string) (int64, error)
	// Delete removes an object, recording a delete revision. ENotFound if
	// absent; EConflict if expected (not AnyRevision) is not current.
	Delete(ctx context.Context, kind rhizome.Kind, id string, expected int64, actor, applyID string) error

	// PutVersion creates or updates a product version; when v.Current is
	// true every other version of that product stops being current. An
	// update keeps the stored Revision when v.Revision is 0 and the stored
	// Body when v.Body is empty. CreatedAt is set by the store on create.
	PutVersion(ctx context.Context, v *rhizome.ProductVersion) error

	// PutPrincipal creates or updates a principal.
	PutPrincipal(ctx context.Context, p *rhizome.Principal) error
	// CreateToken stores a new token (its Hash must be set). EConflict if
	// the id or hash exists.
	CreateToken(ctx context.Context, t *rhizome.Token) error
	// RevokeToken marks a token revoked at the given time; ENotFound if
	// absent.
	RevokeToken(ctx context.Context, id string) error

	// PutRun creates or replaces a run by id. A zero QueuedAt is set to
	// the store's clock; times are cut as stored (see Options.Clock).
	PutRun(ctx context.Context, r *rhizome.Run) error
	// AppendRunLog adds a line to a run's log. A zero Seq is assigned by
	// the store (one past the run's last line) and a zero At is the
	// store's clock; EConflict if the Seq is taken. Writers of one run's
	// log should append from one process, in order.
	AppendRunLog(ctx context.Context, l rhizome.RunLog) error
	// PutLineageEvent stores one OpenLineage RunEvent of a run.
	PutLineageEvent(ctx context.Context, runID, eventType string, at time.Time, body json.RawMessage) error

	RecordWriter
}

// RunListOptions filters and pages ListRuns. Empty fields do not filter.
type RunListOptions struct {
	ProductID string
	State     rhizome.RunState
	// After is the cursor: the last id of the previous page.
	After string
	// Limit is the page size; 0 means 100; at most 1000.
	Limit int
}

// ListOptions filters and pages a List. Empty fields do not filter.
type ListOptions struct {
	Kind        rhizome.Kind
	Domain      string
	OwnerTeam   string
	Sensitivity string
	Tag         string
	Member      string
	// After is the cursor: the last id of the previous page.
	After string
	// Limit is the page size; 0 means 100; at most 1000.
	Limit int
}

// Page is one page of a List.
type Page struct {
	Items []*rhizome.Object `json:"items"`
	// Next is the cursor for the next page; empty on the last page.
	Next string `json:"next,omitempty"`
}

// Options are what every backend's Open takes besides where the data is.
type Options struct {
	// Clock stamps created_at, updated_at, revisions and tokens; nil means
	// rhizome.SystemClock. Stored times are UTC at microsecond precision
	// (what Postgres keeps), so tests can compare them exactly.
	Clock rhizome.Clock
	// Logger receives migrations and retried transactions; nil discards.
	Logger *slog.Logger
}

// WithDefaults returns o with nil fields filled in.
func (o Options) WithDefaults() Options {
	if o.Clock == nil {
		o.Clock = rhizome.SystemClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}
