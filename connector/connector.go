// Package connector owns how a data product's input ports are read: the
// Connector interface, the registry of connectors by name with the spec of
// their config, config validation, and the reference docs rendered from the
// specs.
//
// A connector lands its input in a staging directory as files in one of the
// staged formats (csv, ndjson, parquet) and says what it wrote. It does not
// load, transform or check data: the pipeline hands the staged files to the
// engine. Connectors live in subpackages named for what they read
// (connector/csv, connector/http, connector/postgres, ...) and register
// themselves in init, like database/sql drivers; import connector/all to get
// every built-in one.
package connector

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/rhizome-mesh/rhizome"
)

// Staged formats: the only formats a connector may write to the stage.
const (
	FormatCSV     = "csv"     // RFC 4180: comma, double quotes, header row
	FormatNDJSON  = "ndjson"  // one JSON object per line
	FormatParquet = "parquet" // Apache Parquet files
)

// Field types of a connector's config.
const (
	TypeString   = "string"
	TypeInt      = "int"
	TypeBool     = "bool"
	TypeDuration = "duration" // a Go duration string: "30s", "1m30s"
	TypeList     = "list"
	TypeMap      = "map"
	TypeSecret   = "secret" // a secret reference: "env:NAME" or "file:/path"
)

// Field is one key of a connector's config.
type Field struct {
	Name     string
	Type     string // one of the Type* constants
	Required bool
	Default  any // applied by Open when the key is absent
	Doc      string
}

// Spec describes a connector: its name (as written in an input port's
// `connector:`), a one-line summary, its config fields, and its constructor.
// New receives a config that Validate accepted, with defaults applied.
type Spec struct {
	Name    string
	Summary string
	Fields  []Field
	New     func(cfg map[string]any) (Connector, error)
}

// Connector reads one input port into the stage.
type Connector interface {
	// Stage writes the input into env.StageDir and says what it wrote.
	// It writes nothing outside env.StageDir. After an error the stage's
	// content is undefined: the pipeline discards it.
	Stage(ctx context.Context, env Env) (*Staged, error)
}

// Env is what the pipeline gives a connector for one run.
type Env struct {
	StageDir   string // empty directory the connector writes into
	BaseDir    string // relative paths in a config resolve here
	Secrets    SecretResolver
	Products   ProductReader
	HTTPClient *http.Client  // nil: a client without a global timeout
	Logger     *slog.Logger  // nil: discard
	Clock      rhizome.Clock // nil: the system clock
	// Objects reads s3:// paths; nil when no object storage is configured.
	Objects ObjectFetcher
	// ProductID and Port name the product being built and the input port
	// being staged; RunID is the run. The stream connector claims the
	// port's pushed batches for the run from Spool.
	ProductID string
	Port      string
	RunID     string
	Spool     StreamSpool // nil: no push ingestion in this process
}

// StreamSpool hands a run the batches pushed to a product's stream input
// port (stream.Spool implements it): Claim moves the pending ones to the
// run and returns the files the run holds, oldest first.
type StreamSpool interface {
	Claim(productID, port, runID string) ([]string, error)
}

// ObjectFetcher downloads the files an s3:// pattern names into a local
// directory (objstore.Store).
type ObjectFetcher interface {
	Fetch(ctx context.Context, pattern, dir string) ([]string, error)
}

// Log returns env.Logger, or a logger that discards.
func (env Env) Log() *slog.Logger {
	if env.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return env.Logger
}

// Client returns env.HTTPClient, or a plain client (timeouts come from
// each connector's config, per request).
func (env Env) Client() *http.Client {
	if env.HTTPClient == nil {
		return &http.Client{}
	}
	return env.HTTPClient
}

// ProductReader gives the published files of an upstream data product's
// version ("" for the current one).
type ProductReader interface {
	Files(ctx context.Context, productID, version string) (files []string, format string, err error)
}

// Staged is what a connector wrote.
type Staged struct {
	Format string   // FormatCSV, FormatNDJSON or FormatParquet
	Files  []string // names relative to Env.StageDir
	Rows   int64    // number of rows, or -1 when not known without reading the files
	Bytes  int64    // total size of Files
	// Columns is the schema the config declared (or the source reported),
	// if any; empty means the engine infers it.
	Columns []Column
}

// Column is one declared column. Type is a DuckDB type name.
type Column struct {
	Name     string
	Type     string
	Required bool
}

var (
	mu    sync.RWMutex
	specs = map[string]Spec{}
)

