package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/client"
)

// The pipeline commands: run, runs, logs, cancel, backfill, snapshots,
// lineage, connectors.

func (a *app) runCmd() *cobra.Command {
	var (
		wait             bool
		version, timeout string
		waitFor          time.Duration
	)
	cmd := &cobra.Command{
		Use:   "run PRODUCT",
		Short: "Run a product's pipeline now (ingest, transform, publish)",
		Example: `  rhizome run dp.sales.orders
  rhizome run dp.customer.360 --wait`,
		Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			run, err := c.Run(ctx, args[0], version, timeout)
			if err != nil {
				return err
			}
			if !wait {
				if !a.table() {
					return a.printData(run)
				}
				fmt.Fprintf(a.stdout, "Queued %s for %s. Follow it with: rhizome logs %s\n", run.ID, run.ProductID, run.ID)
				return nil
			}
			return a.follow(ctx, c, run.ID, waitFor)
		}),
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the run to finish, printing its log")
	cmd.Flags().DurationVar(&waitFor, "wait-timeout", 30*time.Minute, "give up waiting after this long")
	cmd.Flags().StringVar(&version, "version", "", "product version to build (default: current)")
	cmd.Flags().StringVar(&timeout, "timeout", "", "run timeout, e.g. \"30 minutes\" (default: the product's)")
	return cmd
}

// follow prints a run's log until it ends; a failed or cancelled run is an
// error.
func (a *app) follow(ctx context.Context, c *client.Client, id string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var seq int64
	for {
		logs, err := c.RunLogs(ctx, id, seq)
		if err != nil {
			return err
		}
		for _, l := range logs {
			fmt.Fprintf(a.stdout, "%s %-5s %s\n", l.At.Format("15:04:05"), l.Level, l.Msg)
			seq = l.Seq
		}
		run, err := c.GetRun(ctx, id)
		if err != nil {
			return err
		}
		if run.State.Done() {
			if logs, err := c.RunLogs(ctx, id, seq); err == nil {
				for _, l := range logs {
					fmt.Fprintf(a.stdout, "%s %-5s %s\n", l.At.Format("15:04:05"), l.Level, l.Msg)
				}
			}
			fmt.Fprintf(a.stdout, "Run %s %s: %d rows in, %d rows out, %s.\n", run.ID, run.State, run.RowsIn, run.RowsOut, time.Duration(run.DurationMS)*time.Millisecond)
			if run.State != rhizome.RunSucceeded {
				return &rhizome.Error{Code: rhizome.EInvalid, Message: fmt.Sprintf("run %s %s: %s", run.ID, run.State, run.Error)}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return rhizome.Errorf(rhizome.EUnavailable, "gave up waiting for run %s", id).WithHint("it goes on; check it with: rhizome runs %s", run.ProductID)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (a *app) runsCmd() *cobra.Command {
	var (
		state string
		limit int
	)
	cmd := &cobra.Command{
		Use:     "runs [PRODUCT]",
		Short:   "List pipeline runs, newest first",
		Example: `  rhizome runs dp.sales.orders`,
		Args:    cobra.MaximumNArgs(1),
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			product := ""
			if len(args) == 1 {
				product = args[0]
			}
			runs, err := c.Runs(ctx, product, rhizome.RunState(state), limit)
			if err != nil {
				return err
			}
			if !a.table() {
				return a.printData(runs)
			}
			t := newTable(a.stdout, "RUN", "PRODUCT", "STATE", "TRIGGER", "QUEUED", "DURATION", "ROWS IN", "ROWS OUT", "SNAPSHOT", "ERROR")
			for _, r := range runs {
				snap := ""
				if r.SnapshotID != 0 {
					snap = strconv.FormatInt(r.SnapshotID, 10)
				}
				t.row(r.ID, r.ProductID, string(r.State), string(r.Trigger), timeString(r.QueuedAt),
					(time.Duration(r.DurationMS) * time.Millisecond).String(), strconv.FormatInt(r.RowsIn, 10), strconv.FormatInt(r.RowsOut, 10), snap, shortLine(r.Error))
			}
			return t.flush()
		}),
	}
	cmd.Flags().StringVar(&state, "state", "", "only runs in this state (queued, running, succeeded, failed, cancelled)")
	cmd.Flags().IntVar(&limit, "limit", 50, "how many runs")
	return cmd
}

func shortLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

func (a *app) logsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "logs RUN",
		Short: "Print a run's log",
		Args:  cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			logs, err := c.RunLogs(ctx, args[0], 0)
			if err != nil {
				return err
			}
			if !a.table() {
				return a.printData(logs)
			}
			for _, l := range logs {
				fmt.Fprintf(a.stdout, "%s %-5s %s\n", l.At.Format(time.RFC3339), l.Level, l.Msg)
			}
			return nil
		}),
	}
}

