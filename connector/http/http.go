// Package http registers the http connector: a JSON API read page by page
// into NDJSON in the stage.
package http

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/connector"
	"github.com/rhizome-mesh/rhizome/connector/internal/stage"
)

func init() {
	connector.Register(connector.Spec{
		Name:    "http",
		Summary: "A JSON HTTP API, read page by page into NDJSON.",
		Fields: []connector.Field{
			{Name: "url", Type: connector.TypeString, Required: true, Doc: "The first page's URL (http or https)."},
			{Name: "method", Type: connector.TypeString, Default: "GET", Doc: "`GET` or `POST`."},
			{Name: "body", Type: connector.TypeString, Doc: "Request body of a `POST`, sent as `application/json` with every page's request."},
			{Name: "headers", Type: connector.TypeMap, Doc: "Extra request headers. Not for credentials: use `auth_header` and `auth_secret`."},
			{Name: "auth_header", Type: connector.TypeString, Default: "Authorization", Doc: "The header that carries `auth_secret`."},
			{Name: "auth_secret", Type: connector.TypeSecret, Doc: "Reference to the credential sent in `auth_header`, e.g. `env:CRM_TOKEN`. Never logged."},
			{Name: "auth_prefix", Type: connector.TypeString, Doc: "Written before the secret in the header, e.g. `Bearer ` (with the space)."},
			{Name: "items_path", Type: connector.TypeString, Doc: "Dotted path of the array of records in each response, e.g. `data.items`. Empty: the body is the array."},
			{Name: "next_link", Type: connector.TypeString, Doc: "Dotted path of the next page's URL in each response, e.g. `links.next`; paging stops when it is missing, null or empty."},
			{Name: "page_param", Type: connector.TypeString, Doc: "Query parameter of the page number, for APIs paged by number; paging stops at an empty or short page."},
			{Name: "page_start", Type: connector.TypeInt, Default: 1, Doc: "The first page number, with `page_param`."},
			{Name: "page_size", Type: connector.TypeInt, Doc: "Records per page, sent as `page_size_param`, with `page_param`."},
			{Name: "page_size_param", Type: connector.TypeString, Default: "page_size", Doc: "Query parameter of the page size."},
			{Name: "max_pages", Type: connector.TypeInt, Default: 100000, Doc: "Stop with an error after this many pages (a loop guard)."},
			{Name: "retries", Type: connector.TypeInt, Default: 3, Doc: "Retries of a request that failed with a 5xx, 429, a timeout or a connection error. 4xx fail at once."},
			{Name: "retry_wait", Type: connector.TypeDuration, Default: "1s", Doc: "Wait before the first retry; doubled for each next one (at most 1m)."},
			{Name: "timeout", Type: connector.TypeDuration, Default: "30s", Doc: "Time limit of one request, reading the body included."},
		},
		New: newHTTP,
	})
}

// maxPage bounds one response body: a page is held in memory, the
// sequence of pages is not.
const maxPage = 256 << 20

type httpConn struct {
	url, method, body        string
	headers                  map[string]string
	authHeader, authSecret   string
	authPrefix               string
	itemsPath, nextLink      []string
	pageParam, pageSizeParam string
	pageStart, pageSize      int64
	maxPages, retries        int64
	retryWait, timeout       time.Duration
}

