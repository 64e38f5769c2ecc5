package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/audit"
	"github.com/rhizome-mesh/rhizome/client"
)

// The audit commands: audit (list), audit verify, audit export.

func init() {
	register(func(a *app) *cobra.Command { return a.auditCmd() })
}

func auditFlags(cmd *cobra.Command, q *client.AuditQuery) {
	f := cmd.Flags()
	f.StringVar(&q.Product, "product", "", "only entries about this product")
	f.StringVar(&q.Principal, "principal", "", "only entries by this principal")
	f.StringVar(&q.Action, "action", "", `only this action, or a prefix ending in "*" (e.g. "POST *")`)
	f.StringVar(&q.Decision, "decision", "", "only allow or deny")
	f.StringVar(&q.Since, "since", "", "from this RFC 3339 time, or this long ago (e.g. 24h)")
	f.StringVar(&q.Until, "until", "", "before this RFC 3339 time, or this long ago")
}

func (a *app) auditCmd() *cobra.Command {
	var (
		q   client.AuditQuery
		all bool
	)
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show the audit log: data access and administrative actions, newest first",
		Long: `Show the audit log, newest first. Admins see every entry; others see
the entries of a product they operate (--product) and their own.

Verify the hash chain with 'rhizome audit verify'; export it as JSON lines
with 'rhizome audit export > audit.jsonl'.`,
		Example: `  rhizome audit --product dp.sales.orders --since 24h
  rhizome audit --principal alice@example.com --action "POST *"`,
		Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			var items []audit.Entry
			for {
				page, err := c.Audit(ctx, q)
				if err != nil {
					return err
				}
				items = append(items, page.Items...)
				if !all || page.Next == "" {
					break
				}
				q.Cursor = page.Next
			}
			if !a.table() {
				return a.printData(map[string]any{"items": items})
			}
			t := newTable(a.stdout, "SEQ", "AT", "ACTOR", "ACTION", "PRODUCT", "DECISION", "ROWS")
			for _, e := range items {
				product := e.ProductID
				if len(e.Products) > 1 {
					product += fmt.Sprintf(" (+%d)", len(e.Products)-1)
				}
				t.row(strconv.FormatInt(e.Seq, 10), e.At.Format("2006-01-02T15:04:05Z"), e.Actor, e.Action, product, e.Decision, rowsCell(e.Rows))
			}
			return t.flush()
		}),
	}
	auditFlags(cmd, &q)
	cmd.Flags().IntVar(&q.Limit, "limit", 50, "entries per page")
	cmd.Flags().BoolVar(&all, "all", false, "every page, not only the first")
	cmd.AddCommand(a.auditVerifyCmd(), a.auditExportCmd())
	return cmd
}

func (a *app) auditVerifyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "verify",
		Short: "Walk the audit log's hash chain; fail when an entry was edited, removed or reordered",
		Args:  cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			v, err := c.VerifyAudit(ctx)
			if err != nil {
				return err
			}
			if !a.table() {
				if err := a.printData(v); err != nil {
					return err
				}
			} else if v.OK {
				fmt.Fprintf(a.stdout, "audit log intact: %d entries, head %s\n", v.Entries, short(v.Head))
			}
			if !v.OK {
				return rhizome.Errorf(rhizome.EInternal, "the audit log is broken at entry %d: %s", v.BrokenAt, v.Problem).
					WithHint("entries were changed outside Rhizome; compare with an earlier export (rhizome audit export)")
			}
			return nil
		}),
	}
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	if h == "" {
		return "(empty)"
	}
	return h
}

func (a *app) auditExportCmd() *cobra.Command {
	var q client.AuditQuery
	cmd := &cobra.Command{
		Use:     "export",
		Short:   "Write the audit log as JSON lines, oldest first (admins)",
		Example: `  rhizome audit export > audit.jsonl`,
		Args:    cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			n, err := c.ExportAudit(ctx, q, a.stdout)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "exported %d entries\n", n)
			return nil
		}),
	}
	auditFlags(cmd, &q)
	return cmd
}

// joinOr joins s, or says none.
func joinOr(s []string, none string) string {
	if len(s) == 0 {
		return none
	}
	return strings.Join(s, ", ")
}

// rowsCell shows an entry's rows; a read's own entry is written before
// its rows are counted (-1): its ".done" entry has the count.
func rowsCell(n int64) string {
	if n < 0 {
		return "-"
	}
	return strconv.FormatInt(n, 10)
}
