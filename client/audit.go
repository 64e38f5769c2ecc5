package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/audit"
)

// The audit, retention, erasure and change-feed routes.

// AuditQuery filters the audit log; empty fields do not filter. Since and
// Until are RFC 3339 times or durations back from now ("24h").
type AuditQuery struct {
	Product, Principal, Action, Decision string
	Since, Until                         string
	Cursor                               string
	Limit                                int
}

func (q AuditQuery) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"product": q.Product, "principal": q.Principal, "action": q.Action,
		"decision": q.Decision, "since": q.Since, "until": q.Until, "cursor": q.Cursor} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

// Audit returns one page of audit entries, newest first.
func (c *Client) Audit(ctx context.Context, q AuditQuery) (*audit.Page, error) {
	var p audit.Page
	err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/audit", query: q.values()}, &p)
	return &p, err
}

// VerifyAudit asks the server to walk the audit chain.
func (c *Client) VerifyAudit(ctx context.Context) (*audit.Verification, error) {
	var v audit.Verification
	err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/audit/verify"}, &v)
	return &v, err
}

// ExportAudit copies the audit log, as JSON lines, to w and returns how
// many lines it copied.
func (c *Client) ExportAudit(ctx context.Context, q AuditQuery, w io.Writer) (int64, error) {
	resp, err := c.stream(ctx, "/api/v1/audit/export", q.values(), nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var n int64
	br := bufio.NewReader(resp.Body)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			if _, werr := w.Write(line); werr != nil {
				return n, rhizome.Wrap(werr, "writing the export")
			}
			n++
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, c.transportError(ctx, err)
		}
	}
}

// stream sends a GET and returns the open response (2xx), for bodies
// read as they come.
func (c *Client) stream(ctx context.Context, path string, q url.Values, header http.Header) (*http.Response, error) {
	return c.open(ctx, http.MethodGet, path, q, nil, header)
}

// open sends a request (a JSON body when body is not nil) and returns the
// open response when it is a 2xx; otherwise the server's error.
func (c *Client) open(ctx context.Context, method, path string, q url.Values, body []byte, header http.Header) (*http.Response, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	hr, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, rhizome.Errorf(rhizome.EInvalid, "bad server URL %q: %v", c.base, err)
	}
	for k, vs := range header {
		hr.Header[k] = vs
	}
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		hr.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(hr)
	if err != nil {
		return nil, c.transportError(ctx, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		return nil, decodeError(resp, method, path)
	}
	return resp, nil
}

// RetentionTable is what a rewrite did to one table (server: retention.TableResult).
type RetentionTable struct {
	Version          string  `json:"version"`
	Table            string  `json:"table"`
	RowsBefore       int64   `json:"rows_before"`
	RowsDeleted      int64   `json:"rows_deleted"`
	SnapshotID       int64   `json:"snapshot_id,omitempty"`
	SnapshotsExpired []int64 `json:"snapshots_expired,omitempty"`
	FilesRemoved     int     `json:"files_removed,omitempty"`
}

// RetentionResult is what an enforcement or erasure did to one product
// (server: retention.Result).
type RetentionResult struct {
	ProductID        string           `json:"product_id"`
	Column           string           `json:"column"`
	Cutoff           *time.Time       `json:"cutoff,omitempty"`
	RowsDeleted      int64            `json:"rows_deleted"`
	Tables           []RetentionTable `json:"tables"`
	SnapshotsExpired int              `json:"snapshots_expired"`
	Skipped          string           `json:"skipped,omitempty"`
}

// ErasureReport is what an erasure did (server: retention.ErasureReport).
type ErasureReport struct {
	Key         string            `json:"key,omitempty"`
	Value       string            `json:"value"`
	Products    []RetentionResult `json:"products"`
	RowsDeleted int64             `json:"rows_deleted"`
	Failed      []string          `json:"failed,omitempty"`
}

// EnforceRetention deletes a product's rows past its retention period.
func (c *Client) EnforceRetention(ctx context.Context, productID string) (*RetentionResult, error) {
	p, _ := objectPath(rhizome.KindDataProduct, productID)
	var res RetentionResult
	err := c.do(ctx, request{method: http.MethodPost, path: p + "/retention/enforce"}, &res)
	return &res, err
}

// Erase deletes every row of one data subject.
func (c *Client) Erase(ctx context.Context, key, value string, products []string, reason string) (*ErasureReport, error) {
	body, _ := json.Marshal(map[string]any{"key": key, "value": value, "products": products, "reason": reason})
	var rep ErasureReport
	err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/erasure", body: body, ctype: "application/json"}, &rep)
	return &rep, err
}

// ChangeEvent is one snapshot event of a product's change feed.
type ChangeEvent struct {
	ID         string    `json:"-"` // the SSE id: the snapshot id
	Product    string    `json:"product"`
	Version    string    `json:"version"`
	SnapshotID int64     `json:"snapshot_id"`
	Rows       int64     `json:"rows"`
	RowsAdded  int64     `json:"rows_added"`
	Operation  string    `json:"operation"`
	At         time.Time `json:"at"`
}

// Changes follows a product's change feed, calling fn for each snapshot
// event until ctx ends, fn returns an error (returned as is), or the
// server closes the stream (nil). lastEventID resumes after a snapshot.
func (c *Client) Changes(ctx context.Context, productID, lastEventID string, fn func(ChangeEvent) error) error {
	p, _ := objectPath(rhizome.KindDataProduct, productID)
	h := http.Header{"Accept": {"text/event-stream"}}
	if lastEventID != "" {
		h.Set("Last-Event-ID", lastEventID)
	}
	resp, err := c.stream(ctx, p+"/changes", nil, h)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var id, event, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if event == "snapshot" && data != "" {
				var ev ChangeEvent
				if err := json.Unmarshal([]byte(data), &ev); err != nil {
					return rhizome.Errorf(rhizome.EInternal, "change feed: bad event %q: %v", data, err)
				}
				ev.ID = id
				if err := fn(ev); err != nil {
					return err
				}
			}
			event, data = "", ""
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "id:"):
			id = strings.TrimSpace(strings.TrimPrefix(line, "id:"))
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data += strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return c.transportError(ctx, err)
	}
	return nil
}
