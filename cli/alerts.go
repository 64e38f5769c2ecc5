package cli

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/rhizome-mesh/rhizome/alert"
	"github.com/rhizome-mesh/rhizome/client"
)

// The alerts command: list alerts, acknowledge one, show its history.

func init() { register(func(a *app) *cobra.Command { return a.alertsCmd() }) }

func (a *app) alertsCmd() *cobra.Command {
	var f client.AlertFilter
	cmd := &cobra.Command{
		Use:   "alerts",
		Short: "List alerts (failed checks, quarantines, SLO breaches, stale data, failed runs)",
		Example: `  rhizome alerts --state firing
  rhizome alerts ack run_failed/dp.sales.orders --note "looking into it"
  rhizome alerts history run_failed/dp.sales.orders`,
		Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			items, err := c.Alerts(ctx, f)
			if err != nil {
				return err
			}
			if !a.table() {
				return a.printData(items)
			}
			t := newTable(a.stdout, "KEY", "STATE", "KIND", "PRODUCT", "TEAM", "SEVERITY", "FIRED", "NOTICES", "LEVEL", "SUMMARY")
			for _, x := range items {
				t.row(x.Key, x.State, x.Kind, x.ProductID, x.Team, x.Severity, timeString(x.FiredAt),
					strconv.Itoa(x.Notifications), strconv.Itoa(x.EscalationLevel), shortLine(x.Summary))
			}
			return t.flush()
		}),
	}
	cmd.Flags().StringVar(&f.State, "state", "", "only alerts in this state (firing, acknowledged, resolved)")
	cmd.Flags().StringVar(&f.Product, "product", "", "only the alerts of this product")
	cmd.Flags().StringVar(&f.Team, "team", "", "only the alerts of this team")
	cmd.Flags().IntVar(&f.Limit, "limit", 100, "how many alerts")

	var note string
	ack := &cobra.Command{
		Use:     "ack KEY",
		Short:   "Acknowledge a firing alert: no more repeats or escalations",
		Example: `  rhizome alerts ack stale/dp.sales.orders --note "source system down, ETA 2h"`,
		Args:    cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			x, err := c.AckAlert(ctx, args[0], note)
			if err != nil {
				return err
			}
			if !a.table() {
				return a.printData(x)
			}
			fmt.Fprintf(a.stdout, "Acknowledged %s (by %s at %s).\n", x.Key, x.AckBy, timeString(*x.AckAt))
			return nil
		}),
	}
	ack.Flags().StringVar(&note, "note", "", "why, or what is being done")

	history := &cobra.Command{
		Use:   "history KEY",
		Short: "Show an alert's history: fired, notified (where, how it went), escalated, acknowledged, resolved",
		Args:  cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			evs, err := c.AlertHistory(ctx, args[0])
			if err != nil {
				return err
			}
			if !a.table() {
				return a.printData(evs)
			}
			t := newTable(a.stdout, "AT", "EVENT", "DETAIL")
			for _, e := range evs {
				t.row(timeString(e.At), e.Type, eventDetail(e))
			}
			return t.flush()
		}),
	}
	cmd.AddCommand(ack, history)
	return cmd
}

func eventDetail(e alert.Event) string {
	switch e.Type {
	case alert.EventNotify:
		s := fmt.Sprintf("%s notice to %s: %s", e.Notice, e.Channel, e.Outcome)
		if e.Attempts > 1 {
			s += fmt.Sprintf(" after %d attempts", e.Attempts)
		}
		if e.Error != "" {
			s += " (" + shortLine(e.Error) + ")"
		}
		return s
	case alert.EventEscalate:
		return fmt.Sprintf("level %d: %s", e.Level, e.Channel)
	case alert.EventAck:
		s := "by " + e.By
		if e.Note != "" {
			s += ": " + e.Note
		}
		return s
	}
	return ""
}
