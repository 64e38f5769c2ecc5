// Package table owns the Apache Iceberg tables that data product versions
// are published as: one table per product major version, Parquet data
// files in the storage the product's infrastructure names (a local
// directory, file://, or S3-compatible object storage, s3://), and an
// Iceberg SQL catalog kept in the metastore's own database. It commits each
// publish as one snapshot (replace or append), evolves schemas by adding
// columns and refuses breaking changes, answers time-travel questions
// (which files, which schema, as of a snapshot or an instant), expires old
// snapshots with their files and removes files a crash left behind.
//
// Publishes to one table from one Catalog queue; across processes the
// catalog's compare-and-swap lets one win and the others fail with
// EConflict, leaving no files behind.
//
// It leaves to pipeline what to publish and when: running connectors and
// transforms, writing the Parquet files (DuckDB), quality gates, and
// recording runs. Any Iceberg engine can read the tables through the same
// catalog tables (iceberg_tables, iceberg_namespace_properties; catalog
// name "rhizome").
package table

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	icetable "github.com/apache/iceberg-go/table"

	// Registers the s3:// (and s3a, s3n) FileIO with iceberg-go.
	s3io "github.com/apache/iceberg-go/io/gocloud/s3"
	"github.com/apache/iceberg-go/utils"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/rhizome-mesh/rhizome"
)

// CatalogName is the catalog_name of Rhizome's rows in the Iceberg SQL
// catalog tables; another engine configures its SQL/JDBC catalog with it.
const CatalogName = "rhizome"

// PropertyPrefix marks the publisher's properties (run id, product
// version) in a snapshot summary, apart from Iceberg's own summary keys.
const PropertyPrefix = "rhizome."

// Options configure a Catalog.
type Options struct {
	// DB is the metastore's database; the Iceberg catalog tables live
	// beside the metastore's.
	DB *sql.DB
	// Dialect is the DB's SQL dialect: "sqlite" or "postgres".
	Dialect string
	// Warehouse is where tables go when a publish names no location:
	// file:///abs/lake, an absolute directory, or s3://bucket/prefix.
	Warehouse string
	// Props are Iceberg FileIO properties: s3.endpoint, s3.region,
	// s3.access-key-id, s3.secret-access-key, s3.force-virtual-addressing.
	Props map[string]string
	// Clock names uploaded data files. Snapshot timestamps are iceberg-go's
	// and always come from the wall clock.
	Clock rhizome.Clock
	// Keys gives the data keys of encrypted tables (PublishRequest.Encrypt;
	// see crypt.go); nil means this Catalog neither writes nor reads them.
	Keys KeyProvider
}

// Catalog publishes and reads data product tables.
type Catalog struct {
	cat   *sqlcat.Catalog
	clock rhizome.Clock
	props iceberg.Properties
	aws   *aws.Config // nil without S3
	keys  KeyProvider // nil: no encrypted tables (crypt.go)

	mu    sync.Mutex
	locks map[Ref]*sync.Mutex

	// testHookBeforeCommit, when set, runs after the files are uploaded
	// and before the snapshot is committed; an error fails the publish.
	testHookBeforeCommit func() error
}

// Open creates the Iceberg catalog tables in opt.DB if they are missing.
func Open(ctx context.Context, opt Options) (*Catalog, error) {
	if opt.DB == nil {
		return nil, rhizome.Errorf(rhizome.EInvalid, "table: no database").WithHint("pass the metastore's DB()")
	}
	var d sqlcat.SupportedDialect
	switch opt.Dialect {
	case "sqlite":
		d = sqlcat.SQLite
	case "postgres":
		d = sqlcat.Postgres
	default:
		return nil, rhizome.Errorf(rhizome.EInvalid, "table: unsupported SQL dialect %q", opt.Dialect).WithHint(`want "sqlite" or "postgres"`)
	}
	wh, err := normalizeLocation(opt.Warehouse)
	if err != nil {
		return nil, rhizome.Wrap(err, "table: warehouse")
	}
	if wh == "" {
		return nil, rhizome.Errorf(rhizome.EInvalid, "table: no warehouse").WithHint("set a default location, e.g. file:///var/lib/rhizome/lake or s3://bucket/lake")
	}
	props := iceberg.Properties{}
	for k, v := range opt.Props {
		props[k] = v
	}
	props["warehouse"] = wh
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// NewCatalog creates its tables with a background context; it is quick.
	cat, err := sqlcat.NewCatalog(CatalogName, opt.DB, d, props)
	if err != nil {
		return nil, rhizome.Wrap(err, "table: open the Iceberg SQL catalog")
	}
	clock := opt.Clock
	if clock == nil {
		clock = rhizome.SystemClock{}
	}
	c := &Catalog{cat: cat, clock: clock, props: props, keys: opt.Keys, locks: map[Ref]*sync.Mutex{}}
	if usesS3(props) {
		// iceberg-go would build an AWS config (and an HTTP transport) for
		// every file system it opens; one per Catalog reuses connections.
		if c.aws, err = s3io.ParseAWSConfig(ctx, props); err != nil {
			return nil, &rhizome.Error{Code: rhizome.EInvalid, Err: err, Message: "table: S3 configuration: " + err.Error()}
		}
	}
	return c, nil
}

