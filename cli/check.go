package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/pipeline"
	"github.com/rhizome-mesh/rhizome/qreport"
	"github.com/rhizome-mesh/rhizome/quality"
	"github.com/rhizome-mesh/rhizome/spec"
)

// check: a product's quality checks on the server, or offline a contract's
// on a local file (for a team's CI).

func init() {
	register(func(a *app) *cobra.Command { return a.checkCmd() })
}

func (a *app) checkCmd() *cobra.Command {
	var version, contract, data, object, format, output string
	cmd := &cobra.Command{
		Use:   "check [PRODUCT]",
		Short: "Run quality checks: a product's on the server, or a contract's on a local file (offline, for CI)",
		Long: `Run quality checks.

With PRODUCT, the server runs the product's checks (manifest, infrastructure
and contract) now against its current snapshot and stores the results.

With --contract and --data, no server is needed: the contract's ODCS quality
rules and the schema of one of its objects are checked against a Parquet, CSV
or JSON file, so a domain team can test a contract in its own CI.

The exit status is 1 when an error-severity check fails (the gate would
quarantine); warnings pass. --format junit writes JUnit XML for CI systems,
--format json (or -o json) the whole result; --output FILE writes it to a
file instead of stdout.`,
		Example: `  rhizome check dp.sales.orders
  rhizome check --contract contracts/orders.yaml --data orders.parquet --format junit --output quality.xml`,
		Args: cobra.MaximumNArgs(1),
		RunE: a.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			// --output shadows the global -o/--output (the format): a
			// format name selects the format, anything else is a file.
			switch output {
			case "table", "json", "yaml", "junit":
				if format == "" {
					format = output
				}
				if output != "junit" {
					a.output = output
				}
				output = ""
			}
			switch format {
			case "", "table", "json", "yaml", "junit":
			default:
				return usagef(cmd, "unknown format %q: want table, json, yaml or junit", format)
			}
			if format == "" {
				format = a.output
			}
			// --data shadows the global --data (the data directory): with
			// PRODUCT and no --contract it keeps the global meaning, so
			// `rhizome check --data DIR PRODUCT` finds the local server.
			if contract == "" && data != "" && len(args) == 1 {
				a.dataDir, data = data, ""
			}
			offline := contract != "" || data != ""
			var rep *quality.Report
			suite := ""
			switch {
			case offline && len(args) > 0:
				return usagef(cmd, "give PRODUCT, or --contract and --data, not both")
			case offline && (contract == "" || data == ""):
				return usagef(cmd, "an offline check needs both --contract and --data")
			case offline:
				r, name, err := checkOffline(ctx, contract, object, data)
				if err != nil {
					return err
				}
				rep, suite = r, name
			case len(args) == 0:
				return usagef(cmd, "give PRODUCT, or --contract and --data")
			default:
				c, err := a.client()
				if err != nil {
					return err
				}
				run, err := c.RunChecks(ctx, args[0], version)
				if err != nil {
					return err
				}
				rep, suite = run.Report, args[0]
				if format == "json" || format == "yaml" {
					if err := a.writeOut(output, func(w io.Writer) error { return a.printTo(w, run) }); err != nil {
						return err
					}
					return gateErr(rep)
				}
			}
			err := a.writeOut(output, func(w io.Writer) error {
				switch format {
				case "junit":
					b, err := rep.JUnit(suite)
					if err != nil {
						return rhizome.Wrap(err, "writing JUnit XML")
					}
					_, err = w.Write(b)
					return err
				case "json", "yaml":
					return a.printTo(w, rep)
				}
				return printChecks(w, rep)
			})
			if err != nil {
				return err
			}
			return gateErr(rep)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&version, "version", "", "product version (default: current)")
	f.StringVar(&contract, "contract", "", "offline: an ODCS contract file")
	f.StringVar(&data, "data", "", "offline: the data to check (.parquet, .csv or .json); with PRODUCT: the data directory, as everywhere")
	f.StringVar(&object, "object", "", "offline: the contract's schema object (default: its only one)")
	f.StringVar(&format, "format", "", "table, json, yaml or junit (default: table)")
	f.StringVarP(&output, "output", "o", "", "a file to write the result to instead of stdout; or, as everywhere, a format (table, json, yaml, junit)")
	return cmd
}

