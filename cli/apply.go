package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/spec"
)

func (a *app) applyCmd() *cobra.Command {
	var (
		files              []string
		dryRun, prune, yes bool
		expect             []string
	)
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR [-f ...]",
		Short: "Show the plan for manifests, then apply it",
		Long: `Apply sends manifests to the server, shows the plan (what it would create,
update, leave unchanged or delete) and then applies exactly that plan: if
anything in it changed in between, nothing is applied and apply fails with
a conflict. An apply is all or nothing.`,
		Example: `  rhizome apply -f examples/mesh --dry-run
  rhizome apply -f dp.sales.orders/ -f teams.yaml
  cat product.yaml | rhizome apply -f -`,
		Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
			pinned, err := parseExpect(cmd, expect)
			if err != nil {
				return err
			}
			in, err := a.readInputs(cmd, files)
			if err != nil {
				return err
			}
			return a.apply(ctx, cmd, in, dryRun, prune, yes, pinned)
		}),
	}
	f := cmd.Flags()
	f.StringArrayVarP(&files, "filename", "f", nil, "manifest file or directory, or - for standard input (repeatable)")
	f.BoolVar(&dryRun, "dry-run", false, "show the plan only")
	f.BoolVar(&prune, "prune", false, "also delete objects of the applied kinds and domains that the input no longer holds")
	f.BoolVarP(&yes, "yes", "y", false, "do not ask before deleting")
	f.StringArrayVar(&expect, "expect", nil, "pin Kind/id=REVISION: fail unless the object is at that revision (0: absent)")
	_ = f.MarkHidden("expect")
	return cmd
}

// input is the manifests read for apply or validate.
type input struct {
	files     []spec.File
	fromStdin bool
}

// readInputs reads -f arguments: files, directories, or - for stdin.
func (a *app) readInputs(cmd *cobra.Command, args []string) (*input, error) {
	if len(args) == 0 {
		return nil, usagef(cmd, "no manifests: pass -f FILE, -f DIR or -f -")
	}
	in := &input{}
	for _, p := range args {
		if p == "-" {
			if in.fromStdin {
				return nil, usagef(cmd, "-f - given twice")
			}
			b, err := io.ReadAll(a.stdin)
			if err != nil {
				return nil, rhizome.Wrap(err, "reading standard input")
			}
			in.files = append(in.files, spec.File{Name: "<stdin>", Data: b})
			in.fromStdin = true
			continue
		}
		fs, err := spec.Load(p)
		if err != nil {
			return nil, err
		}
		in.files = append(in.files, fs...)
	}
	if len(in.files) == 0 {
		return nil, rhizome.Errorf(rhizome.EInvalid, "no manifest files in %s", strings.Join(args, ", ")).
			WithHint("manifests are .yaml, .yml or .json files")
	}
	return in, nil
}

// parseExpect reads --expect Kind/id=REV flags.
func parseExpect(cmd *cobra.Command, flags []string) (map[string]int64, error) {
	if len(flags) == 0 {
		return nil, nil
	}
	m := make(map[string]int64, len(flags))
	for _, s := range flags {
		key, rev, ok := strings.Cut(s, "=")
		n, err := strconv.ParseInt(rev, 10, 64)
		kind, id, hasSlash := strings.Cut(key, "/")
		k, known := rhizome.ParseKind(kind)
		if !ok || err != nil || n < 0 || !hasSlash || id == "" || !known {
			return nil, usagef(cmd, "--expect %q: want Kind/id=REVISION, e.g. DataProduct/dp.sales.orders=3", s)
		}
		m[string(k)+"/"+id] = n
	}
	return m, nil
}

