package client

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/rhizome-mesh/rhizome"
)

// One method per route of docs/API.md, in the doc's order.

// ListOptions filters and pages a List. Empty fields do not filter.
type ListOptions struct {
	Domain      string
	Tag         string
	OwnerTeam   string
	Sensitivity string
	// Member filters teams by a member principal.
	Member string
	// Limit is the page size (server default 100, at most 1000).
	Limit int
	// After is the cursor: Page.Next of the previous page.
	After string
}

func (o ListOptions) query() url.Values {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("domain", o.Domain)
	set("tag", o.Tag)
	set("owner_team", o.OwnerTeam)
	set("sensitivity", o.Sensitivity)
	set("member", o.Member)
	set("after", o.After)
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	return q
}

// Page is one page of a List.
type Page struct {
	Items []*rhizome.Object `json:"items"`
	// Next is the cursor of the next page; empty on the last page.
	Next string `json:"next,omitempty"`
}

// List returns one page of the objects of a kind.
func (c *Client) List(ctx context.Context, kind rhizome.Kind, opt ListOptions) (*Page, error) {
	p, err := objectPath(kind, "")
	if err != nil {
		return nil, err
	}
	var page Page
	if err := c.do(ctx, request{method: http.MethodGet, path: p, query: opt.query()}, &page); err != nil {
		return nil, err
	}
	return &page, nil
}

// ListAll follows the cursors from opt.After to the last page.
func (c *Client) ListAll(ctx context.Context, kind rhizome.Kind, opt ListOptions) ([]*rhizome.Object, error) {
	var all []*rhizome.Object
	for {
		page, err := c.List(ctx, kind, opt)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.Next == "" || page.Next == opt.After {
			return all, nil
		}
		opt.After = page.Next
	}
}

// Get returns one object; ENotFound if absent.
func (c *Client) Get(ctx context.Context, kind rhizome.Kind, id string) (*rhizome.Object, error) {
	p, err := objectPath(kind, id)
	if err != nil {
		return nil, err
	}
	var obj rhizome.Object
	if err := c.do(ctx, request{method: http.MethodGet, path: p}, &obj); err != nil {
		return nil, err
	}
	return &obj, nil
}

