// Package access is Rhizome's one policy decision point for reading data:
// who may read which product, which columns they see masked and which rows
// they see. REST (server), SQL (pgwire through serve), exports and samples
// in the UI all ask Decide and apply the same Decision, so the rules cannot
// drift apart between interfaces.
//
// Rules (from the guide's DataSensitivity and policies):
//   - public: any authenticated principal;
//   - internal: members of the organisation (a principal that belongs to at
//     least one team, or an admin);
//   - confidential: an approved, unexpired grant;
//   - restricted: a grant approved by a steward, with a stated purpose and
//     an expiry.
//
// Owners (members of the product's owner team) and admins always read their
// products. Columns are masked by their contract classification and the
// policies in force; in a non-production environment PII is masked for
// everyone but the owners (the guide's pii-masking policy).
//
// It also owns access requests and grants (stored as metastore records in
// the collections "access.request" and "access.grant").
package access

import (
	"context"
	"time"

	"github.com/rhizome-mesh/rhizome"
)

// Interfaces a read comes through, for decisions and audit entries.
const (
	ViaREST   = "rest"
	ViaSQL    = "sql"
	ViaSample = "sample"
	ViaExport = "export"
)

// Subject is who reads: the authenticated principal with its teams.
type Subject struct {
	ID    string   `json:"id"`
	Admin bool     `json:"admin,omitempty"`
	Teams []string `json:"teams,omitempty"`
}

// SubjectOf is the Subject of an authenticated principal.
func SubjectOf(p *rhizome.Principal) Subject {
	if p == nil {
		return Subject{}
	}
	return Subject{ID: p.ID, Admin: p.Admin, Teams: p.Teams}
}

// Mask kinds.
const (
	MaskNone        = ""
	MaskNull        = "null"
	MaskHash        = "hash"
	MaskRedact      = "redact"
	MaskLast4       = "last4"
	MaskEmailDomain = "email_domain"
	MaskYear        = "year"
	MaskCustom      = "custom" // Column.Expr is a SQL expression over the column
)

// Column is what a subject sees of one column.
type Column struct {
	Name string `json:"name"`
	// Mask is "" for clear text, else one of the Mask kinds.
	Mask string `json:"mask,omitempty"`
	// Expr is the SQL expression (DuckDB) that yields the column as the
	// subject sees it, aliased by the caller; the quoted column itself when
	// unmasked.
	Expr string `json:"expr"`
	// Hidden columns are not visible at all (a grant limited to columns).
	Hidden bool `json:"hidden,omitempty"`
	// Classification is the contract's for the column (pii, sensitive...).
	Classification string `json:"classification,omitempty"`
}

// Decision is the outcome of Decide.
type Decision struct {
	Allow     bool     `json:"allow"`
	Reason    string   `json:"reason"`               // why, in a sentence
	PolicyIDs []string `json:"policy_ids,omitempty"` // the policies and rules that decided
	GrantID   string   `json:"grant_id,omitempty"`
	Columns   []Column `json:"columns,omitempty"`
	// RowFilter is a SQL boolean expression over the product's columns
	// that every row the subject sees satisfies ("" = every row).
	RowFilter string `json:"row_filter,omitempty"`
	// Expires is when the decision stops holding (the grant's expiry).
	Expires *time.Time `json:"expires,omitempty"`
}

// Request is what Decide is asked.
type Request struct {
	Subject   Subject
	ProductID string
	// Columns the product has (from its current table schema), in order.
	Columns []string
	Via     string // ViaREST, ViaSQL, ...
}

// Decider decides reads. *Service implements it.
type Decider interface {
	Decide(ctx context.Context, req Request) (*Decision, error)
}
