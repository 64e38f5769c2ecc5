package server

import (
	"context"
	"fmt"
	"io"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/catalog"
	"github.com/rhizome-mesh/rhizome/examples"
	"github.com/rhizome-mesh/rhizome/identity"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/metastore/open"
)

func openStore(ctx context.Context, url, dataDir string, opt metastore.Options) (metastore.Store, error) {
	return open.Open(ctx, url, dataDir, opt)
}

// loadDemo applies the example mesh, as the admin, when the store holds no
// domain yet: a restart keeps whatever the user changed since.
func loadDemo(ctx context.Context, store metastore.Store, cat *catalog.Catalog, out io.Writer) (bool, error) {
	page, err := store.List(ctx, metastore.ListOptions{Kind: rhizome.KindDomain, Limit: 1})
	if err != nil {
		return false, err
	}
	if len(page.Items) > 0 {
		fmt.Fprintln(out, "demo: the store already holds a mesh; left as it is")
		return false, nil
	}
	admin, err := store.GetPrincipal(ctx, identity.AdminPrincipal)
	if err != nil {
		return false, err
	}
	files, err := examples.MeshFiles()
	if err != nil {
		return false, err
	}
	req := rhizome.ApplyRequest{}
	for _, f := range files {
		req.Files = append(req.Files, rhizome.SourceFile{Name: f.Name, Content: string(f.Data)})
	}
	res, err := cat.Apply(ctx, admin, req)
	if err != nil {
		return false, err
	}
	fmt.Fprintf(out, "demo: applied the example mesh (%d objects)\n", res.Summary.Create+res.Summary.Update)
	return true, nil
}