// checkOffline reads a contract file (validated as `rhizome validate`
// would) and checks the data file against it.
func checkOffline(ctx context.Context, contractPath, object, dataPath string) (*quality.Report, string, error) {
	files, err := spec.Load(contractPath)
	if err != nil {
		return nil, "", err
	}
	if len(files) != 1 {
		return nil, "", rhizome.Errorf(rhizome.EInvalid, "--contract %s: want one file", contractPath)
	}
	doc, err := spec.DecodeOne(files[0].Name, files[0].Data)
	if err != nil {
		return nil, "", err
	}
	if doc.Kind != rhizome.KindDataContract {
		return nil, "", rhizome.Errorf(rhizome.EInvalid, "%s is a %s, not a DataContract", contractPath, doc.Kind)
	}
	rep, err := pipeline.CheckFile(ctx, doc.Body, object, dataPath, time.Now())
	if ps := rhizome.ProblemsOf(err); len(ps) > 0 {
		for i := range ps {
			if ps[i].File == "" {
				ps[i].Pos = doc.PosOf(ps[i].Path)
			}
		}
	}
	name := doc.ID
	if object != "" {
		name += "." + object
	}
	return rep, name, err
}

// gateErr is the command's error when an error-severity check failed.
func gateErr(rep *quality.Report) error {
	if rep == nil || rep.Failures == 0 {
		return nil
	}
	return fmt.Errorf("quality gate: %d error checks failed", rep.Failures)
}

// writeOut writes to the file named by path, or to stdout.
func (a *app) writeOut(path string, fn func(io.Writer) error) error {
	if path == "" {
		return fn(a.stdout)
	}
	var buf bytes.Buffer
	if err := fn(&buf); err != nil {
		return err
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return rhizome.Wrap(err, "writing %s", path)
	}
	return nil
}

// printTo is printData to w.
func (a *app) printTo(w io.Writer, v any) error {
	old := a.stdout
	a.stdout = w
	defer func() { a.stdout = old }()
	if a.output == "yaml" {
		return a.printData(v)
	}
	b, err := marshal(v, "  ")
	if err != nil {
		return rhizome.Wrap(err, "encoding the output")
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func printChecks(w io.Writer, rep *quality.Report) error {
	t := newTable(w, "CHECK", "SEVERITY", "RESULT", "METRIC", "THRESHOLD", "SOURCE")
	for _, r := range rep.Results {
		res := "pass"
		switch {
		case r.Error != "":
			res = "ERROR"
		case !r.Passed && r.Severity == quality.SeverityWarn:
			res = "WARN"
		case !r.Passed:
			res = "FAIL"
		}
		metric := qreport.FormatMetricOf(r.Check.Type, r.Metric)
		if r.Error != "" {
			metric = "-"
		}
		t.row(r.Check.Name, r.Severity, res, metric, r.Threshold, r.Check.Source)
	}
	if err := t.flush(); err != nil {
		return err
	}
	for _, r := range rep.Results {
		if r.Error != "" {
			fmt.Fprintf(w, "%s: %s\n", r.Check.Name, r.Error)
		} else if !r.Passed && len(r.Samples) > 0 {
			fmt.Fprintf(w, "%s: failing rows, e.g. %v\n", r.Check.Name, r.Samples[0])
		}
	}
	_, err := fmt.Fprintf(w, "gate: %s (%d checks, %d failed, %d warnings)\n", rep.Gate(), len(rep.Results), rep.Failures, rep.Warnings)
	return err
}
