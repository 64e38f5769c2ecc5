package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/qreport"
	"github.com/rhizome-mesh/rhizome/quality"
)

// The quality routes: get_quality_report() and on-demand checks.

// CheckRun is the outcome of running a product's checks on demand.
type CheckRun struct {
	RunID     string          `json:"run_id"`
	ProductID string          `json:"product_id"`
	Version   string          `json:"version"`
	Gate      string          `json:"gate"`
	At        time.Time       `json:"at"`
	Report    *quality.Report `json:"report"`
}

// RunChecks runs a product version's checks ("" = current) now against
// its current snapshot.
func (c *Client) RunChecks(ctx context.Context, productID, version string) (*CheckRun, error) {
	p, _ := objectPath(rhizome.KindDataProduct, productID)
	body, _ := json.Marshal(map[string]string{"version": version})
	var out CheckRun
	err := c.do(ctx, request{method: http.MethodPost, path: p + "/checks", body: body, ctype: "application/json"}, &out)
	return &out, err
}

// QualityReport returns a product version's quality report ("" = current;
// history 0 = the server's default).
func (c *Client) QualityReport(ctx context.Context, productID, version string, history int) (*qreport.Report, error) {
	p, _ := objectPath(rhizome.KindDataProduct, productID)
	q := url.Values{}
	if version != "" {
		q.Set("version", version)
	}
	if history > 0 {
		q.Set("history", strconv.Itoa(history))
	}
	var out qreport.Report
	err := c.do(ctx, request{method: http.MethodGet, path: p + "/quality", query: q}, &out)
	return &out, err
}