func newHTTP(cfg map[string]any) (connector.Connector, error) {
	c := connector.Config(cfg)
	h := &httpConn{
		url: c.String("url"), method: strings.ToUpper(c.String("method")), body: c.String("body"), headers: c.StringMap("headers"),
		authHeader: c.String("auth_header"), authSecret: c.String("auth_secret"), authPrefix: c.String("auth_prefix"),
		itemsPath: path(c.String("items_path")), nextLink: path(c.String("next_link")),
		pageParam: c.String("page_param"), pageSizeParam: c.String("page_size_param"),
		pageStart: c.Int("page_start"), pageSize: c.Int("page_size"),
		maxPages: c.Int("max_pages"), retries: c.Int("retries"),
		retryWait: c.Duration("retry_wait"), timeout: c.Duration("timeout"),
	}
	var ps []rhizome.Problem
	if u, err := url.Parse(h.url); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		ps = append(ps, rhizome.Problem{Path: "config.url", Message: "not an http or https URL", Hint: "e.g. https://api.example.com/v1/customers"})
	}
	if h.method != "GET" && h.method != "POST" {
		ps = append(ps, rhizome.Problem{Path: "config.method", Message: fmt.Sprintf("method %q is not supported", h.method), Hint: "GET or POST"})
	}
	if h.body != "" && h.method != "POST" {
		ps = append(ps, rhizome.Problem{Path: "config.body", Message: "a body needs `method: POST`"})
	} else if h.body != "" && !json.Valid([]byte(h.body)) {
		ps = append(ps, rhizome.Problem{Path: "config.body", Message: "the body is not JSON"})
	}
	if h.nextLink != nil && h.pageParam != "" {
		ps = append(ps, rhizome.Problem{Path: "config.page_param", Message: "set `next_link` or `page_param`, not both"})
	}
	if c.Has("page_size") && h.pageParam == "" {
		ps = append(ps, rhizome.Problem{Path: "config.page_size", Message: "`page_size` needs `page_param`"})
	}
	if h.pageSize < 0 || h.retries < 0 || h.maxPages < 1 {
		ps = append(ps, rhizome.Problem{Path: "config", Message: "page_size and retries must not be negative, max_pages must be positive"})
	}
	if h.timeout <= 0 {
		ps = append(ps, rhizome.Problem{Path: "config.timeout", Message: "the timeout must be positive"})
	}
	for k := range h.headers {
		if strings.EqualFold(k, h.authHeader) {
			ps = append(ps, rhizome.Problem{Path: "config.headers." + k, Message: "credentials do not belong in `headers`",
				Hint: "use `auth_secret: env:NAME` instead"})
		}
	}
	if len(ps) > 0 {
		return nil, rhizome.Invalid("invalid http config", ps...)
	}
	return h, nil
}

func path(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ".")
}

