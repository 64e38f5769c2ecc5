// Package rhizome holds the domain vocabulary of the Rhizome data mesh
// platform: the kinds of object a domain team declares (domains, teams, data
// products, contracts, infrastructure, policies), the stored envelope around
// them, principals and tokens, and the one error type. It imports nothing of
// ours; every other package depends inward on it.
package rhizome

import (
	"encoding/json"
	"sort"
	"strings"
	"time"
)

// Kind names a manifest kind, exactly as written in a manifest's `kind:`.
type Kind string

const (
	KindDomain         Kind = "Domain"
	KindTeam           Kind = "Team"
	KindDataProduct    Kind = "DataProduct"
	KindDataContract   Kind = "DataContract"
	KindInfrastructure Kind = "DataProductInfrastructure"
	KindPolicy         Kind = "Policy"
)

// Kinds lists every kind in apply order: referenced kinds before the kinds
// that reference them.
func Kinds() []Kind {
	return []Kind{KindDomain, KindTeam, KindPolicy, KindDataContract, KindInfrastructure, KindDataProduct}
}

// Order is a kind's place in Kinds (apply order); unknown kinds sort last.
func (k Kind) Order() int {
	for i, x := range Kinds() {
		if x == k {
			return i
		}
	}
	return len(Kinds())
}

// Plural is the kind's name in URLs and CLI: domains, teams, products,
// contracts, infrastructure, policies.
func (k Kind) Plural() string {
	switch k {
	case KindDomain:
		return "domains"
	case KindTeam:
		return "teams"
	case KindDataProduct:
		return "products"
	case KindDataContract:
		return "contracts"
	case KindInfrastructure:
		return "infrastructure"
	case KindPolicy:
		return "policies"
	}
	return strings.ToLower(string(k))
}

// ParseKind accepts a kind's manifest name, its plural, or a common short
// form (case-insensitive): "product", "products", "dp", "DataProduct", ...
func ParseKind(s string) (Kind, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "domain", "domains":
		return KindDomain, true
	case "team", "teams":
		return KindTeam, true
	case "dataproduct", "dataproducts", "product", "products", "dp":
		return KindDataProduct, true
	case "datacontract", "datacontracts", "contract", "contracts":
		return KindDataContract, true
	case "dataproductinfrastructure", "infrastructure", "infra", "infrastructures":
		return KindInfrastructure, true
	case "policy", "policies":
		return KindPolicy, true
	}
	return "", false
}

// Labels are the fields of an object that lists filter on and that
// authorization reads. They are derived from the manifest by spec.
type Labels struct {
	Domain      string   `json:"domain,omitempty"`
	OwnerTeam   string   `json:"owner_team,omitempty"`
	Sensitivity string   `json:"sensitivity,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	// Members are the principals of a Team object.
	Members []string `json:"members,omitempty"`
	// Owners are the owning teams of a Domain object.
	Owners []string `json:"owners,omitempty"`
}

// Normalize sorts and de-duplicates the list fields so that equal labels
// compare equal.
func (l *Labels) Normalize() {
	l.Tags = sortedUnique(l.Tags)
	l.Members = sortedUnique(l.Members)
	l.Owners = sortedUnique(l.Owners)
}

func sortedUnique(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := append([]string(nil), in...)
	sort.Strings(out)
	j := 0
	for i, s := range out {
		if i == 0 || s != out[j-1] {
			out[j] = s
			j++
		}
	}
	return out[:j]
}

// Object is a stored manifest: what was applied, its labels and revision.
type Object struct {
	Kind     Kind   `json:"kind"`
	ID       string `json:"id"`
	Revision int64  `json:"revision"`
	// Body is the manifest as applied, as JSON with the author's key order.
	Body      json.RawMessage `json:"manifest"`
	Labels    Labels          `json:"labels"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
	UpdatedBy string          `json:"updated_by"`
}

// Op is what a revision did.
type Op string

const (
	OpCreate Op = "create"
	OpUpdate Op = "update"
	OpDelete Op = "delete"
)

// Revision is one entry in an object's history.
type Revision struct {
	Kind     Kind            `json:"kind"`
	ID       string          `json:"id"`
	Revision int64           `json:"revision"`
	Op       Op              `json:"op"`
	Body     json.RawMessage `json:"manifest,omitempty"`
	Actor    string          `json:"actor"`
	At       time.Time       `json:"at"`
	ApplyID  string          `json:"apply_id,omitempty"`
}

// ProductVersion is one version of a data product: a current or previous
// version declared in its manifest. Revision is the product revision that
// last declared it as current_version (0 if it was only ever declared as a
// previous version here).
type ProductVersion struct {
	ProductID string          `json:"product_id"`
	Version   string          `json:"version"`
	Current   bool            `json:"current"`
	Revision  int64           `json:"revision,omitempty"`
	Body      json.RawMessage `json:"manifest,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
}

// PrincipalKind says whether a principal is a person or a service.
type PrincipalKind string

const (
	PrincipalUser    PrincipalKind = "user"
	PrincipalService PrincipalKind = "service"
)

// Principal is someone or something that calls the API. Team membership is
// declared in Team manifests (members[].principal), not here.
type Principal struct {
	ID        string        `json:"id"` // e.g. alice@example.com or svc-ingest
	Kind      PrincipalKind `json:"kind"`
	Admin     bool          `json:"admin"`
	CreatedAt time.Time     `json:"created_at"`
	// Teams is filled by the catalog from Team manifests when the
	// principal is resolved; it is not stored with the principal.
	Teams []string `json:"teams,omitempty"`
}

// Token is an API credential. Only its hash is stored; the secret is shown
// once, at creation.
type Token struct {
	ID          string     `json:"id"` // public part, e.g. tok_ab12cd34
	PrincipalID string     `json:"principal"`
	Name        string     `json:"name,omitempty"`
	Hash        string     `json:"-"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
}

// Clock tells the time; injected so tests are deterministic.
type Clock interface{ Now() time.Time }

// SystemClock is the wall clock.
type SystemClock struct{}

func (SystemClock) Now() time.Time { return time.Now().UTC() }
