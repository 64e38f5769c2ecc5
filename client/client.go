// Package client is the Go client of Rhizome's REST API (docs/API.md). It
// owns the wire: URLs, headers, JSON bodies, and turning every failure (an
// error body, an unexpected status, an unreachable server) into a
// *rhizome.Error with the right code. Presentation is left to callers such
// as the CLI.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"

	"github.com/rhizome-mesh/rhizome"
)

// UnavailableHint is the hint on errors for a server that cannot be reached.
const UnavailableHint = "is `rhizome up` running? set --server or RHIZOME_SERVER"

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 1 << 20

// Client calls one Rhizome server. It is safe for concurrent use.
type Client struct {
	base  string
	token string
	hc    *http.Client
}

// New returns a client of the server at baseURL (e.g.
// http://127.0.0.1:8080) that authenticates with token (none if empty).
// A nil hc means http.DefaultClient; deadlines come from the contexts
// passed to each call.
func New(baseURL, token string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), token: token, hc: hc}
}

// BaseURL is the server's address as given to New.
func (c *Client) BaseURL() string { return c.base }

// request describes one call.
type request struct {
	method string
	path   string // escaped, starting with /
	query  url.Values
	header http.Header
	body   []byte
	ctype  string
}

// do sends req and decodes a 2xx JSON body into out (nil: discard it;
// *json.RawMessage: keep it as is). Every error it returns is a
// *rhizome.Error, except the context's own cancellation.
func (c *Client) do(ctx context.Context, req request, out any) error {
	u := c.base + req.path
	if len(req.query) > 0 {
		u += "?" + req.query.Encode()
	}
	var body io.Reader
	if req.body != nil {
		body = bytes.NewReader(req.body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, u, body)
	if err != nil {
		return rhizome.Errorf(rhizome.EInvalid, "bad server URL %q: %v", c.base, err).WithHint("set --server or RHIZOME_SERVER to e.g. http://127.0.0.1:8080")
	}
	for k, vs := range req.header {
		hr.Header[k] = vs
	}
	hr.Header.Set("Accept", "application/json")
	if req.ctype != "" {
		hr.Header.Set("Content-Type", req.ctype)
	}
	if c.token != "" {
		hr.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(hr)
	if err != nil {
		return c.transportError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return decodeError(resp, req.method, req.path)
	}
	switch out := out.(type) {
	case nil:
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	case *json.RawMessage:
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return c.transportError(ctx, err)
		}
		*out = b
		return nil
	default:
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return &rhizome.Error{Code: rhizome.EInternal, Message: fmt.Sprintf("%s %s: decoding the response: %v", req.method, req.path, err), Err: err}
		}
		return nil
	}
}

// transportError maps a failure to talk to the server at all.
func (c *Client) transportError(ctx context.Context, err error) error {
	if ctx.Err() == context.Canceled {
		return ctx.Err()
	}
	if ctx.Err() == context.DeadlineExceeded {
		return &rhizome.Error{Code: rhizome.EUnavailable, Message: fmt.Sprintf("the server at %s did not answer in time", c.base), Hint: UnavailableHint, Err: err}
	}
	msg := fmt.Sprintf("cannot reach the server at %s: %v", c.base, unwrapURLError(err))
	if errors.Is(err, syscall.ECONNREFUSED) {
		msg = fmt.Sprintf("cannot connect to the server at %s (connection refused)", c.base)
	}
	return &rhizome.Error{Code: rhizome.EUnavailable, Message: msg, Hint: UnavailableHint, Err: err}
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// decodeError turns an error response into a *rhizome.Error: the server's
// own JSON error when there is one, else one made from the status.
func decodeError(resp *http.Response, method, path string) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var body struct {
		Error *rhizome.Error `json:"error"`
	}
	if json.Unmarshal(b, &body) == nil && body.Error != nil && body.Error.Code != "" {
		e := body.Error
		if e.Hint == "" && e.Code == rhizome.EUnauthorized {
			e.Hint = "pass a token with --token or RHIZOME_TOKEN"
		}
		return e
	}
	e := &rhizome.Error{Code: codeOf(resp.StatusCode), Message: fmt.Sprintf("%s %s: server answered %s", method, path, resp.Status)}
	if s := firstLine(b); s != "" {
		e.Message += ": " + s
	}
	if e.Code == rhizome.EUnavailable {
		e.Hint = UnavailableHint
	}
	return e
}

// codeOf maps an HTTP status without an error body to an error code: the
// inverse of the server's table in docs/API.md.
func codeOf(status int) rhizome.ErrorCode {
	switch status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return rhizome.EInvalid
	case http.StatusUnauthorized:
		return rhizome.EUnauthorized
	case http.StatusForbidden:
		return rhizome.EForbidden
	case http.StatusNotFound:
		return rhizome.ENotFound
	case http.StatusConflict, http.StatusPreconditionFailed:
		return rhizome.EConflict
	case http.StatusRequestEntityTooLarge:
		return rhizome.ETooLarge
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return rhizome.EUnavailable
	}
	return rhizome.EInternal
}

func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// objectPath is /api/v1/{plural}[/{id}].
func objectPath(kind rhizome.Kind, id string) (string, error) {
	if kind == "" {
		return "", rhizome.Errorf(rhizome.EInvalid, "no kind given")
	}
	p := "/api/v1/" + url.PathEscape(kind.Plural())
	if id != "" {
		p += "/" + url.PathEscape(id)
	}
	return p, nil
}

// ifMatch is the If-Match header pinning a revision; none for rev <= 0.
func ifMatch(rev int64) http.Header {
	if rev <= 0 {
		return nil
	}
	return http.Header{"If-Match": {strconv.Quote(strconv.FormatInt(rev, 10))}}
}