func (a *app) apply(ctx context.Context, cmd *cobra.Command, in *input, dryRun, prune, yes bool, pinned map[string]int64) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	req := rhizome.ApplyRequest{DryRun: true, Prune: prune, Expected: pinned}
	for _, f := range in.files {
		req.Files = append(req.Files, rhizome.SourceFile{Name: f.Name, Content: string(f.Data)})
	}
	plan, err := c.Apply(ctx, req)
	if err != nil {
		return err
	}
	if a.table() {
		printPlan(a.stdout, plan)
	}
	if dryRun || countChanges(plan) == 0 {
		if !a.table() {
			return a.printData(plan)
		}
		if dryRun {
			fmt.Fprintln(a.stdout, "Dry run: nothing was applied.")
		} else {
			fmt.Fprintln(a.stdout, "No changes: nothing to apply.")
		}
		return nil
	}
	if n := plan.Summary.Delete; n > 0 && !yes {
		if err := a.confirmDelete(cmd, n, in.fromStdin); err != nil {
			return err
		}
	}

	// Apply exactly the plan shown: pin every object at the revision the
	// plan was made on, so that a change in between fails with EConflict.
	req.DryRun = false
	req.Expected = make(map[string]int64, len(plan.Changes))
	for _, ch := range plan.Changes {
		req.Expected[ch.Key()] = ch.BaseRevision
	}
	for k, v := range pinned {
		req.Expected[k] = v
	}
	res, err := c.Apply(ctx, req)
	if err != nil {
		var e *rhizome.Error
		if errors.As(err, &e) && e.Code == rhizome.EConflict && e.Hint == "" {
			e.Hint = "something changed since the plan was made; run the apply again to see the new plan"
		}
		return err
	}
	if !a.table() {
		return a.printData(res)
	}
	fmt.Fprintf(a.stdout, "Applied %s (apply %s).\n", plural(countChanges(res), "change"), res.ApplyID)
	return nil
}

// confirmDelete asks before an apply deletes objects.
func (a *app) confirmDelete(cmd *cobra.Command, n int, stdinUsed bool) error {
	what := plural(n, "object")
	if stdinUsed {
		return usagef(cmd, "the plan deletes %s: pass --yes to confirm (standard input holds the manifests, so apply cannot ask)", what)
	}
	fmt.Fprintf(a.stderr, "The plan deletes %s. Apply it? [y/N] ", what)
	line, _ := bufio.NewReader(a.stdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return errors.New("apply cancelled: nothing was applied (pass --yes to apply a plan that deletes without asking)")
}

// countChanges counts the changes that do something.
func countChanges(r *rhizome.ApplyResult) int {
	n := 0
	for _, ch := range r.Changes {
		if ch.Action != rhizome.ActionUnchanged {
			n++
		}
	}
	return n
}

var actionSymbol = map[rhizome.Action]string{
	rhizome.ActionCreate:    "+",
	rhizome.ActionUpdate:    "~",
	rhizome.ActionUnchanged: "=",
	rhizome.ActionDelete:    "-",
}

// printPlan shows a plan for people: one line per object, with the fields
// an update changes and the platform's notes below it.
func printPlan(w io.Writer, r *rhizome.ApplyResult) {
	s := r.Summary
	fmt.Fprintf(w, "Plan: %d to create, %d to update, %d unchanged, %d to delete.\n", s.Create, s.Update, s.Unchanged, s.Delete)
	for _, ch := range r.Changes {
		if ch.Action == rhizome.ActionUnchanged && len(ch.Notes) == 0 {
			continue // counted in the summary line; nothing to read
		}
		sym, ok := actionSymbol[ch.Action]
		if !ok {
			sym = "?"
		}
		line := "  " + sym + " " + ch.Key()
		if ch.Action == rhizome.ActionUpdate && ch.BaseRevision > 0 {
			line += fmt.Sprintf(" (revision %d)", ch.BaseRevision)
		}
		fmt.Fprintln(w, line)
		for _, d := range ch.Diff {
			fmt.Fprintf(w, "      %s: %s -> %s\n", d.Path, value(d.Old), value(d.New))
		}
		for _, n := range ch.Notes {
			fmt.Fprintf(w, "      note: %s\n", n)
		}
	}
}

func (a *app) validateCmd() *cobra.Command {
	var files []string
	cmd := &cobra.Command{
		Use:   "validate -f FILE|DIR [-f ...]",
		Short: "Check manifests offline, without a server",
		Long: `Validate checks manifests against their kinds' schemas and rules without a
server. References must resolve within the files given: pass the domain and
team manifests along with a product's. Exit status 3 means problems.`,
		Example: `  rhizome validate -f examples/mesh
  rhizome validate -f dp.sales.orders -f mesh/sales.yaml`,
		Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
			in, err := a.readInputs(cmd, files)
			if err != nil {
				return err
			}
			docs, err := spec.Validate(nil, in.files...)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "ok: %s in %s\n", plural(len(docs), "document"), plural(len(in.files), "file"))
			return nil
		}),
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "manifest file or directory, or - for standard input (repeatable)")
	return cmd
}
