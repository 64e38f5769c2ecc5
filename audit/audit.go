// Package audit owns the audit log: every data access (REST, SQL, export)
// and every administrative action, appended to a hash chain kept in the
// metastore (collection "audit"), verifiable end to end (`rhizome audit
// verify`), exportable as JSON lines and queryable by product and
// principal.
package audit

import (
	"context"
	"time"
)

// Entry is one audited event.
type Entry struct {
	Seq       int64             `json:"seq"` // position in the chain, from 1
	At        time.Time         `json:"at"`
	Actor     string            `json:"actor"`         // principal id
	Action    string            `json:"action"`        // e.g. data.read, sql.query, export, apply, access.approve
	Via       string            `json:"via,omitempty"` // rest, sql, export, cli...
	ProductID string            `json:"product_id,omitempty"`
	Products  []string          `json:"products,omitempty"` // every product a query touched
	Columns   []string          `json:"columns,omitempty"`
	Query     string            `json:"query,omitempty"`
	Decision  string            `json:"decision"` // allow | deny
	Reason    string            `json:"reason,omitempty"`
	PolicyIDs []string          `json:"policy_ids,omitempty"`
	Masks     map[string]string `json:"masks,omitempty"` // column -> mask
	RowFilter string            `json:"row_filter,omitempty"`
	Rows      int64             `json:"rows"`
	Details   map[string]any    `json:"details,omitempty"`
	PrevHash  string            `json:"prev_hash"`
	Hash      string            `json:"hash"`
}

// Recorder records entries; callers fill everything but Seq, PrevHash and
// Hash (and At, when zero).
type Recorder interface {
	Record(ctx context.Context, e Entry) error
}
