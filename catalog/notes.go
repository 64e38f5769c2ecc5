package catalog

import (
	"fmt"
	"strings"

	"github.com/rhizome-mesh/rhizome"
)

// mappingNotes says, for an infrastructure manifest, how this deployment
// carries out each choice it names, so nobody is surprised by a plan.
func mappingNotes(inf *rhizome.Infrastructure) []string {
	var notes []string
	s := inf.Spec
	if st := s.Storage; st != nil {
		switch strings.ToLower(st.Format) {
		case "", "iceberg", "parquet":
		case "delta-lake", "delta":
			notes = append(notes, fmt.Sprintf("storage.format %q: publishes Apache Iceberg tables (Parquet files); no Go Delta Lake writer exists", st.Format))
		default:
			notes = append(notes, fmt.Sprintf("storage.format %q: publishes Apache Iceberg tables (Parquet files)", st.Format))
		}
		if strings.HasPrefix(st.Location, "s3://") {
			notes = append(notes, fmt.Sprintf("storage.location %s: S3-compatible object storage; the deployment's S3 endpoint and credentials apply", st.Location))
		}
		if st.Encryption != "" {
			notes = append(notes, fmt.Sprintf("storage.encryption %q: data files encrypted at rest with AES-256-GCM under a per-product key", st.Encryption))
		}
	}
	if p := s.Processing; p != nil {
		switch strings.ToLower(p.Engine) {
		case "", "duckdb":
		case "spark":
			notes = append(notes, fmt.Sprintf("processing.engine spark %s: runs on the embedded DuckDB engine (this deployment has no Spark Connect endpoint)", p.Version))
		default:
			notes = append(notes, fmt.Sprintf("processing.engine %q: runs on the embedded DuckDB engine", p.Engine))
		}
		if p.AutoScaling || p.MinWorkers > 0 || p.MaxWorkers > 0 {
			notes = append(notes, fmt.Sprintf("processing workers %d..%d: bounded by the rhizome workers sharing the job queue", p.MinWorkers, p.MaxWorkers))
		}
	}
	if o := s.Orchestration; o != nil {
		switch strings.ToLower(o.Tool) {
		case "", "rhizome":
		default:
			notes = append(notes, fmt.Sprintf("orchestration.tool %q: scheduled by Rhizome's scheduler (schedule %q, timeout %q)", o.Tool, o.Schedule, o.Timeout))
		}
	}
	if q := s.Quality; q != nil {
		switch strings.ToLower(q.Framework) {
		case "", "rhizome":
		default:
			notes = append(notes, fmt.Sprintf("quality.framework %q: checks run on Rhizome's quality engine", q.Framework))
		}
	}
	if d := s.Discovery; d != nil {
		switch strings.ToLower(d.Catalog) {
		case "", "rhizome":
		default:
			notes = append(notes, fmt.Sprintf("discovery.catalog %q: published to Rhizome's catalog", d.Catalog))
		}
	}
	if sec := s.Security; sec != nil && sec.AccessControl != "" && !strings.EqualFold(sec.AccessControl, "abac") {
		notes = append(notes, fmt.Sprintf("security.access_control %q: enforced by Rhizome's access rules (team roles plus sensitivity levels)", sec.AccessControl))
	}
	return notes
}