func usesS3(props iceberg.Properties) bool {
	for k := range props {
		if strings.HasPrefix(k, "s3.") {
			return true
		}
	}
	return strings.HasPrefix(props["warehouse"], "s3")
}

// withIO gives iceberg-go the Catalog's AWS configuration, and the IO of
// encrypted tables the data keys (crypt_io.go).
func (c *Catalog) withIO(ctx context.Context) context.Context {
	ctx = withCryptKeys(ctx, c.keys)
	if c.aws == nil {
		return ctx
	}
	return utils.WithAwsConfig(ctx, c.aws)
}

// Ref names a table: the product's domain and its name with major version.
type Ref struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

func (r Ref) String() string { return r.Namespace + "." + r.Name }

func (r Ref) ident() icetable.Identifier { return icetable.Identifier{r.Namespace, r.Name} }

func (r Ref) check() error {
	if r.Namespace == "" || r.Name == "" || strings.Contains(r.Namespace, ".") || strings.Contains(r.Name, ".") {
		return rhizome.Errorf(rhizome.EInvalid, "table: bad table reference %q", r.String()).
			WithHint("want a namespace and a name without dots, e.g. customer / c360_v2 (see RefFor)")
	}
	return nil
}

// RefFor is the table of a product version: dp.<domain>.<name> at 2.1.0 is
// <domain>.<name>_v2. Characters other than [a-z0-9_] become "_", and a
// name starting with a digit gets the domain's initial (dp.customer.360 is
// customer.c360_v2), since SQL engines want identifiers to start with a
// letter.
func RefFor(productID, version string) Ref {
	segs := strings.Split(productID, ".")
	if len(segs) > 0 && segs[0] == "dp" {
		segs = segs[1:]
	}
	var domain, name string
	switch len(segs) {
	case 0:
	case 1:
		name = segs[0]
	default:
		domain, name = segs[0], strings.Join(segs[1:], "_")
	}
	domain, name = ident(domain), ident(name)
	if name != "" && name[0] >= '0' && name[0] <= '9' {
		prefix := "p"
		if domain != "" {
			prefix = domain[:1]
		}
		name = prefix + name
	}
	major := strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(version), "v"), "V")
	if i := strings.IndexByte(major, '.'); i >= 0 {
		major = major[:i]
	}
	if major = ident(major); major == "" {
		major = "0"
	}
	return Ref{Namespace: domain, Name: name + "_v" + major}
}

