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

// UnmarshalJSON reads non-finite metrics, which the server writes as
// strings ("+Inf", "NaN").
func (c *CheckRun) UnmarshalJSON(b []byte) error {
	type plain CheckRun
	var raw struct {
		plain
		Report json.RawMessage `json:"report"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*c = CheckRun(raw.plain)
	if len(raw.Report) == 0 || string(raw.Report) == "null" {
		return nil
	}
	var rep struct {
		Results []map[string]any `json:"results"`
	}
	if err := json.Unmarshal(raw.Report, &rep); err != nil {
		return err
	}
	var r quality.Report
	if err := json.Unmarshal(raw.Report, &struct {
		Passed   *bool          `json:"passed"`
		Warnings *int           `json:"warnings"`
		Failures *int           `json:"failures"`
		Duration *time.Duration `json:"duration"`
	}{&r.Passed, &r.Warnings, &r.Failures, &r.Duration}); err != nil {
		return err
	}
	for _, m := range rep.Results {
		if s, ok := m["metric"].(string); ok {
			f, _ := strconv.ParseFloat(s, 64)
			m["metric"] = nil
			fixed, _ := json.Marshal(m)
			var res quality.Result
			if err := json.Unmarshal(fixed, &res); err != nil {
				return err
			}
			res.Metric = f
			r.Results = append(r.Results, res)
			continue
		}
		b, _ := json.Marshal(m)
		var res quality.Result
		if err := json.Unmarshal(b, &res); err != nil {
			return err
		}
		r.Results = append(r.Results, res)
	}
	c.Report = &r
	return nil
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