// Put applies one manifest (JSON, or YAML when it does not start with
// '{'). A positive ifMatch makes it conditional on the object being at
// that revision (EConflict otherwise); 0 applies whatever the revision.
func (c *Client) Put(ctx context.Context, kind rhizome.Kind, id string, manifest []byte, ifMatchRev int64) (*rhizome.ApplyResult, error) {
	p, err := objectPath(kind, id)
	if err != nil {
		return nil, err
	}
	ctype := "application/yaml"
	if t := bytes.TrimSpace(manifest); len(t) > 0 && t[0] == '{' {
		ctype = "application/json"
	}
	var res rhizome.ApplyResult
	req := request{method: http.MethodPut, path: p, header: ifMatch(ifMatchRev), body: manifest, ctype: ctype}
	if err := c.do(ctx, req, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// Delete deletes one object; ifMatch as for Put.
func (c *Client) Delete(ctx context.Context, kind rhizome.Kind, id string, ifMatchRev int64) (*rhizome.ApplyResult, error) {
	p, err := objectPath(kind, id)
	if err != nil {
		return nil, err
	}
	var res rhizome.ApplyResult
	if err := c.do(ctx, request{method: http.MethodDelete, path: p, header: ifMatch(ifMatchRev)}, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// History returns an object's revisions, oldest first.
func (c *Client) History(ctx context.Context, kind rhizome.Kind, id string) ([]rhizome.Revision, error) {
	p, err := objectPath(kind, id)
	if err != nil {
		return nil, err
	}
	var out struct {
		Items []rhizome.Revision `json:"items"`
	}
	if err := c.do(ctx, request{method: http.MethodGet, path: p + "/history"}, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}

// Versions returns a product's versions, newest first.
func (c *Client) Versions(ctx context.Context, productID string) ([]rhizome.ProductVersion, error) {
	p, _ := objectPath(rhizome.KindDataProduct, productID)
	var out struct {
		Items []rhizome.ProductVersion `json:"items"`
	}
	if err := c.do(ctx, request{method: http.MethodGet, path: p + "/versions"}, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}

// Version returns one version of a product.
func (c *Client) Version(ctx context.Context, productID, version string) (*rhizome.ProductVersion, error) {
	p, _ := objectPath(rhizome.KindDataProduct, productID)
	var v rhizome.ProductVersion
	if err := c.do(ctx, request{method: http.MethodGet, path: p + "/versions/" + url.PathEscape(version)}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Schemas lists the kinds that have a JSON Schema.
func (c *Client) Schemas(ctx context.Context) ([]rhizome.Kind, error) {
	var out struct {
		Items []rhizome.Kind `json:"items"`
	}
	if err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/schemas"}, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}

// Schema returns a kind's JSON Schema as the server sent it.
func (c *Client) Schema(ctx context.Context, kind rhizome.Kind) (json.RawMessage, error) {
	var raw json.RawMessage
	if err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/schemas/" + url.PathEscape(kind.Plural())}, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// Apply plans, and unless req.DryRun applies, a set of manifest files.
func (c *Client) Apply(ctx context.Context, req rhizome.ApplyRequest) (*rhizome.ApplyResult, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, rhizome.Wrap(err, "encoding the apply request")
	}
	var res rhizome.ApplyResult
	if err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/apply", body: body, ctype: "application/json"}, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// WhoAmI returns the caller: id, kind, admin and teams.
func (c *Client) WhoAmI(ctx context.Context) (*rhizome.Principal, error) {
	var p rhizome.Principal
	if err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/whoami"}, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// TokenRequest is the body of POST /api/v1/tokens.
type TokenRequest struct {
	Principal string                `json:"principal,omitempty"`
	Kind      rhizome.PrincipalKind `json:"kind,omitempty"`
	Name      string                `json:"name,omitempty"`
	Admin     bool                  `json:"admin,omitempty"`
	// ExpiresIn is a Go duration, e.g. "720h"; empty: no expiry.
	ExpiresIn string `json:"expires_in,omitempty"`
}

// NewToken is a created token and its secret, which is shown only once.
type NewToken struct {
	Token  rhizome.Token `json:"token"`
	Secret string        `json:"secret"`
}

// CreateToken creates a token.
func (c *Client) CreateToken(ctx context.Context, req TokenRequest) (*NewToken, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, rhizome.Wrap(err, "encoding the token request")
	}
	var out NewToken
	if err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/tokens", body: body, ctype: "application/json"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListTokens lists tokens: all of them for admins, the caller's otherwise.
func (c *Client) ListTokens(ctx context.Context) ([]rhizome.Token, error) {
	var out struct {
		Items []rhizome.Token `json:"items"`
	}
	if err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/tokens"}, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}

// RevokeToken revokes a token by its id.
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: "/api/v1/tokens/" + url.PathEscape(id)}, nil)
}

// Principals lists every principal (admins only).
func (c *Client) Principals(ctx context.Context) ([]rhizome.Principal, error) {
	var out struct {
		Items []rhizome.Principal `json:"items"`
	}
	if err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/principals"}, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}

// ServerVersion returns the server's build version (GET /api/v1/version,
// which needs no token). It accepts {"version": "..."} or a bare string.
func (c *Client) ServerVersion(ctx context.Context) (string, error) {
	var raw json.RawMessage
	if err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/version"}, &raw); err != nil {
		return "", err
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var v struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(raw, &v); err != nil || v.Version == "" {
		return "", rhizome.Errorf(rhizome.EInternal, "GET /api/v1/version: unexpected body %s", firstLine(raw))
	}
	return v.Version, nil
}

// Ready reports whether the server is up and its store answers (GET
// /readyz): nil when ready, EUnavailable (or the server's error) if not.
func (c *Client) Ready(ctx context.Context) error {
	return c.do(ctx, request{method: http.MethodGet, path: "/readyz"}, nil)
}
