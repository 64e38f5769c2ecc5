package catalog

import (
	"fmt"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/connector"
	_ "github.com/rhizome-mesh/rhizome/connector/all" // the registry apply checks against
	"github.com/rhizome-mesh/rhizome/spec"
)

// connectorProblems checks every input port's connector and config
// against the connector registry, so a typo fails the apply rather than
// the first run.
func connectorProblems(docs []*spec.Document) []rhizome.Problem {
	var out []rhizome.Problem
	for _, d := range docs {
		dp, ok := d.Value.(*rhizome.DataProduct)
		if !ok {
			continue
		}
		for i, port := range dp.InputPorts {
			if port.Connector == "" {
				continue
			}
			base := fmt.Sprintf("input_ports[%d]", i)
			_, err := connector.Open(port.Connector, port.Config)
			if err == nil {
				continue
			}
			ps := rhizome.ProblemsOf(err)
			if len(ps) == 0 {
				ps = []rhizome.Problem{{Path: "config", Message: err.Error()}}
			}
			for _, p := range ps {
				p.Path = base + "." + p.Path
				p.Pos = d.PosOf(p.Path)
				out = append(out, p)
			}
		}
	}
	return out
}
