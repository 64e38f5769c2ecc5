package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rhizome-mesh/rhizome/qreport"
)

// quality: a product's quality report (get_quality_report()).

func init() {
	register(func(a *app) *cobra.Command { return a.qualityCmd() })
}

func (a *app) qualityCmd() *cobra.Command {
	var version string
	var history int
	cmd := &cobra.Command{
		Use:   "quality PRODUCT",
		Short: "Show a product's quality report: each check's latest result and trend, quality metrics and SLA",
		Example: `  rhizome quality dp.sales.orders
  rhizome quality dp.sales.orders -o json`,
		Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			rep, err := c.QualityReport(ctx, args[0], version, history)
			if err != nil {
				return err
			}
			if !a.table() {
				return a.printData(rep)
			}
			return printReport(a.stdout, rep)
		}),
	}
	cmd.Flags().StringVar(&version, "version", "", "product version (default: current)")
	cmd.Flags().IntVar(&history, "history", 0, "past metrics per check (default: the server's, 30)")
	return cmd
}

func printReport(w io.Writer, rep *qreport.Report) error {
	fmt.Fprintf(w, "%s@%s\n", rep.ProductID, rep.Version)
	if rep.LastRun == nil {
		fmt.Fprintln(w, "no checks have run yet")
	} else {
		lr := rep.LastRun
		kind := "run"
		if lr.OnDemand {
			kind = "check"
		}
		at := ""
		if rep.LastAt != nil {
			at = " at " + rep.LastAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(w, "last %s %s%s: gate %s (%d checks, %d failed, %d warnings)\n", kind, lr.RunID, at, lr.Gate, lr.Checks, lr.Failures, lr.Warnings)
		if lr.OnDemand && rep.LastGate != "" {
			fmt.Fprintf(w, "last pipeline run %s: gate %s\n", rep.LastGateRunID, rep.LastGate)
		}
		if lr.Quarantine != "" {
			fmt.Fprintf(w, "quarantined data: %s\n", lr.Quarantine)
		}
	}
	if len(rep.Checks) > 0 {
		fmt.Fprintln(w)
		t := newTable(w, "CHECK", "STATE", "METRIC", "THRESHOLD", "TREND", "SEVERITY", "SOURCE")
		for _, c := range rep.Checks {
			metric := fmt.Sprint(c.Metric)
			if f, ok := c.Metric.(float64); ok {
				metric = qreport.FormatMetricOf(c.Type, f)
			}
			trend := c.Trend
			if trend == "" {
				trend = "-"
			}
			t.row(c.Name, c.State, metric, c.Threshold, trend, c.Severity, c.Source)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	fmt.Fprintln(w)
	t := newTable(w, "METRIC", "VALUE", "TARGET", "MET")
	for _, m := range rep.QualityMetrics {
		val, target, met := "-", "-", "-"
		if m.Value != nil {
			val = fmt.Sprintf("%.4f", *m.Value)
		}
		if m.Target != nil {
			target = fmt.Sprint(*m.Target)
		}
		if m.Met != nil {
			met = fmt.Sprint(*m.Met)
		}
		t.row(m.Name, val, target, met)
	}
	for _, s := range rep.SLA {
		t.row(s.Source, s.Actual, s.Target, fmt.Sprint(s.Met))
	}
	if err := t.flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, strings.TrimSpace(`
completeness: `+qreport.DefCompleteness+`
freshness:    `+qreport.DefFreshness+`
accuracy:     `+qreport.DefAccuracy))
	return err
}
