package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/rhizome-mesh/rhizome/alert"
	"github.com/rhizome-mesh/rhizome/slo"
)

// The monitoring routes: SLO reports, alerts, their history and
// acknowledgement.

// SLOReport is a product's SLO report with its breach events.
type SLOReport struct {
	slo.Report
	Events []slo.Event `json:"events"`
}

// ProductSLO returns one product's SLO report.
func (c *Client) ProductSLO(ctx context.Context, productID string) (*SLOReport, error) {
	var out SLOReport
	err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/products/" + url.PathEscape(productID) + "/slo"}, &out)
	return &out, err
}

// SLOs returns the reports of every product with an sla, optionally of
// one team or domain.
func (c *Client) SLOs(ctx context.Context, team, domain string) ([]slo.Report, error) {
	q := url.Values{}
	if team != "" {
		q.Set("team", team)
	}
	if domain != "" {
		q.Set("domain", domain)
	}
	var out struct {
		Items []slo.Report `json:"items"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/slo", query: q}, &out)
	return out.Items, err
}

// AlertFilter selects alerts; empty fields do not filter.
type AlertFilter struct {
	State, Product, Team string
	Limit                int
}

// Alerts lists alerts, most recently changed first.
func (c *Client) Alerts(ctx context.Context, f AlertFilter) ([]alert.Alert, error) {
	q := url.Values{}
	for k, v := range map[string]string{"state": f.State, "product": f.Product, "team": f.Team} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var out struct {
		Items []alert.Alert `json:"items"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/alerts", query: q}, &out)
	return out.Items, err
}

// alertPath escapes a key's slashes into one path segment.
func alertPath(key string) string { return "/api/v1/alerts/" + url.PathEscape(key) }

// Alert returns one alert.
func (c *Client) Alert(ctx context.Context, key string) (*alert.Alert, error) {
	var out alert.Alert
	err := c.do(ctx, request{method: http.MethodGet, path: alertPath(key)}, &out)
	return &out, err
}

// AlertHistory returns an alert's events, oldest first.
func (c *Client) AlertHistory(ctx context.Context, key string) ([]alert.Event, error) {
	var out struct {
		Items []alert.Event `json:"items"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: alertPath(key) + "/history"}, &out)
	return out.Items, err
}

// AckAlert acknowledges a firing alert, stopping its escalation.
func (c *Client) AckAlert(ctx context.Context, key, note string) (*alert.Alert, error) {
	body, _ := json.Marshal(map[string]string{"note": note})
	var out alert.Alert
	err := c.do(ctx, request{method: http.MethodPost, path: alertPath(key) + "/ack", body: body, ctype: "application/json"}, &out)
	return &out, err
}
