// Package all registers every built-in connector. Import it for its side
// effect:
//
//	import _ "github.com/rhizome-mesh/rhizome/connector/all"
package all

import (
	_ "github.com/rhizome-mesh/rhizome/connector/csv"
	_ "github.com/rhizome-mesh/rhizome/connector/http"
	_ "github.com/rhizome-mesh/rhizome/connector/jsonfile"
	_ "github.com/rhizome-mesh/rhizome/connector/parquet"
	_ "github.com/rhizome-mesh/rhizome/connector/postgres"
	_ "github.com/rhizome-mesh/rhizome/connector/product"
	_ "github.com/rhizome-mesh/rhizome/connector/stream"
)
