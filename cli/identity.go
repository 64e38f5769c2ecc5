package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/client"
)

// Commands about who is calling and what the server is: tokens, whoami,
// version and schema.

func (a *app) tokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke API tokens",
	}
	var (
		req     client.TokenRequest
		service bool
		expires string
	)
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a token and print its secret, once",
		Long: `Create makes an API token. The secret is printed on standard output, alone,
and is never shown again; what it is goes to standard error. Admins create
tokens for anyone (a new principal is created on the way); others only for
themselves.`,
		Example: `  rhizome token create --principal bob@example.com --name laptop
  export RHIZOME_TOKEN=$(rhizome token create --name ci --service --principal svc-ci)`,
		Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
			if expires != "" && expires != "0" {
				if d, err := time.ParseDuration(expires); err != nil || d <= 0 {
					return usagef(cmd, "--expires %q: want a positive duration such as 720h, or 0 for none", expires)
				}
				req.ExpiresIn = expires
			}
			// The kind describes a principal being named; a token for
			// oneself keeps one's own kind.
			switch {
			case service:
				req.Kind = rhizome.PrincipalService
			case req.Principal != "":
				req.Kind = rhizome.PrincipalUser
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			nt, err := c.CreateToken(ctx, req)
			if err != nil {
				return err
			}
			if !a.table() {
				return a.printData(nt)
			}
			exp := "never expires"
			if nt.Token.ExpiresAt != nil {
				exp = "expires " + timeString(*nt.Token.ExpiresAt)
			}
			fmt.Fprintf(a.stderr, "Created token %s for %s (%s). Its secret, shown only this once:\n", nt.Token.ID, nt.Token.PrincipalID, exp)
			fmt.Fprintln(a.stdout, nt.Secret)
			return nil
		}),
	}
	f := create.Flags()
	f.StringVar(&req.Principal, "principal", "", "whose token (default: yourself)")
	f.StringVar(&req.Name, "name", "", "a name to recognise the token by, e.g. laptop")
	f.BoolVar(&req.Admin, "admin", false, "make the principal an admin (admins only)")
	f.BoolVar(&service, "service", false, "the principal is a service, not a person")
	f.StringVar(&expires, "expires", "720h", "lifetime, e.g. 24h or 720h; 0 for none")

	list := &cobra.Command{
		Use:   "list",
		Short: "List tokens: all for admins, your own otherwise",
		Args:  cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			toks, err := c.ListTokens(ctx)
			if err != nil {
				return err
			}
			if !a.table() {
				return a.printData(map[string]any{"items": toks})
			}
			now := time.Now()
			t := newTable(a.stdout, "ID", "PRINCIPAL", "NAME", "CREATED", "EXPIRES", "STATUS")
			for _, tok := range toks {
				status, exp := "active", ""
				if tok.ExpiresAt != nil {
					exp = timeString(*tok.ExpiresAt)
					if tok.ExpiresAt.Before(now) {
						status = "expired"
					}
				}
				if tok.RevokedAt != nil {
					status = "revoked"
				}
				t.row(tok.ID, tok.PrincipalID, tok.Name, timeString(tok.CreatedAt), exp, status)
			}
			return t.flush()
		}),
	}

	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token by its id (tok_...)",
		Args:  cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.RevokeToken(ctx, args[0]); err != nil {
				return err
			}
			if a.table() {
				fmt.Fprintf(a.stdout, "Revoked token %s.\n", args[0])
			}
			return nil
		}),
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func (a *app) whoamiCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show who the token belongs to and their teams",
		Args:  cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			p, err := c.WhoAmI(ctx)
			if err != nil {
				return err
			}
			if !a.table() {
				return a.printData(p)
			}
			pg := newPage(a.stdout)
			pg.kv("id", p.ID)
			pg.kv("kind", string(p.Kind))
			pg.kv("admin", strconv.FormatBool(p.Admin))
			teams := list(p.Teams)
			if teams == "" {
				teams = "(none)"
			}
			pg.kv("teams", teams)
			pg.kv("server", c.BaseURL())
			return pg.flush()
		}),
	}
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show the client's version, and the server's when it answers",
		Args:  cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
			out := struct {
				Client      string `json:"client"`
				Server      string `json:"server,omitempty"`
				ServerURL   string `json:"server_url,omitempty"`
				ServerError string `json:"server_error,omitempty"`
			}{Client: buildVersion()}
			if c, err := a.client(); err != nil {
				out.ServerError = firstLineOf(err)
			} else {
				out.ServerURL = c.BaseURL()
				ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				defer cancel()
				if out.Server, err = c.ServerVersion(ctx); err != nil {
					out.ServerError = firstLineOf(err)
				}
			}
			if !a.table() {
				return a.printData(out)
			}
			fmt.Fprintf(a.stdout, "client: %s\n", out.Client)
			if out.ServerError != "" {
				fmt.Fprintf(a.stdout, "server: unknown (%s)\n", out.ServerError)
			} else {
				fmt.Fprintf(a.stdout, "server: %s (%s)\n", out.Server, out.ServerURL)
			}
			return nil
		}),
	}
}

func (a *app) schemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema [KIND]",
		Short: "Print a kind's JSON Schema, or list the kinds",
		Example: `  rhizome schema product
  rhizome schema contract -o yaml`,
		Args: cobra.MaximumNArgs(1),
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if len(args) == 0 {
				kinds, err := c.Schemas(ctx)
				if err != nil {
					return err
				}
				if !a.table() {
					return a.printData(map[string]any{"items": kinds})
				}
				for _, k := range kinds {
					fmt.Fprintln(a.stdout, k)
				}
				return nil
			}
			kind, err := parseKind(cmd, args[0])
			if err != nil {
				return err
			}
			s, err := c.Schema(ctx, kind)
			if err != nil {
				return err
			}
			if a.output == "yaml" {
				return a.printYAML(s)
			}
			// Indent, keeping the server's key order.
			var b bytes.Buffer
			if err := json.Indent(&b, s, "", "  "); err != nil {
				return rhizome.Wrap(err, "the server's schema for %s", kind)
			}
			b.WriteByte('\n')
			_, err = b.WriteTo(a.stdout)
			return err
		}),
	}
}
