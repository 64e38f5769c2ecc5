// Package product registers the product connector: the published files of
// an upstream data product's version, read through Env.Products.
package product

import (
	"context"
	"slices"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/connector"
	"github.com/rhizome-mesh/rhizome/connector/internal/stage"
)

func init() {
	connector.Register(connector.Spec{
		Name: "product",
		Summary: "An upstream data product's published data. Not written as `connector:`: an input port " +
			"with `product:` (and optionally `version:`) uses it, and the pipeline passes those as its config.",
		Fields: []connector.Field{
			{Name: "product", Type: connector.TypeString, Required: true,
				Doc: "The upstream data product's id, from the input port's `product:`."},
			{Name: "version", Type: connector.TypeString,
				Doc: "The pinned version, from the input port's `version:`. Empty: the current version."},
		},
		New: func(cfg map[string]any) (connector.Connector, error) {
			c := connector.Config(cfg)
			return &productConn{id: c.String("product"), version: c.String("version")}, nil
		},
	})
}

type productConn struct{ id, version string }

var formats = []string{connector.FormatCSV, connector.FormatNDJSON, connector.FormatParquet}

func (c *productConn) Stage(ctx context.Context, env connector.Env) (*connector.Staged, error) {
	if env.Products == nil {
		return nil, rhizome.Errorf(rhizome.EInternal, "product %s: no product reader in this environment", c.id)
	}
	files, format, err := env.Products.Files(ctx, c.id, c.version)
	if err != nil {
		return nil, rhizome.Wrap(err, "product %s%s", c.id, at(c.version))
	}
	if !slices.Contains(formats, format) {
		return nil, rhizome.Errorf(rhizome.EInternal, "product %s%s: published as %q, which cannot be staged", c.id, at(c.version), format)
	}
	if len(files) == 0 {
		return nil, rhizome.Errorf(rhizome.ENotFound, "product %s%s has no published data", c.id, at(c.version)).
			WithHint("run the upstream product's pipeline first")
	}
	st := &connector.Staged{Format: format, Rows: -1}
	for i, src := range files {
		name := stage.Name(i, src, format)
		n, err := stage.Link(src, env.StageDir, name)
		if err != nil {
			return nil, err
		}
		st.Bytes += n
		st.Files = append(st.Files, name)
	}
	env.Log().Info("staged product", "product", c.id, "version", c.version, "files", len(st.Files), "bytes", st.Bytes)
	return st, nil
}

func at(version string) string {
	if version == "" {
		return ""
	}
	return "@" + version
}
