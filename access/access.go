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
// products, unmasked in production. Other readers see the columns whose
// contract classification is above their clearance masked, as the policies'
// mask rules say (null by default). In a non-production environment PII is
// masked for everyone, owners and admins included (the guide's pii-masking
// policy). docs/access.md is the user's reference.
//
// It also owns access requests and grants (stored as metastore records in
// the collections "access.request" and "access.grant").
//
// The decision code is ours rather than a policy engine's (OPA, Cedar,
// casbin): the rules are few and fixed by the guide, the inputs are our own
// manifests, and Decide must answer in microseconds from memory; masks are
// DuckDB expressions, which no policy library produces.
package access

import (
	"context"
	"strings"
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
	// The guide's pii_masking methods besides hash and redact.
	MaskTruncate = "truncate" // dates to the year, integers to the decade, text to its first letter
	MaskTokenize = "tokenize" // a stable token: 'tok_' and 16 hex digits of the SHA-256
)

// MaskKinds lists the mask kinds a policy rule or pii_masking may name.
func MaskKinds() []string {
	return []string{MaskNull, MaskHash, MaskRedact, MaskLast4, MaskEmailDomain, MaskYear, MaskTruncate, MaskTokenize, MaskCustom}
}

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
	// When empty, the columns of the product's contract are used.
	Columns []string
	// Types optionally gives each column's DuckDB type, so that masks keep
	// it (null becomes CAST(NULL AS type)); the contract's physicalType is
	// used for columns not in it.
	Types map[string]string
	Via   string // ViaREST, ViaSQL, ...
}

// Projection is the select list that applies the decision's column masks:
// `expr AS "col", ...` over the product's columns, hidden columns left out.
// Callers select it from the product's table and add RowFilter as WHERE.
// It is "" when no column is visible (or the decision denies).
func (d *Decision) Projection() string {
	if d == nil || !d.Allow {
		return ""
	}
	var b strings.Builder
	for _, c := range d.Columns {
		if c.Hidden {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c.Expr)
		b.WriteString(" AS ")
		b.WriteString(QuoteIdent(c.Name))
	}
	return b.String()
}

// Masks maps each masked column to its mask kind (for audit entries).
func (d *Decision) Masks() map[string]string {
	if d == nil {
		return nil
	}
	var m map[string]string
	for _, c := range d.Columns {
		if c.Mask != MaskNone || c.Hidden {
			if m == nil {
				m = map[string]string{}
			}
			if c.Hidden {
				m[c.Name] = "hidden"
			} else {
				m[c.Name] = c.Mask
			}
		}
	}
	return m
}

// Err is nil when the decision allows, else an EForbidden error naming why,
// with a hint at how to get access. Every interface refuses with it.
func (d *Decision) Err(productID string) error {
	if d != nil && d.Allow {
		return nil
	}
	reason := "no decision"
	if d != nil {
		reason = d.Reason
	}
	return rhizome.Errorf(rhizome.EForbidden, "reading %s is not allowed: %s", productID, reason).
		WithHint("request access: rhizome access request %s --purpose \"...\" --duration 30d", productID)
}

// QuoteIdent quotes a SQL identifier ("a""b").
func QuoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// Decider decides reads. *Service implements it.
type Decider interface {
	Decide(ctx context.Context, req Request) (*Decision, error)
}
