package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/engine/duckdb"
	"github.com/rhizome-mesh/rhizome/table"
)

// OpenLineage RunEvents (spec 2-0-2), written by hand: there is no Go
// client library for it, and the events are plain JSON.
const (
	olSchema      = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
	facetsBase    = "https://openlineage.io/spec/facets/1-0-1/"
	olNamespace   = "rhizome"
	tableNSPrefix = "iceberg://rhizome/"
)

type facet map[string]any

type dataset struct {
	Namespace    string           `json:"namespace"`
	Name         string           `json:"name"`
	Facets       map[string]facet `json:"facets,omitempty"`
	OutputFacets map[string]facet `json:"outputFacets,omitempty"`
}

type event struct {
	EventType string    `json:"eventType"`
	EventTime time.Time `json:"eventTime"`
	Producer  string    `json:"producer"`
	SchemaURL string    `json:"schemaURL"`
	Run       struct {
		RunID  string           `json:"runId"`
		Facets map[string]facet `json:"facets,omitempty"`
	} `json:"run"`
	Job struct {
		Namespace string           `json:"namespace"`
		Name      string           `json:"name"`
		Facets    map[string]facet `json:"facets,omitempty"`
	} `json:"job"`
	Inputs  []dataset `json:"inputs"`
	Outputs []dataset `json:"outputs"`
}

// lineage builds the events of one run.
type lineage struct {
	producer string
	run      *rhizome.Run
	dp       *rhizome.DataProduct
	inputs   []dataset
	output   dataset
	ports    map[string]dataset // input port name -> dataset
}

// productDataset names a product version's table as OpenLineage sees it:
// the same dataset is the output of the upstream's runs and an input of the
// downstream's, so the two join into one graph.
func productDataset(productID, version string) dataset {
	ref := table.RefFor(productID, version)
	return dataset{Namespace: tableNSPrefix + ref.Namespace, Name: ref.Name}
}

func (p *Pipeline) lineage(ctx context.Context, run *rhizome.Run, dp *rhizome.DataProduct) *lineage {
	l := &lineage{producer: p.opt.Producer, run: run, dp: dp, ports: map[string]dataset{}}
	for _, port := range dp.InputPorts {
		var d dataset
		if port.Product != "" {
			v := port.Version
			if v == "" {
				if up, _, err := p.product(ctx, port.Product); err == nil {
					v = up.CurrentVersion
				}
			}
			d = productDataset(port.Product, v)
		} else {
			src := port.Name
			for _, k := range []string{"path", "url", "table", "query"} {
				if v, ok := port.Config[k].(string); ok && v != "" {
					src = v
					break
				}
			}
			d = dataset{Namespace: olNamespace + "://" + port.Connector, Name: src}
		}
		l.ports[port.Name] = d
		l.inputs = append(l.inputs, d)
	}
	l.output = productDataset(dp.ID, dp.CurrentVersion)
	return l
}

func (l *lineage) producerFacet(name string) facet {
	return facet{"_producer": l.producer, "_schemaURL": facetsBase + name + ".json"}
}

func (l *lineage) base(kind string, at time.Time) event {
	var e event
	e.EventType, e.EventTime, e.Producer, e.SchemaURL = kind, at.UTC(), l.producer, olSchema
	e.Run.RunID = uuid.NewSHA1(uuid.NameSpaceURL, []byte("rhizome:run:"+l.run.ID)).String()
	e.Job.Namespace, e.Job.Name = olNamespace, l.dp.ID
	e.Inputs = append([]dataset{}, l.inputs...)
	e.Outputs = []dataset{l.output}
	return e
}

func (l *lineage) start(at time.Time) event {
	e := l.base("START", at)
	if l.dp.Pipeline != nil {
		sql := ""
		for _, m := range l.dp.Pipeline.Models {
			sql += fmt.Sprintf("-- model %s\n%s\n", m.Name, m.SQL)
		}
		f := l.producerFacet("SQLJobFacet")
		f["query"] = sql
		e.Job.Facets = map[string]facet{"sql": f}
	}
	return e
}

func (l *lineage) fail(at time.Time, err error) event {
	e := l.base("FAIL", at)
	f := l.producerFacet("ErrorMessageRunFacet")
	f["message"] = err.Error()
	f["programmingLanguage"] = "SQL"
	e.Run.Facets = map[string]facet{"errorMessage": f}
	return e
}

func (l *lineage) complete(at time.Time, schema []duckdb.Column, cols map[string][]duckdb.ColumnRef, rows int64, snap *table.Snapshot) event {
	e := l.base("COMPLETE", at)
	out := l.output
	sf := l.producerFacet("SchemaDatasetFacet")
	var fields []map[string]string
	for _, c := range schema {
		fields = append(fields, map[string]string{"name": c.Name, "type": c.Type})
	}
	sf["fields"] = fields
	cl := l.producerFacet("ColumnLineageDatasetFacet")
	lf := map[string]any{}
	for col, refs := range cols {
		var in []map[string]string
		for _, r := range refs {
			d, ok := l.ports[r.Table]
			if !ok {
				d = dataset{Namespace: olNamespace + "://model", Name: l.dp.ID + "." + r.Table}
			}
			in = append(in, map[string]string{"namespace": d.Namespace, "name": d.Name, "field": r.Column})
		}
		lf[col] = map[string]any{"inputFields": in}
	}
	cl["fields"] = lf
	out.Facets = map[string]facet{"schema": sf, "columnLineage": cl}
	st := l.producerFacet("OutputStatisticsOutputDatasetFacet")
	st["rowCount"] = rows
	if snap != nil {
		st["size"] = snap.Bytes
	}
	out.OutputFacets = map[string]facet{"outputStatistics": st}
	e.Outputs = []dataset{out}
	return e
}
