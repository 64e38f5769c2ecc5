package quality

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
)

// JUnit XML, the report format CI systems read: one testsuite per run, one
// testcase per check. A failed check is a <failure> (error severity) or
// carries a <system-out> warning (warn severity passes the build, as it
// passes the gate); a check that could not be evaluated is an <error>; a
// check that passed with a note (nothing to measure) is <skipped>.

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	Skipped   *junitProblem `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// JUnit renders the report as JUnit XML under suiteName (e.g. the product
// id). Samples are written as JSON lines in the failure's text, already
// masked by Run.
func (r *Report) JUnit(suiteName string) ([]byte, error) {
	s := junitSuite{Name: suiteName, Tests: len(r.Results), Time: fmt.Sprintf("%.3f", r.Duration.Seconds())}
	for _, res := range r.Results {
		c := junitCase{Name: res.Check.Name, Classname: suiteName + "." + res.Check.Type, Time: "0"}
		detail := func() string {
			var b strings.Builder
			fmt.Fprintf(&b, "type: %s\n", res.Check.Type)
			if res.Check.Column != "" {
				fmt.Fprintf(&b, "column: %s\n", res.Check.Column)
			}
			if len(res.Check.Columns) > 0 {
				fmt.Fprintf(&b, "columns: %s\n", strings.Join(res.Check.Columns, ", "))
			}
			if res.Check.Where != "" {
				fmt.Fprintf(&b, "where: %s\n", res.Check.Where)
			}
			fmt.Fprintf(&b, "metric: %s\nthreshold: %s\nseverity: %s\n", fmtMetric(res.Metric), res.Threshold, res.Severity)
			if res.Rows != nil {
				fmt.Fprintf(&b, "rows in scope: %s\n", fmtMetric(*res.Rows))
			}
			if res.Check.Path != "" {
				fmt.Fprintf(&b, "declared at: %s (%s)\n", res.Check.Path, res.Check.Source)
			}
			for _, sm := range res.Samples {
				j, err := json.Marshal(sm)
				if err != nil {
					j = []byte(fmt.Sprint(sm))
				}
				fmt.Fprintf(&b, "sample: %s\n", j)
			}
			return b.String()
		}
		msg := fmt.Sprintf("metric %s does not satisfy %s", fmtMetric(res.Metric), res.Threshold)
		switch {
		case res.Error != "":
			c.Error = &junitProblem{Message: res.Error, Type: "not evaluated", Text: detail()}
			s.Errors++
		case !res.Passed && res.Severity == SeverityWarn:
			c.SystemOut = "warning: " + msg + "\n" + detail()
		case !res.Passed:
			c.Failure = &junitProblem{Message: msg, Type: res.Check.Type, Text: detail()}
			s.Failures++
		case res.Note != "" && res.Metric == 0:
			c.Skipped = &junitProblem{Message: res.Note}
			s.Skipped++
		}
		s.Cases = append(s.Cases, c)
	}
	out, err := xml.MarshalIndent(junitSuites{Suites: []junitSuite{s}}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), append(out, '\n')...), nil
}

func fmtMetric(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