// Register makes a connector available by name. It panics if the name is
// taken or the spec is incomplete: both are programming errors found at
// start-up.
func Register(s Spec) {
	if s.Name == "" || s.New == nil {
		panic("connector: Register needs a Name and a New function")
	}
	for _, f := range s.Fields {
		if !slices.Contains(fieldTypes, f.Type) {
			panic(fmt.Sprintf("connector: Register %s: field %s has unknown type %q", s.Name, f.Name, f.Type))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if _, dup := specs[s.Name]; dup {
		panic("connector: Register called twice for connector " + s.Name)
	}
	specs[s.Name] = s
}

var fieldTypes = []string{TypeString, TypeInt, TypeBool, TypeDuration, TypeList, TypeMap, TypeSecret}

// Lookup returns the spec registered under name.
func Lookup(name string) (Spec, bool) {
	mu.RLock()
	defer mu.RUnlock()
	s, ok := specs[name]
	return s, ok
}

// Specs returns every registered spec, sorted by name.
func Specs() []Spec {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]Spec, 0, len(specs))
	for _, s := range specs {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Names returns the registered connector names, sorted.
func Names() []string {
	var out []string
	for _, s := range Specs() {
		out = append(out, s.Name)
	}
	return out
}

// Open validates cfg against the named connector's spec, applies the
// defaults and builds the connector. Errors are *rhizome.Error: EInvalid
// with one problem per mistake.
func Open(name string, cfg map[string]any) (Connector, error) {
	s, ok := Lookup(name)
	if !ok {
		return nil, rhizome.Invalid("unknown connector", rhizome.Problem{
			Path:    "connector",
			Message: fmt.Sprintf("no connector `%s`", name),
			Hint:    didYouMean(name, Names()),
		})
	}
	if ps := s.Validate(cfg); len(ps) > 0 {
		return nil, rhizome.Invalid(fmt.Sprintf("connector %s: invalid config", name), ps...)
	}
	c, err := s.New(s.withDefaults(cfg))
	if err != nil {
		return nil, rhizome.Wrap(err, "connector %s", name)
	}
	return c, nil
}

// withDefaults returns a copy of cfg with the spec's defaults set for
// absent keys.
func (s Spec) withDefaults(cfg map[string]any) map[string]any {
	out := make(map[string]any, len(cfg)+len(s.Fields))
	for k, v := range cfg {
		out[k] = v
	}
	for _, f := range s.Fields {
		if _, ok := out[f.Name]; !ok && f.Default != nil {
			out[f.Name] = f.Default
		}
	}
	return out
}

// field returns the field named name.
func (s Spec) field(name string) (Field, bool) {
	for _, f := range s.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

// Validate checks cfg against the spec: unknown keys, missing required
// keys, values of the wrong type. Problem paths read `config.<key>`.
// Connector-specific rules (one of table or query, ...) are checked by New.
func (s Spec) Validate(cfg map[string]any) []rhizome.Problem {
	var ps []rhizome.Problem
	names := make([]string, len(s.Fields))
	for i, f := range s.Fields {
		names[i] = f.Name
	}
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f, ok := s.field(k)
		if !ok {
			ps = append(ps, rhizome.Problem{
				Path:    "config." + k,
				Message: fmt.Sprintf("unknown field `%s` for connector %s", k, s.Name),
				Hint:    didYouMean(k, names),
			})
			continue
		}
		if msg, hint := checkType(f.Type, cfg[k]); msg != "" {
			ps = append(ps, rhizome.Problem{Path: "config." + k, Message: msg, Hint: hint})
		}
	}
	for _, f := range s.Fields {
		if _, ok := cfg[f.Name]; f.Required && !ok {
			ps = append(ps, rhizome.Problem{
				Path:    "config." + f.Name,
				Message: fmt.Sprintf("connector %s needs `%s`", s.Name, f.Name),
				Hint:    f.Doc,
			})
		}
	}
	return ps
}

func checkType(typ string, v any) (msg, hint string) {
	got := describe(v)
	switch typ {
	case TypeString:
		if _, ok := v.(string); !ok {
			return "want a string, got " + got, ""
		}
	case TypeInt:
		if _, ok := asInt(v); !ok {
			return "want a whole number, got " + got, ""
		}
	case TypeBool:
		if _, ok := v.(bool); !ok {
			return "want true or false, got " + got, ""
		}
	case TypeDuration:
		if _, err := asDuration(v); err != nil {
			return fmt.Sprintf("%s is not a duration", got), "write e.g. \"30s\", \"500ms\" or \"2m\""
		}
	case TypeList:
		if _, ok := asList(v); !ok {
			return "want a list, got " + got, ""
		}
	case TypeMap:
		if _, ok := v.(map[string]any); !ok {
			return "want a map, got " + got, ""
		}
	case TypeSecret:
		s, ok := v.(string)
		if !ok {
			return "want a secret reference, got " + got, "write e.g. \"env:PG_DSN\" or \"file:/run/secrets/pg_dsn\""
		}
		scheme, _, found := strings.Cut(s, ":")
		if !found || !slices.Contains(secretSchemes, scheme) {
			// Never echo the value: it may be the secret itself.
			return "not a secret reference", "write `env:NAME` or `file:/path`, not the secret itself"
		}
	}
	return "", ""
}

func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "nothing"
	case string:
		return fmt.Sprintf("%q", x)
	case bool:
		return fmt.Sprintf("%t", x)
	case map[string]any:
		return "a map"
	}
	if _, ok := asList(v); ok {
		return "a list"
	}
	return fmt.Sprintf("%v", v)
}
