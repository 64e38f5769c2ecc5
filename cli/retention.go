package cli

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/client"
)

// The retention commands: retention enforce, erase, changes.

func init() {
	register(func(a *app) *cobra.Command { return a.retentionCmd() },
		func(a *app) *cobra.Command { return a.eraseCmd() },
		func(a *app) *cobra.Command { return a.changesCmd() })
}

func (a *app) retentionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "retention",
		Short: "Enforce products' retention periods",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "enforce PRODUCT",
		Short: "Delete the product's rows older than retention_period_days now, and the snapshots that hold them",
		Long: `Delete the product's rows older than its retention_period_days, by the
timestamp column its custom_properties.retention_column names, as a new
snapshot; then expire every older snapshot that still holds such rows, so
time travel cannot bring them back. 'rhizome up' does this daily.`,
		Example: `  rhizome retention enforce dp.sales.orders`,
		Args:    cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := c.EnforceRetention(ctx, args[0])
			if err != nil {
				return err
			}
			if !a.table() {
				return a.printData(res)
			}
			if res.Skipped != "" {
				fmt.Fprintf(a.stdout, "%s: %s\n", res.ProductID, res.Skipped)
				return nil
			}
			cutoff := ""
			if res.Cutoff != nil {
				cutoff = " before " + res.Cutoff.Format("2006-01-02T15:04:05Z")
			}
			fmt.Fprintf(a.stdout, "%s: deleted %d rows with %s%s; expired %d snapshots\n", res.ProductID, res.RowsDeleted, res.Column, cutoff, res.SnapshotsExpired)
			return a.retentionTables([]client.RetentionResult{*res})
		}),
	})
	return cmd
}

func (a *app) retentionTables(rs []client.RetentionResult) error {
	t := newTable(a.stdout, "PRODUCT", "VERSION", "COLUMN", "ROWS DELETED", "NEW SNAPSHOT", "SNAPSHOTS EXPIRED", "NOTE")
	for _, r := range rs {
		if len(r.Tables) == 0 {
			t.row(r.ProductID, "", r.Column, "0", "", "0", r.Skipped)
		}
		for _, tb := range r.Tables {
			snap := ""
			if tb.SnapshotID != 0 {
				snap = strconv.FormatInt(tb.SnapshotID, 10)
			}
			t.row(r.ProductID, tb.Version, r.Column, strconv.FormatInt(tb.RowsDeleted, 10), snap, strconv.Itoa(len(tb.SnapshotsExpired)), r.Skipped)
		}
	}
	return t.flush()
}

func (a *app) eraseCmd() *cobra.Command {
	var (
		key, value, reason string
		products           []string
	)
	cmd := &cobra.Command{
		Use:   "erase",
		Short: "Right to be forgotten: delete every row of one data subject, in every product that holds it",
		Long: `Delete every row whose subject key equals --value from the products that
declare that subject key (custom_properties.subject_key), in every version,
and expire the snapshots that still hold them. Prints a report per
product; the erasure is audited (without the value). Admins, or stewards
of the owner teams of every product it reaches.`,
		Example: `  rhizome erase --key customer_id --value C123
  rhizome erase --key customer_id --value C123 --product dp.sales.orders`,
		Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			if value == "" {
				return usagef(cmd, "--value is required")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			rep, err := c.Erase(ctx, key, value, products, reason)
			if err != nil {
				return err
			}
			if !a.table() {
				if err := a.printData(rep); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(a.stdout, "erased %d rows from %d products\n", rep.RowsDeleted, len(rep.Products))
				if err := a.retentionTables(rep.Products); err != nil {
					return err
				}
			}
			if len(rep.Failed) > 0 {
				return rhizome.Errorf(rhizome.EInternal, "the erasure failed for %s", joinOr(rep.Failed, "")).WithHint("run it again: products already erased have nothing left to delete")
			}
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&key, "key", "", "the subject key column (custom_properties.subject_key); default: each product's own")
	f.StringVar(&value, "value", "", "the subject's key value")
	f.StringSliceVar(&products, "product", nil, "only these products (repeatable)")
	f.StringVar(&reason, "reason", "", "why (kept in the audit log)")
	return cmd
}

func (a *app) changesCmd() *cobra.Command {
	var (
		count int
		after string
	)
	cmd := &cobra.Command{
		Use:   "changes PRODUCT",
		Short: "Follow a product's change feed: one line per new snapshot",
		Example: `  rhizome changes dp.sales.orders
  rhizome changes dp.sales.orders --after 4411963029577151000 --count 1`,
		Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			n := 0
			err = c.Changes(ctx, args[0], after, func(ev client.ChangeEvent) error {
				n++
				if a.table() {
					fmt.Fprintf(a.stdout, "%s %s %s snapshot %d: %s, %d rows (+%d)\n", ev.At.Format("2006-01-02T15:04:05Z"), ev.Product, ev.Version, ev.SnapshotID, ev.Operation, ev.Rows, ev.RowsAdded)
				} else if err := a.printData(ev); err != nil {
					return err
				}
				if count > 0 && n >= count {
					cancel()
				}
				return nil
			})
			if ctx.Err() != nil && count > 0 && n >= count {
				return nil
			}
			return err
		}),
	}
	cmd.Flags().IntVar(&count, "count", 0, "stop after this many events (0: follow until interrupted)")
	cmd.Flags().StringVar(&after, "after", "", "resume after this snapshot id (replays the snapshots since)")
	return cmd
}
