package spec

import (
	"strings"
	"testing"

	"github.com/rhizome-mesh/rhizome"
)

func TestPipelineChecks(t *testing.T) {
	head := `apiVersion: rhizome/v1
kind: DataProduct
id: dp.sales.x
name: X
owner_team: t
domain: sales
current_version: 1.0.0
sensitivity_level: internal
input_ports:
  - {name: orders, connector: csv, config: {path: data/orders.csv}}
pipeline:
`
	for _, tc := range []struct {
		name, body, path, msg string
	}{
		{"ok", "  models:\n    - {name: a, sql: SELECT 1}\n    - {name: b, sql: SELECT * FROM a}\n  mode: merge\n  merge_key: [id]\n  timeout: 30 minutes\n", "", ""},
		{"duplicate model", "  models:\n    - {name: a, sql: SELECT 1}\n    - {name: a, sql: SELECT 2}\n", "pipeline.models[1].name", "defined twice"},
		{"model named like a port", "  models:\n    - {name: orders, sql: SELECT 1}\n", "pipeline.models[0].name", "input port"},
		{"unknown output", "  models:\n    - {name: a, sql: SELECT 1}\n  output: b\n", "pipeline.output", "no model named `b`"},
		{"merge without key", "  models:\n    - {name: a, sql: SELECT 1}\n  mode: merge\n", "pipeline.merge_key", "needs merge_key"},
		{"bad timeout", "  models:\n    - {name: a, sql: SELECT 1}\n  timeout: soon\n", "pipeline.timeout", "not a duration"},
		{"bad schedule", "  models:\n    - {name: a, sql: SELECT 1}\n  schedule: every hour\n", "pipeline.schedule", "not a cron schedule"},
		{"bad model name", "  models:\n    - {name: My-Model, sql: SELECT 1}\n", "pipeline.models[0].name", ""},
		{"no sql", "  models:\n    - {name: a}\n", "pipeline.models[0].sql", "missing required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := Parse(File{Name: "p.yaml", Data: []byte(head + tc.body)})
			if tc.path == "" {
				if err != nil {
					t.Fatal(err)
				}
				if p := docs[0].Value.(*rhizome.DataProduct).Pipeline; p.OutputModel() != "b" {
					t.Fatalf("output model %q", p.OutputModel())
				}
				return
			}
			for _, p := range rhizome.ProblemsOf(err) {
				if p.Path == tc.path && strings.Contains(p.Message, tc.msg) && p.Line >= 11 {
					return
				}
			}
			t.Fatalf("no problem at %s containing %q: %v", tc.path, tc.msg, err)
		})
	}
}
