// Command gen writes the example mesh's sample data, examples/data/*.csv.
//
//	go run ./examples/gen          # from anywhere in the repository
//	go run ./examples/gen -out DIR # somewhere else
//
// The data is small, realistic and referentially consistent: every
// customer_id, order_id, product_id and campaign_id points at a row that
// exists, no order precedes its customer's signup, touches fall inside their
// campaign's window. A few fields are null on purpose (phone, birth_date,
// an occasional email or cost) so that quality checks have something to find.
//
// The output is deterministic: a fixed PCG seed, a fixed "as of" date and no
// clock. Running it twice gives the same bytes, and gen_test.go checks that
// the committed files are exactly what it writes.
package main

import (
	"bytes"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "directory to write the CSV files to (default: examples/data of this module)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir := *out
	if dir == "" {
		root, err := moduleRoot()
		if err != nil {
			return fmt.Errorf("%w (or pass -out)", err)
		}
		dir = filepath.Join(root, "examples", "data")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files, err := Generate()
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.Name), f.Data, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\t%d rows\t%d bytes\n", filepath.Join(dir, f.Name), bytes.Count(f.Data, []byte("\n"))-1, len(f.Data))
	}
	return nil
}

const modulePath = "github.com/rhizome-mesh/rhizome"

// moduleRoot finds the directory of Rhizome's go.mod, upward from the
// working directory, so that `go run ./examples/gen` works from anywhere in
// the tree.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil {
			first, _, _ := strings.Cut(string(data), "\n")
			if strings.TrimSpace(strings.TrimPrefix(first, "module")) == modulePath {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the " + modulePath + " module")
		}
		dir = parent
	}
}

// File is one generated CSV file.
type File struct {
	Name string
	Data []byte
}

// Generate produces every CSV file, in a fixed order.
func Generate() ([]File, error) {
	d := newDataset()
	var files []File
	for _, t := range d.tables() {
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		if err := w.Write(t.header); err != nil {
			return nil, err
		}
		if err := w.WriteAll(t.rows); err != nil {
			return nil, err
		}
		files = append(files, File{Name: t.name, Data: buf.Bytes()})
	}
	return files, nil
}

type table struct {
	name   string
	header []string
	rows   [][]string
}