func ident(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// Column is one top-level column of a table schema, with its Iceberg type
// (long, string, timestamp, decimal(10, 2), list<string>, ...).
type Column struct {
	ID       int    `json:"id"`
	Name     string `json:"name"`
	Type     string `json:"type"`
	Required bool   `json:"required,omitempty"`
}

// Snapshot is one committed version of a table's data.
type Snapshot struct {
	ID       int64     `json:"id"`
	ParentID int64     `json:"parent_id,omitempty"` // 0 for the first
	Time     time.Time `json:"time"`
	// Operation is Iceberg's: append, overwrite, delete, replace.
	Operation string `json:"operation"`
	// Rows, Bytes and Files are the totals of the table as of the snapshot.
	Rows  int64 `json:"rows"`
	Bytes int64 `json:"bytes"`
	Files int64 `json:"files"`
	// Properties are those the publisher gave (PublishRequest.Properties).
	Properties map[string]string `json:"properties,omitempty"`
	Schema     []Column          `json:"schema"`
}

// AsOf selects a snapshot: by id, else the one current at Time, else the
// current one.
type AsOf struct {
	SnapshotID int64
	Time       time.Time
}

// lock serializes this process's writers of one table; the catalog's
// compare-and-swap on the metadata location covers other processes.
func (c *Catalog) lock(ref Ref) func() {
	c.mu.Lock()
	m := c.locks[ref]
	if m == nil {
		m = new(sync.Mutex)
		c.locks[ref] = m
	}
	c.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// load returns the table, or ENotFound.
func (c *Catalog) load(ctx context.Context, ref Ref) (*icetable.Table, error) {
	if err := ref.check(); err != nil {
		return nil, err
	}
	tbl, err := c.cat.LoadTable(ctx, ref.ident())
	if err != nil {
		if isNotFound(err) {
			return nil, rhizome.Errorf(rhizome.ENotFound, "table %s does not exist", ref).
				WithHint("publish the product version first")
		}
		return nil, rhizome.Wrap(err, "table %s: load", ref)
	}
	return tbl, nil
}

func isNotFound(err error) bool {
	return errors.Is(err, catalog.ErrNoSuchTable) || errors.Is(err, catalog.ErrNoSuchNamespace)
}

func columnsOf(sc *iceberg.Schema) []Column {
	if sc == nil {
		return nil
	}
	cols := make([]Column, 0, sc.NumFields())
	for _, f := range sc.Fields() {
		cols = append(cols, Column{ID: f.ID, Name: f.Name, Type: typeName(f.Type), Required: f.Required})
	}
	return cols
}

// typeName spells a type without field ids, so that equal types compare
// equal whatever ids their nested fields have.
func typeName(t iceberg.Type) string {
	switch t := t.(type) {
	case *iceberg.StructType:
		parts := make([]string, 0, len(t.FieldList))
		for _, f := range t.FieldList {
			parts = append(parts, f.Name+": "+typeName(f.Type))
		}
		return "struct<" + strings.Join(parts, ", ") + ">"
	case *iceberg.ListType:
		return "list<" + typeName(t.Element) + ">"
	case *iceberg.MapType:
		return "map<" + typeName(t.KeyType) + ", " + typeName(t.ValueType) + ">"
	}
	return t.String()
}

func snapshotOf(meta icetable.Metadata, s *icetable.Snapshot) Snapshot {
	out := Snapshot{ID: s.SnapshotID, Time: time.UnixMilli(s.TimestampMs).UTC()}
	if s.ParentSnapshotID != nil {
		out.ParentID = *s.ParentSnapshotID
	}
	if s.Summary != nil {
		out.Operation = string(s.Summary.Operation)
		num := func(k string) int64 {
			n, _ := strconv.ParseInt(s.Summary.Properties[k], 10, 64)
			return n
		}
		out.Rows, out.Bytes, out.Files = num("total-records"), num("total-files-size"), num("total-data-files")
		for k, v := range s.Summary.Properties {
			if name, ok := strings.CutPrefix(k, PropertyPrefix); ok {
				if out.Properties == nil {
					out.Properties = map[string]string{}
				}
				out.Properties[name] = v
			}
		}
	}
	out.Schema = columnsOf(schemaOf(meta, s))
	return out
}

func schemaOf(meta icetable.Metadata, s *icetable.Snapshot) *iceberg.Schema {
	if s != nil && s.SchemaID != nil {
		for _, sc := range meta.Schemas() {
			if sc.ID == *s.SchemaID {
				return sc
			}
		}
	}
	return meta.CurrentSchema()
}

// normalizeLocation turns an absolute directory into a file:// URI and
// checks the scheme of a URI.
func normalizeLocation(loc string) (string, error) {
	loc = strings.TrimSpace(loc)
	if loc == "" {
		return "", nil
	}
	if filepath.IsAbs(loc) {
		return (&url.URL{Scheme: "file", Path: filepath.ToSlash(loc)}).String(), nil
	}
	u, err := url.Parse(loc)
	if err != nil {
		return "", rhizome.Errorf(rhizome.EInvalid, "bad location %q: %v", loc, err)
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" || !strings.HasPrefix(u.Path, "/") {
			return "", rhizome.Errorf(rhizome.EInvalid, "bad location %q: a file:// location needs an absolute path", loc).
				WithHint("write file:///abs/dir (three slashes)")
		}
	case "s3", "s3a":
		if u.Host == "" {
			return "", rhizome.Errorf(rhizome.EInvalid, "bad location %q: no bucket", loc).WithHint("write s3://bucket/prefix")
		}
	default:
		return "", rhizome.Errorf(rhizome.EInvalid, "bad location %q: unsupported scheme %q", loc, u.Scheme).
			WithHint("use a local directory (file:///abs/dir) or S3-compatible storage (s3://bucket/prefix)")
	}
	return strings.TrimSuffix(loc, "/"), nil
}
