// Package audit owns the audit log: every data access (REST, SQL, export)
// and every administrative action, appended to a hash chain kept in the
// metastore (collection "audit"), verifiable end to end (`rhizome audit
// verify`), exportable as JSON lines and queryable by product and
// principal.
//
// # Writing entries
//
// Callers hold a Recorder (the server's *Log, Deps.Audit) and call Record
// once per audited event, after the decision and, for reads, once the
// rows are counted. Fill:
//
//   - Actor: the principal id (always).
//   - Action: what happened, dotted and lower case: "data.read" (REST data
//     API), "sql.query" (SQL over pgwire), "export", "access.request",
//     "access.approve", "erasure", "retention.enforce", and for the
//     server's mutating routes "<METHOD> <route pattern>" (e.g. "POST
//     /api/v1/products/{id}/runs"), which the server records itself.
//   - Via: the edge: "rest", "sql", "export", "cli", "scheduler".
//   - ProductID: the product the event is about (indexed: `rhizome audit
//     --product` finds it). A query touching several products sets
//     ProductID to the first and lists them all in Products.
//   - Columns: the columns returned; Query: the query text (SQL, or the
//     REST path with its query string).
//   - Decision: "allow" or "deny" (required); Reason: why, for a deny;
//     PolicyIDs: the policies that decided; Masks: column -> mask
//     applied; RowFilter: the row filter applied.
//   - Rows: rows returned (0 for a deny). serve records a read before its
//     first row with Rows -1, then "<action>.done" with the count.
//   - Details: anything else, as JSON values (the erasure report...).
//   - At: leave zero for the Log's clock.
//
// Seq, PrevHash and Hash are the Log's.
//
// # The chain
//
// Entry n (from 1) is stored as record "audit"/<n, zero-padded> with
// Subject = Actor, ProductID, State = Decision and At indexed, and the
// entry as its body. Its Hash is sha256(PrevHash || canonical JSON of the
// entry with Hash empty), hex; entry 1's PrevHash is "". The chain's tip
// is also kept in record "audit.head"/"head" so that removing the newest
// entries is detected too. Verify walks the chain and names the first
// position whose body was edited, that is missing, or that is out of
// order.
//
// # Durability and throughput
//
// Record returns once its entry is committed: an audited read never
// answers before its trace is durable. One writer goroutine appends:
// it commits, in one transaction, every entry queued while the previous
// transaction ran (group commit, up to MaxBatch): a lone Record costs one
// transaction and waits for no timer, and under load the transactions
// carry many entries each. The chain's tip is read inside the transaction
// (SQLite serializes writers; on Postgres a concurrent appender from
// another process makes one transaction fail serialization and retry), so
// several processes can share a log.
//
// Why our own code: no Go library keeps a hash-chained log in a SQL
// table we already run; the chain is a few dozen lines over the
// metastore's records.
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

// Decisions.
const (
	Allow = "allow"
	Deny  = "deny"
)