func (h *httpConn) Stage(ctx context.Context, env connector.Env) (_ *connector.Staged, err error) {
	var auth string
	if h.authSecret != "" {
		s, err := connector.ResolveSecret(ctx, env, h.authSecret)
		if err != nil {
			return nil, rhizome.Wrap(err, "http")
		}
		auth = h.authPrefix + s
	}
	const name = "0000-http.ndjson"
	f, err := os.OpenFile(filepath.Join(env.StageDir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, rhizome.Errorf(rhizome.EInternal, "http: %v", err)
	}
	defer func() {
		f.Close()
		if err != nil {
			os.Remove(f.Name()) // no partial pages in the stage
		}
	}()
	cw := &stage.CountingWriter{W: f}
	w := bufio.NewWriterSize(cw, 1<<16)
	st := &connector.Staged{Format: connector.FormatNDJSON, Files: []string{name}}

	next := h.url
	page := h.pageStart
	seen := map[string]bool{}
	var line bytes.Buffer
	for pages := int64(0); next != ""; pages++ {
		if pages == h.maxPages {
			return nil, rhizome.Errorf(rhizome.EInvalid, "http %s: more than %d pages", redact(h.url), h.maxPages).
				WithHint("raise `max_pages`, or check that paging ends")
		}
		u := next
		if h.pageParam != "" {
			u = withQuery(h.url, h.pageParam, strconv.FormatInt(page, 10), h.pageSizeParam, h.pageSize)
		}
		if seen[u] {
			return nil, rhizome.Errorf(rhizome.EInvalid, "http %s: the next link points back to a page already read", redact(u)).
				WithHint("check `next_link`")
		}
		seen[u] = true
		body, err := h.fetch(ctx, env, u, auth)
		if err != nil {
			return nil, err
		}
		items, err := h.items(body)
		if err != nil {
			return nil, rhizome.Wrap(err, "http %s", redact(u))
		}
		for _, it := range items {
			line.Reset()
			if err := json.Compact(&line, it); err != nil {
				return nil, rhizome.Errorf(rhizome.EInvalid, "http %s: %v", redact(u), err)
			}
			line.WriteByte('\n')
			if _, err := w.Write(line.Bytes()); err != nil {
				return nil, rhizome.Errorf(rhizome.EInternal, "http: write the stage: %v", err)
			}
		}
		// Flush each page: memory holds one page, not the run.
		if err := w.Flush(); err != nil {
			return nil, rhizome.Errorf(rhizome.EInternal, "http: write the stage: %v", err)
		}
		st.Rows += int64(len(items))
		env.Log().Debug("http page", "url", redact(u), "items", len(items))
		switch {
		case h.nextLink != nil:
			if next, err = h.nextURL(body, u); err != nil {
				return nil, rhizome.Wrap(err, "http %s", redact(u))
			}
		case h.pageParam != "":
			page++
			if len(items) == 0 || (h.pageSize > 0 && int64(len(items)) < h.pageSize) {
				next = ""
			}
		default:
			next = ""
		}
	}
	if err := w.Flush(); err != nil {
		return nil, rhizome.Errorf(rhizome.EInternal, "http: write the stage: %v", err)
	}
	if err := f.Close(); err != nil {
		return nil, rhizome.Errorf(rhizome.EInternal, "http: write the stage: %v", err)
	}
	st.Bytes = cw.N
	env.Log().Info("staged http", "url", redact(h.url), "rows", st.Rows, "bytes", st.Bytes)
	return st, nil
}

// fetch gets one page, retrying 5xx, 429, timeouts and connection errors
// with exponential backoff. A 4xx fails at once.
func (h *httpConn) fetch(ctx context.Context, env connector.Env, u, auth string) ([]byte, error) {
	wait := h.retryWait
	var last error
	for attempt := int64(0); attempt <= h.retries; attempt++ {
		if attempt > 0 {
			env.Log().Warn("http retry", "url", redact(u), "attempt", attempt, "wait", wait, "error", last)
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-t.C:
			}
			wait = min(2*wait, time.Minute)
		}
		body, retry, err := h.once(ctx, env, u, auth)
		if err == nil {
			return body, nil
		}
		if !retry || ctx.Err() != nil {
			return nil, err
		}
		last = err
	}
	return nil, rhizome.Wrap(last, "after %d attempts", h.retries+1)
}