func (a *app) cancelCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "cancel RUN",
		Short: "Cancel a queued or running run",
		Args:  cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			run, err := c.CancelRun(ctx, args[0])
			if err != nil {
				return err
			}
			if !a.table() {
				return a.printData(run)
			}
			fmt.Fprintf(a.stdout, "Run %s is %s.\n", run.ID, run.State)
			return nil
		}),
	}
}

func (a *app) backfillCmd() *cobra.Command {
	var from, to, step string
	cmd := &cobra.Command{
		Use:     "backfill PRODUCT --from TIME --to TIME [--step DURATION]",
		Short:   "Queue one run per step of a time range",
		Example: `  rhizome backfill dp.sales.daily-revenue --from 2026-11-01 --to 2026-11-08 --step "1 day"`,
		Args:    cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			f, err := parseWhen(from)
			if err != nil {
				return usagef(cmd, "--from: %v", err)
			}
			t, err := parseWhen(to)
			if err != nil {
				return usagef(cmd, "--to: %v", err)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			runs, err := c.Backfill(ctx, args[0], f, t, step)
			if err != nil {
				return err
			}
			if !a.table() {
				return a.printData(runs)
			}
			fmt.Fprintf(a.stdout, "Queued %d runs for %s.\n", len(runs), args[0])
			return nil
		}),
	}
	cmd.Flags().StringVar(&from, "from", "", "start of the range (RFC 3339 or YYYY-MM-DD)")
	cmd.Flags().StringVar(&to, "to", "", "end of the range (RFC 3339 or YYYY-MM-DD)")
	cmd.Flags().StringVar(&step, "step", "1 day", "one run per step")
	return cmd
}

func parseWhen(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: want a time like 2026-11-01 or 2026-11-01T00:00:00Z", s)
}

func (a *app) snapshotsCmd() *cobra.Command {
	var version string
	cmd := &cobra.Command{
		Use:   "snapshots PRODUCT",
		Short: "List the table snapshots of a product version (for time travel)",
		Args:  cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			raw, err := c.Snapshots(ctx, args[0], version)
			if err != nil {
				return err
			}
			if !a.table() {
				return a.printData(raw)
			}
			var out struct {
				Version string `json:"version"`
				Items   []struct {
					ID         int64             `json:"id"`
					Time       time.Time         `json:"time"`
					Operation  string            `json:"operation"`
					Rows       int64             `json:"rows"`
					Bytes      int64             `json:"bytes"`
					Properties map[string]string `json:"properties"`
				} `json:"items"`
			}
			if err := json.Unmarshal(raw, &out); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "# %s %s\n", args[0], out.Version)
			t := newTable(a.stdout, "SNAPSHOT", "TIME", "OPERATION", "ROWS", "BYTES", "RUN")
			for _, s := range out.Items {
				t.row(strconv.FormatInt(s.ID, 10), timeString(s.Time), s.Operation, strconv.FormatInt(s.Rows, 10), strconv.FormatInt(s.Bytes, 10), s.Properties["run-id"])
			}
			return t.flush()
		}),
	}
	cmd.Flags().StringVar(&version, "version", "", "product version (default: current)")
	return cmd
}

func (a *app) lineageCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "lineage RUN",
		Short: "Print a run's OpenLineage events",
		Args:  cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			evs, err := c.RunLineage(ctx, args[0])
			if err != nil {
				return err
			}
			return a.printData(evs)
		}),
	}
}

func (a *app) connectorsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "connectors",
		Short: "List the connectors input ports can use, with their config fields",
		Args:  cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			cs, err := c.Connectors(ctx)
			if err != nil {
				return err
			}
			if !a.table() {
				return a.printData(cs)
			}
			for _, ci := range cs {
				fmt.Fprintf(a.stdout, "%s: %s\n", ci.Name, ci.Summary)
				t := newTable(a.stdout)
				for _, f := range ci.Fields {
					req := ""
					if f.Required {
						req = "required"
					}
					t.row("  "+f.Name, f.Type, req, f.Doc)
				}
				if err := t.flush(); err != nil {
					return err
				}
			}
			return nil
		}),
	}
}
