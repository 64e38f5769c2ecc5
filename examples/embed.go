// Package examples is Rhizome's example mesh: the manifests that
// `rhizome up --demo` applies (mesh/: four domains, five teams, nine data
// products with their ODCS contracts, infrastructure, the guide's
// governance policies and two column-masking policies) and the small, generated sample data their input
// ports read (data/*.csv, written by `go run ./examples/gen`). Tests and
// benchmarks use the same files. README.md beside this file is the tour.
//
// It only carries files: parsing and validating them is spec's job, applying
// them the server's.
package examples

import (
	"embed"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// FS holds mesh/ and data/. A csv input port's config.path ("data/orders.csv")
// is a path in FS.
//
//go:embed mesh data
var FS embed.FS

// Prefix is how mesh file names start in Mesh and MeshFiles: the files'
// place in the repository, so that problems point at a file one can open.
const Prefix = "examples/"

// File is one manifest file.
type File struct {
	Name string // e.g. "examples/mesh/domains.yaml"
	Data []byte
}

// MeshFiles returns every manifest under mesh/ (*.yaml, *.yml, *.json),
// sorted by name.
func MeshFiles() ([]File, error) {
	var files []File
	err := fs.WalkDir(FS, "mesh", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch path.Ext(p) {
		case ".yaml", ".yml", ".json":
		default:
			return nil
		}
		data, err := FS.ReadFile(p)
		if err != nil {
			return err
		}
		files = append(files, File{Name: Prefix + p, Data: data})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Name, b.Name) })
	return files, nil
}

// Mesh returns the manifests of MeshFiles by name.
func Mesh() (map[string][]byte, error) {
	files, err := MeshFiles()
	if err != nil {
		return nil, err
	}
	m := make(map[string][]byte, len(files))
	for _, f := range files {
		m[f.Name] = f.Data
	}
	return m, nil
}
