package jobs

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rhizome-mesh/rhizome"
)

type metrics struct {
	runs     *prometheus.CounterVec
	duration prometheus.Histogram
	overhead prometheus.Histogram
}

func newMetrics(reg *prometheus.Registry) (*metrics, error) {
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rhizome_runs_total",
			Help: "Runs that ended, by final state.",
		}, []string{"state"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "rhizome_run_duration_seconds",
			Help:    "Time the Runner took, per attempt.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10), // 10ms .. ~43m
		}),
		overhead: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "rhizome_scheduler_overhead_seconds",
			Help:    "Time from when an attempt was due to when a worker picked it up.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10), // 1ms .. ~4m
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.runs, m.duration, m.overhead} {
			if err := reg.Register(c); err != nil {
				return nil, rhizome.Wrap(err, "jobs: register metrics")
			}
		}
	}
	return m, nil
}

func (m *metrics) finished(r *rhizome.Run) { m.runs.WithLabelValues(string(r.State)).Inc() }
