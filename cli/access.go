package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rhizome-mesh/rhizome/access"
)

// The access commands: request, list, approve, deny, revoke, explain.

func init() { register((*app).accessCmd) }

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (a *app) accessCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "access",
		Short: "Request, approve, deny, revoke and explain access to data products",
		Long: `Access to a product's data follows its sensitivity_level: public for every
authenticated principal, internal for members of a team, confidential with
an approved grant, restricted with a grant its steward approved with a
purpose and an expiry. See docs/access.md.`,
	}
	cmd.AddCommand(a.accessRequestCmd(), a.accessListCmd(), a.accessApproveCmd(), a.accessDenyCmd(), a.accessRevokeCmd(), a.accessExplainCmd())
	return cmd
}

func (a *app) accessRequestCmd() *cobra.Command {
	var (
		in      access.NewRequest
		columns string
	)
	cmd := &cobra.Command{
		Use:   "request PRODUCT",
		Short: "Ask for access to a product (or some of its columns)",
		Example: `  rhizome access request dp.customer.profiles --purpose "churn model" --duration 30d
  rhizome access request dp.sales.orders --purpose "Q3 report" --columns order_id,amount`,
		Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			in.ProductID = args[0]
			in.Columns = splitList(columns)
			c, err := a.client()
			if err != nil {
				return err
			}
			r, err := c.RequestAccess(ctx, in)
			if err != nil {
				return err
			}
			if !a.table() {
				return a.printData(r)
			}
			if r.State == access.StateApproved {
				fmt.Fprintf(a.stdout, "Request %s for %s was approved at once (%s): grant %s.\n", r.ID, r.ProductID, r.DecidedBy, r.GrantID)
				return nil
			}
			fmt.Fprintf(a.stdout, "Request %s for %s is %s. An owner or steward of the product decides it.\n", r.ID, r.ProductID, r.State)
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&in.Purpose, "purpose", "", "why you need the data (required)")
	f.StringVar(&in.Duration, "duration", "", "how long, e.g. 30d (required for restricted products)")
	f.StringVar(&columns, "columns", "", "only these columns, comma-separated")
	return cmd
}

func (a *app) accessListCmd() *cobra.Command {
	var (
		rf      access.RequestFilter
		pending bool
		grants  bool
		who     string
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List access requests (or, with --grants, grants) you may see",
		Example: `  rhizome access list --pending
  rhizome access list --grants --product dp.sales.orders`,
		Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if grants {
				gs, err := c.Grants(ctx, access.GrantFilter{ProductID: rf.ProductID, Principal: who, State: rf.State})
				if err != nil {
					return err
				}
				if !a.table() {
					return a.printData(map[string]any{"items": gs})
				}
				t := newTable(a.stdout, "ID", "PRODUCT", "PRINCIPAL", "STATE", "CLEARANCE", "APPROVED-BY", "EXPIRES", "ROW-FILTER")
				for _, g := range gs {
					exp := "never"
					if g.ExpiresAt != nil {
						exp = timeString(*g.ExpiresAt)
					}
					t.row(g.ID, g.ProductID, g.Principal, g.State, g.Clearance, g.ApprovedBy, exp, g.RowFilter)
				}
				return t.flush()
			}
			if pending {
				rf.State = access.StatePending
			}
			rs, err := c.AccessRequests(ctx, rf)
			if err != nil {
				return err
			}
			if !a.table() {
				return a.printData(map[string]any{"items": rs})
			}
			t := newTable(a.stdout, "ID", "PRODUCT", "REQUESTER", "STATE", "DURATION", "CREATED", "PURPOSE")
			for _, r := range rs {
				t.row(r.ID, r.ProductID, r.Requester, r.State, r.Duration, timeString(r.CreatedAt), r.Purpose)
			}
			return t.flush()
		}),
	}
	f := cmd.Flags()
	f.BoolVar(&pending, "pending", false, "only pending requests")
	f.StringVar(&rf.State, "state", "", "only in this state: pending, approved, denied, revoked, expired (grants: active, revoked, expired)")
	f.StringVar(&rf.ProductID, "product", "", "only for this product")
	f.BoolVar(&rf.Mine, "mine", false, "only your own requests")
	f.BoolVar(&grants, "grants", false, "list grants instead of requests")
	f.StringVar(&who, "principal", "", "with --grants: only this principal's")
	return cmd
}

