package client

import (
	"encoding/json"
	"math"
	"testing"
)

// A non-finite metric (a freshness check on a table without timestamps)
// comes as a string; the client reads it back as a float.
func TestCheckRunReadsNonFiniteMetrics(t *testing.T) {
	body := `{"run_id": "check-1", "product_id": "dp.a.b", "version": "1.0.0", "gate": "quarantine", "report": {
	  "results": [
	    {"check": {"name": "freshness", "type": "freshness"}, "metric": "+Inf", "threshold": "< 24 hours", "passed": false, "severity": "error"},
	    {"check": {"name": "row_count", "type": "row_count"}, "metric": 12, "threshold": "> 0", "passed": true, "severity": "error"}],
	  "passed": false, "warnings": 0, "failures": 1, "duration": 5000000}}`
	var cr CheckRun
	if err := json.Unmarshal([]byte(body), &cr); err != nil {
		t.Fatal(err)
	}
	r := cr.Report
	if cr.RunID != "check-1" || cr.Gate != "quarantine" || r == nil || len(r.Results) != 2 || r.Failures != 1 || r.Passed || r.Duration.Milliseconds() != 5 {
		t.Fatalf("%+v %+v", cr, r)
	}
	if !math.IsInf(r.Results[0].Metric, 1) || r.Results[0].Check.Name != "freshness" || r.Results[1].Metric != 12 || r.Gate() != "quarantine" {
		t.Fatalf("results %+v", r.Results)
	}
}