func (h *httpConn) once(ctx context.Context, env connector.Env, u, auth string) (page []byte, retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	var body io.Reader
	if h.body != "" {
		body = strings.NewReader(h.body)
	}
	req, err := http.NewRequestWithContext(ctx, h.method, u, body)
	if err != nil {
		return nil, false, rhizome.Errorf(rhizome.EInvalid, "http %s: %v", redact(u), err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range h.headers {
		req.Header.Set(k, v)
	}
	if auth != "" {
		req.Header.Set(h.authHeader, auth)
	}
	resp, err := h.client(env).Do(req)
	if err != nil {
		return nil, true, transportError(ctx, h.method, u, h.timeout, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		e := rhizome.Errorf(statusCode(resp.StatusCode), "%s %s: %s", h.method, redact(u), resp.Status)
		if s := strings.TrimSpace(string(snippet)); s != "" {
			e.Message += ": " + strings.ToValidUTF8(s, "?")
		}
		switch {
		case resp.StatusCode == 401 || resp.StatusCode == 403:
			e.WithHint("check the secret that `auth_secret` points at, and `auth_header`")
		case resp.StatusCode == 404:
			e.WithHint("check `url`")
		}
		return nil, resp.StatusCode >= 500 || resp.StatusCode == 429, e
	}
	page, err = io.ReadAll(io.LimitReader(resp.Body, maxPage+1))
	if err != nil {
		return nil, true, transportError(ctx, h.method, u, h.timeout, err)
	}
	if len(page) > maxPage {
		return nil, false, rhizome.Errorf(rhizome.ETooLarge, "%s %s: the response is larger than %d MiB", h.method, redact(u), maxPage>>20).
			WithHint("page the API with `next_link` or `page_param`")
	}
	return page, false, nil
}

// client is env's client, but it sends the credential to no other host
// than the one asked: Go drops Authorization on such redirects, not an
// X-Api-Key.
func (h *httpConn) client(env connector.Env) *http.Client {
	c := *env.Client()
	next := c.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Host != via[0].URL.Host {
			req.Header.Del(h.authHeader)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &c
}

func transportError(ctx context.Context, method, u string, timeout time.Duration, err error) error {
	var ne net.Error
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return rhizome.Errorf(rhizome.EUnavailable, "%s %s: timed out after %s", method, redact(u), timeout).
			WithHint("raise `timeout`, or check that the API is up")
	}
	// err (a *url.Error) repeats the full URL: name the cause only.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &rhizome.Error{Code: rhizome.EUnavailable, Message: fmt.Sprintf("%s %s: %v", method, redact(u), err)}
}

func statusCode(status int) rhizome.ErrorCode {
	switch {
	case status == 401:
		return rhizome.EUnauthorized
	case status == 403:
		return rhizome.EForbidden
	case status == 404:
		return rhizome.ENotFound
	case status == 413:
		return rhizome.ETooLarge
	case status >= 500 || status == 429:
		return rhizome.EUnavailable
	}
	return rhizome.EInvalid
}

// items returns the records of one page, untouched (numbers keep their
// digits, keys their order).
func (h *httpConn) items(body []byte) ([]json.RawMessage, error) {
	raw, err := lookup(body, h.itemsPath)
	if err != nil {
		return nil, err
	}
	if raw == nil || string(raw) == "null" {
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		where := "the body"
		if h.itemsPath != nil {
			where = "`" + strings.Join(h.itemsPath, ".") + "`"
		}
		return nil, rhizome.Errorf(rhizome.EInvalid, "%s is not an array of records", where).
			WithHint("set `items_path` to where the array is, e.g. `data.items`")
	}
	return items, nil
}

func (h *httpConn) nextURL(body []byte, current string) (string, error) {
	raw, err := lookup(body, h.nextLink)
	if err != nil || raw == nil {
		return "", nil // no link: the last page
	}
	var s *string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", rhizome.Errorf(rhizome.EInvalid, "`%s` is not a URL", strings.Join(h.nextLink, "."))
	}
	if s == nil || *s == "" {
		return "", nil
	}
	base, _ := url.Parse(current)
	ref, err := url.Parse(*s)
	if err != nil {
		return "", rhizome.Errorf(rhizome.EInvalid, "`%s` is not a URL: %v", strings.Join(h.nextLink, "."), err)
	}
	return base.ResolveReference(ref).String(), nil
}

// lookup walks a dotted path through JSON objects; a missing key is nil.
func lookup(body []byte, path []string) (json.RawMessage, error) {
	raw := json.RawMessage(body)
	for i, key := range path {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			where := "the response"
			if i > 0 {
				where = "`" + strings.Join(path[:i], ".") + "`"
			}
			return nil, rhizome.Errorf(rhizome.EInvalid, "%s is not a JSON object", where)
		}
		v, ok := m[key]
		if !ok {
			return nil, nil
		}
		raw = v
	}
	if !json.Valid(raw) {
		return nil, rhizome.Errorf(rhizome.EInvalid, "the response is not JSON")
	}
	return raw, nil
}

func withQuery(u, pageParam, page, sizeParam string, size int64) string {
	p, _ := url.Parse(u)
	q := p.Query()
	q.Set(pageParam, page)
	if size > 0 {
		q.Set(sizeParam, strconv.FormatInt(size, 10))
	}
	p.RawQuery = q.Encode()
	return p.String()
}

// redact drops user:password@ from a URL for messages and logs.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		return u
	}
	return p.Redacted()
}
