package cli

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/keys"
)

// keysCmd manages the keys of encrypted tables. It works on the data
// directory itself (not through the API): run it with the server stopped.
func (a *app) keysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage the keys of encrypted tables (on the data directory, server stopped)",
	}
	var from, to string
	rotate := &cobra.Command{
		Use:   "rotate --to URL",
		Short: "Re-wrap every data key under a new master key; no data file is rewritten",
		Long: `Rotate unwraps every product's data keys with the current master key and
wraps them again with the new one. Data files are not touched. Afterwards
start the server with --master-key set to the new key.`,
		Example: `  rhizome keys rotate --to "base64key://$(openssl rand -base64 32 | tr '+/' '-_')"`,
		Args:    cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
			if to == "" {
				return usagef(cmd, "--to is required: the new master key URL")
			}
			dir, err := filepath.Abs(a.dataDirPath())
			if err != nil {
				return rhizome.Wrap(err, "data directory")
			}
			cur := from
			if cur == "" {
				cur = a.getenv("RHIZOME_MASTER_KEY")
			}
			if cur == "" {
				if cur, err = keys.LocalMasterKey(dir); err != nil {
					return err
				}
			}
			ring, err := keys.Open(ctx, cur, keys.NewFileStore(filepath.Join(dir, "keys")))
			if err != nil {
				return err
			}
			defer ring.Close()
			if err := ring.Rotate(ctx, to); err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, "Rotated: every data key is now wrapped by the new master key. Start the server with --master-key set to it.")
			return nil
		}),
	}
	rotate.Flags().StringVar(&from, "from", "", "current master key URL (default: $RHIZOME_MASTER_KEY, else <data>/master.key)")
	rotate.Flags().StringVar(&to, "to", "", "new master key URL (a gocloud.dev/secrets keeper URL)")
	cmd.AddCommand(rotate)
	return cmd
}
