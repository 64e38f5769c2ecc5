package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/access"
)

// The access routes: requests, approvals, grants, explanations.

func requestPath(id string) string { return "/api/v1/access-requests/" + url.PathEscape(id) }

// RequestAccess files an access request.
func (c *Client) RequestAccess(ctx context.Context, in access.NewRequest) (*access.AccessRequest, error) {
	body, _ := json.Marshal(in)
	var out access.AccessRequest
	err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/access-requests", body: body, ctype: "application/json"}, &out)
	return &out, err
}

// AccessRequests lists the access requests the caller may see.
func (c *Client) AccessRequests(ctx context.Context, f access.RequestFilter) ([]access.AccessRequest, error) {
	q := url.Values{}
	if f.ProductID != "" {
		q.Set("product", f.ProductID)
	}
	if f.State != "" {
		q.Set("state", f.State)
	}
	if f.Mine {
		q.Set("mine", "true")
	}
	var out struct {
		Items []access.AccessRequest `json:"items"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/access-requests", query: q}, &out)
	return out.Items, err
}

// AccessRequest returns one access request.
func (c *Client) AccessRequest(ctx context.Context, id string) (*access.AccessRequest, error) {
	var out access.AccessRequest
	err := c.do(ctx, request{method: http.MethodGet, path: requestPath(id)}, &out)
	return &out, err
}

// ApproveAccess approves a pending request and returns it with its grant.
func (c *Client) ApproveAccess(ctx context.Context, id string, a access.Approval) (*access.AccessRequest, *access.Grant, error) {
	body, _ := json.Marshal(a)
	var out struct {
		Request *access.AccessRequest `json:"request"`
		Grant   *access.Grant         `json:"grant"`
	}
	err := c.do(ctx, request{method: http.MethodPost, path: requestPath(id) + "/approve", body: body, ctype: "application/json"}, &out)
	return out.Request, out.Grant, err
}

// DenyAccess denies a pending request.
func (c *Client) DenyAccess(ctx context.Context, id, reason string) (*access.AccessRequest, error) {
	body, _ := json.Marshal(map[string]string{"reason": reason})
	var out access.AccessRequest
	err := c.do(ctx, request{method: http.MethodPost, path: requestPath(id) + "/deny", body: body, ctype: "application/json"}, &out)
	return &out, err
}

// Grants lists the grants the caller may see.
func (c *Client) Grants(ctx context.Context, f access.GrantFilter) ([]access.Grant, error) {
	q := url.Values{}
	if f.ProductID != "" {
		q.Set("product", f.ProductID)
	}
	if f.Principal != "" {
		q.Set("principal", f.Principal)
	}
	if f.State != "" {
		q.Set("state", f.State)
	}
	var out struct {
		Items []access.Grant `json:"items"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/grants", query: q}, &out)
	return out.Items, err
}

// RevokeGrant revokes a grant at once.
func (c *Client) RevokeGrant(ctx context.Context, id, reason string) (*access.Grant, error) {
	q := url.Values{}
	if reason != "" {
		q.Set("reason", reason)
	}
	var out access.Grant
	err := c.do(ctx, request{method: http.MethodDelete, path: "/api/v1/grants/" + url.PathEscape(id), query: q}, &out)
	return &out, err
}

// ExplainAccess returns the access decision for the caller (principal "")
// or for principal reading a product.
func (c *Client) ExplainAccess(ctx context.Context, productID, principal, via string) (*access.Decision, error) {
	p, _ := objectPath(rhizome.KindDataProduct, productID)
	q := url.Values{}
	if principal != "" {
		q.Set("principal", principal)
	}
	if via != "" {
		q.Set("via", via)
	}
	var out access.Decision
	err := c.do(ctx, request{method: http.MethodGet, path: p + "/access", query: q}, &out)
	return &out, err
}
