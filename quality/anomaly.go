package quality

import (
	"fmt"
	"math"
	"slices"
)

// Checks over history rather than data: anomaly (a metric against its past
// values); drift (drift.go) compares data with the previous snapshot.

func init() {
	Register(Type{
		Name: "anomaly", Kind: KindCustom, DefaultThreshold: "<= 3.5",
		Summary: "Whether another check's metric in this run is an outlier against its last N values: a robust z-score from the median and the median absolute deviation (MAD).",
		Fields: []Field{
			{Name: "check", Type: "string", Required: true, Doc: "the name of the check (in the same suite) whose metric is watched"},
			{Name: "window", Type: "number", Doc: "how many of the latest past values to use (default 30)"},
			{Name: "min_history", Type: "number", Doc: "fewer past values than this and the check passes with a note (default 5)"},
		},
		Notes: []string{
			"The metric is |x - median| / (1.4826 * MAD); 3.5 is the usual cut-off (Iglewicz and Hoaglin).",
			"If the MAD is 0 (a flat history), any change is an infinite score and fails; no change scores 0.",
			"History comes from RunOptions.History under the watched check's name, oldest first; it needs no scan.",
			"A NaN or infinite metric in the run, or in the history, is not compared: NaN values in the history are dropped, and a non-finite metric fails.",
			"Takes no `where`: filter the watched check instead.",
		},
		Compile: func(c Check, _ string) (Plan, error) {
			if c.Where != "" {
				return Plan{}, c.invalid("where", "an anomaly check reads another check's metric; it takes no filter", "put `where:` on the watched check")
			}
			ref, _ := argString(c, "check")
			if ref == "" {
				return Plan{}, c.invalid("args.check", "anomaly needs `check`: the name of the check whose metric it watches", "add e.g. `check: row_count`")
			}
			if err := noPercent(c); err != nil {
				return Plan{}, err
			}
			window, min := 30.0, 5.0
			if w, ok, err := argNumber(c, "window"); err != nil {
				return Plan{}, err
			} else if ok {
				window = w
			}
			if m, ok, err := argNumber(c, "min_history"); err != nil {
				return Plan{}, err
			} else if ok {
				min = m
			}
			if window < 1 || min < 1 || min > window {
				return Plan{}, c.invalid("args.window", "want 1 <= min_history <= window", "e.g. `window: 30`, `min_history: 5`")
			}
			return Plan{Derived: func(metrics map[string]float64, opt RunOptions) (float64, string, error) {
				x, ok := metrics[ref]
				if !ok {
					return 0, "", fmt.Errorf("check %q has no metric in this run", ref)
				}
				if math.IsNaN(x) || math.IsInf(x, 0) {
					return 0, "", fmt.Errorf("check %q has a non-finite metric (%v) in this run", ref, x)
				}
				var h []float64
				for _, v := range opt.History[ref] {
					if !math.IsNaN(v) && !math.IsInf(v, 0) {
						h = append(h, v)
					}
				}
				if len(h) > int(window) {
					h = h[len(h)-int(window):]
				}
				if len(h) < int(min) {
					return 0, fmt.Sprintf("%d past values, fewer than %d: not evaluated", len(h), int(min)), nil
				}
				return RobustZ(x, h), "", nil
			}}, nil
		},
	})

}

// RobustZ is |x - median(h)| / (1.4826 * MAD(h)); 0 when x is the median
// of a flat history, +Inf when it differs from one.
func RobustZ(x float64, h []float64) float64 {
	med := median(h)
	dev := make([]float64, len(h))
	for i, v := range h {
		dev[i] = math.Abs(v - med)
	}
	mad := 1.4826 * median(dev)
	d := math.Abs(x - med)
	if mad == 0 {
		if d == 0 {
			return 0
		}
		return math.Inf(1)
	}
	return d / mad
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