func (a *app) accessApproveCmd() *cobra.Command {
	var (
		ap      access.Approval
		columns string
	)
	cmd := &cobra.Command{
		Use:     "approve REQUEST",
		Short:   "Approve a pending access request (owners and stewards of the product)",
		Example: `  rhizome access approve ar_1a2b3c --duration 30d --row-filter "region = 'EU'"`,
		Args:    cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			ap.Columns = splitList(columns)
			c, err := a.client()
			if err != nil {
				return err
			}
			r, g, err := c.ApproveAccess(ctx, args[0], ap)
			if err != nil {
				return err
			}
			if !a.table() {
				return a.printData(map[string]any{"request": r, "grant": g})
			}
			exp := "does not expire"
			if g.ExpiresAt != nil {
				exp = "expires " + timeString(*g.ExpiresAt)
			}
			fmt.Fprintf(a.stdout, "Approved %s: grant %s lets %s read %s (%s, %s).\n", r.ID, g.ID, g.Principal, g.ProductID, g.Clearance, exp)
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&ap.Duration, "duration", "", "how long the grant lasts (default: what was requested)")
	f.StringVar(&ap.RowFilter, "row-filter", "", "only rows where this SQL condition holds, e.g. \"region = 'EU'\"")
	f.StringVar(&columns, "columns", "", "only these columns, comma-separated (default: what was requested)")
	f.StringVar(&ap.Reason, "reason", "", "a note kept with the grant")
	return cmd
}

func (a *app) accessDenyCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:     "deny REQUEST",
		Short:   "Deny a pending access request, with a reason",
		Example: `  rhizome access deny ar_1a2b3c --reason "use dp.customer.360, which is internal"`,
		Args:    cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			r, err := c.DenyAccess(ctx, args[0], reason)
			if err != nil {
				return err
			}
			if !a.table() {
				return a.printData(r)
			}
			fmt.Fprintf(a.stdout, "Denied %s of %s for %s.\n", r.ID, r.Requester, r.ProductID)
			return nil
		}),
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (required; the requester sees it)")
	return cmd
}

func (a *app) accessRevokeCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "revoke GRANT",
		Short: "Revoke a grant: reads stop at once, on open SQL sessions too",
		Args:  cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			g, err := c.RevokeGrant(ctx, args[0], reason)
			if err != nil {
				return err
			}
			if !a.table() {
				return a.printData(g)
			}
			fmt.Fprintf(a.stdout, "Revoked grant %s: %s no longer reads %s.\n", g.ID, g.Principal, g.ProductID)
			return nil
		}),
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (kept with the grant)")
	return cmd
}

func (a *app) accessExplainCmd() *cobra.Command {
	var as, via string
	cmd := &cobra.Command{
		Use:   "explain PRODUCT",
		Short: "Show the access decision for you (or --as someone) reading a product: allow or deny, why, masks, row filter",
		Example: `  rhizome access explain dp.customer.profiles
  rhizome access explain dp.customer.profiles --as bob@example.com`,
		Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			d, err := c.ExplainAccess(ctx, args[0], as, via)
			if err != nil {
				return err
			}
			if !a.table() {
				return a.printData(d)
			}
			p := newPage(a.stdout)
			decision := "deny"
			if d.Allow {
				decision = "allow"
			}
			p.kv("decision", decision)
			p.kv("reason", d.Reason)
			if d.GrantID != "" {
				p.kv("grant", d.GrantID)
			}
			if d.RowFilter != "" {
				p.kv("row filter", d.RowFilter)
			}
			if d.Expires != nil {
				p.kv("expires", timeString(*d.Expires))
			}
			if len(d.PolicyIDs) > 0 {
				p.kv("policies", list(d.PolicyIDs))
			}
			if err := p.flush(); err != nil {
				return err
			}
			if len(d.Columns) == 0 {
				return nil
			}
			fmt.Fprintln(a.stdout)
			t := newTable(a.stdout, "COLUMN", "CLASSIFICATION", "MASK", "SEEN AS")
			for _, col := range d.Columns {
				mask, expr := col.Mask, col.Expr
				if col.Hidden {
					mask, expr = "hidden", ""
				}
				if mask == "" {
					mask = "-"
				}
				t.row(col.Name, col.Classification, mask, expr)
			}
			return t.flush()
		}),
	}
	cmd.Flags().StringVar(&as, "as", "", "explain for this principal (admins and the product's owner team)")
	cmd.Flags().StringVar(&via, "via", "", "the interface: rest, sql, sample or export (the decision is the same)")
	return cmd
}
