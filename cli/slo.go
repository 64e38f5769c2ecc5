package cli

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/rhizome-mesh/rhizome/slo"
)

// The slo command: SLO attainment, error budgets and breaches.

func init() { register(func(a *app) *cobra.Command { return a.sloCmd() }) }

func (a *app) sloCmd() *cobra.Command {
	var team, domain string
	cmd := &cobra.Command{
		Use:   "slo [PRODUCT]",
		Short: "Show SLO attainment and error budgets (freshness, availability, accuracy)",
		Long: `Without PRODUCT, one line per SLO of every product with an sla; with it,
the product's report over the rolling window and its breach events.`,
		Example: `  rhizome slo
  rhizome slo --team sales-domain-team
  rhizome slo dp.sales.orders`,
		Args: cobra.MaximumNArgs(1),
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if len(args) == 0 {
				reps, err := c.SLOs(ctx, team, domain)
				if err != nil {
					return err
				}
				if !a.table() {
					return a.printData(reps)
				}
				t := newTable(a.stdout, "PRODUCT", "SLO", "OBJECTIVE", "TARGET", "ATTAINMENT", "BUDGET LEFT", "STATUS")
				for _, r := range reps {
					for _, o := range r.Objectives {
						t.row(r.ProductID, o.SLO, objectiveText(o), pct(o.Target), attainment(o), budgetLeft(o), o.Status)
					}
				}
				return t.flush()
			}
			rep, err := c.ProductSLO(ctx, args[0])
			if err != nil {
				return err
			}
			if !a.table() {
				return a.printData(rep)
			}
			p := newPage(a.stdout)
			p.kv("Product", rep.ProductID)
			p.kv("Team", rep.Team)
			p.kv("Window", fmt.Sprintf("%s (%s to %s)", rep.Window, timeString(rep.From), timeString(rep.To)))
			if rep.LastPublish != nil {
				p.kv("Last publish", timeString(*rep.LastPublish))
			} else {
				p.kv("Last publish", "never")
			}
			if rep.DataAge != nil {
				age := (time.Duration(*rep.DataAge) * time.Second).Round(time.Second).String()
				if rep.Stale {
					age += " (stale)"
				}
				p.kv("Data age", age)
			}
			if err := p.flush(); err != nil {
				return err
			}
			fmt.Fprintln(a.stdout)
			if len(rep.Objectives) == 0 {
				fmt.Fprintln(a.stdout, "No sla: declare sla: {freshness: 1h, availability: 99.9%, accuracy: 99.5%} in the product.")
				return nil
			}
			t := newTable(a.stdout, "SLO", "OBJECTIVE", "TARGET", "ATTAINMENT", "GOOD/TOTAL", "BUDGET", "USED", "LEFT", "STATUS")
			for _, o := range rep.Objectives {
				t.row(o.SLO, objectiveText(o), pct(o.Target), attainment(o), goodTotal(o), pct(o.Budget.Total), pct(o.Budget.Consumed), budgetLeft(o), o.Status)
			}
			if err := t.flush(); err != nil {
				return err
			}
			if len(rep.Events) > 0 {
				fmt.Fprintln(a.stdout, "\nBreaches:")
				t := newTable(a.stdout, "AT", "SLO", "EVENT", "ATTAINMENT", "TARGET")
				for _, e := range rep.Events {
					t.row(timeString(e.At), e.SLO, e.State, pct(e.Attainment), pct(e.Target))
				}
				return t.flush()
			}
			return nil
		}),
	}
	cmd.Flags().StringVar(&team, "team", "", "only the products of this owner team")
	cmd.Flags().StringVar(&domain, "domain", "", "only the products of this domain")
	return cmd
}

func pct(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) + "%" }

func attainment(o slo.Objective) string {
	if o.Attainment == nil {
		return "-"
	}
	return pct(*o.Attainment)
}

func budgetLeft(o slo.Objective) string {
	if o.Attainment == nil {
		return "-"
	}
	return pct(o.Budget.Remaining)
}

func objectiveText(o slo.Objective) string {
	if o.SLO == slo.Freshness {
		return "age <= " + o.Threshold
	}
	return pct(o.Target) + " good " + o.Unit
}

func goodTotal(o slo.Objective) string {
	if o.Unit == "seconds" {
		g := (time.Duration(o.Good) * time.Second).String()
		tot := (time.Duration(o.Total) * time.Second).String()
		return g + "/" + tot
	}
	return strconv.FormatFloat(o.Good, 'f', -1, 64) + "/" + strconv.FormatFloat(o.Total, 'f', -1, 64)
}
