package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/rhizome-mesh/rhizome"
)

// The pipeline routes: runs, logs, lineage, snapshots, connectors.

func runsPath(productID string) string {
	p, _ := objectPath(rhizome.KindDataProduct, productID)
	return p + "/runs"
}

// Run queues a run of a product's pipeline.
func (c *Client) Run(ctx context.Context, productID, version, timeout string) (*rhizome.Run, error) {
	body, _ := json.Marshal(map[string]string{"version": version, "timeout": timeout})
	var run rhizome.Run
	err := c.do(ctx, request{method: http.MethodPost, path: runsPath(productID), body: body, ctype: "application/json"}, &run)
	return &run, err
}

// Backfill queues one run per step from from to to.
func (c *Client) Backfill(ctx context.Context, productID string, from, to time.Time, step string) ([]rhizome.Run, error) {
	p, _ := objectPath(rhizome.KindDataProduct, productID)
	body, _ := json.Marshal(map[string]string{"from": from.UTC().Format(time.RFC3339), "to": to.UTC().Format(time.RFC3339), "step": step})
	var out struct {
		Items []rhizome.Run `json:"items"`
	}
	err := c.do(ctx, request{method: http.MethodPost, path: p + "/backfill", body: body, ctype: "application/json"}, &out)
	return out.Items, err
}

// Runs lists runs, newest first: of one product, or all when productID is "".
func (c *Client) Runs(ctx context.Context, productID string, state rhizome.RunState, limit int) ([]rhizome.Run, error) {
	q := url.Values{}
	if state != "" {
		q.Set("state", string(state))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	path := "/api/v1/runs"
	if productID != "" {
		path = runsPath(productID)
	}
	var out struct {
		Items []rhizome.Run `json:"items"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: path, query: q}, &out)
	return out.Items, err
}

// GetRun returns one run.
func (c *Client) GetRun(ctx context.Context, id string) (*rhizome.Run, error) {
	var run rhizome.Run
	err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/runs/" + url.PathEscape(id)}, &run)
	return &run, err
}

// RunLogs returns a run's log lines after seq.
func (c *Client) RunLogs(ctx context.Context, id string, after int64) ([]rhizome.RunLog, error) {
	q := url.Values{}
	if after > 0 {
		q.Set("after", strconv.FormatInt(after, 10))
	}
	var out struct {
		Items []rhizome.RunLog `json:"items"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/runs/" + url.PathEscape(id) + "/logs", query: q}, &out)
	return out.Items, err
}

// RunLineage returns a run's OpenLineage RunEvents.
func (c *Client) RunLineage(ctx context.Context, id string) ([]json.RawMessage, error) {
	var out struct {
		Items []json.RawMessage `json:"items"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/runs/" + url.PathEscape(id) + "/lineage"}, &out)
	return out.Items, err
}

// CancelRun cancels a queued or running run.
func (c *Client) CancelRun(ctx context.Context, id string) (*rhizome.Run, error) {
	var run rhizome.Run
	err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/runs/" + url.PathEscape(id) + "/cancel"}, &run)
	return &run, err
}

// Snapshots returns the table snapshots of a product version ("" for the
// current one) as the server sends them.
func (c *Client) Snapshots(ctx context.Context, productID, version string) (json.RawMessage, error) {
	p, _ := objectPath(rhizome.KindDataProduct, productID)
	q := url.Values{}
	if version != "" {
		q.Set("version", version)
	}
	var out json.RawMessage
	err := c.do(ctx, request{method: http.MethodGet, path: p + "/snapshots", query: q}, &out)
	return out, err
}

// ConnectorInfo describes one registered connector.
type ConnectorInfo struct {
	Name    string `json:"name"`
	Summary string `json:"summary"`
	Fields  []struct {
		Name     string `json:"name"`
		Type     string `json:"type"`
		Required bool   `json:"required"`
		Default  any    `json:"default,omitempty"`
		Doc      string `json:"doc"`
	} `json:"fields"`
}

// Connectors lists the server's connectors.
func (c *Client) Connectors(ctx context.Context) ([]ConnectorInfo, error) {
	var out struct {
		Items []ConnectorInfo `json:"items"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/connectors"}, &out)
	return out.Items, err
}
