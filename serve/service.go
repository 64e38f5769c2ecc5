package serve

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/access"
	"github.com/rhizome-mesh/rhizome/audit"
	"github.com/rhizome-mesh/rhizome/engine/duckdb"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/table"
)

// Audit actions.
const (
	ActionSQL    = "sql.query"
	ActionRead   = "data.read"
	ActionExport = "export"
)

// Service is the governed read path. The zero value is not usable: set
// Tables, Store, Decider and Audit.
type Service struct {
	Tables  *table.Catalog
	Store   metastore.Store
	Decider access.Decider
	Audit   audit.Recorder
	Clock   rhizome.Clock
	Logger  *slog.Logger
	// CacheDir holds plaintext local copies of remote or encrypted data
	// files (0700); "" means a directory under os.TempDir.
	CacheDir string
	// StatementTimeout cancels a query that runs longer (default 30s).
	StatementTimeout time.Duration
	// MaxRows caps the rows a SQL query returns (default 1,000,000):
	// a larger result fails with 54000 after that many rows (see
	// docs/data-api.md).
	MaxRows int64
	// MaxEngines is how many sandboxed engines stay open (default 32).
	MaxEngines int
	// Threads and MemoryLimit configure each engine (0/"": DuckDB's).
	Threads     int
	MemoryLimit string
	// MaterializeBytes: a product whose files total at most this many
	// bytes is loaded into the engine's memory (masked and filtered, as a
	// table) instead of exposed as a view over its files, so that point
	// queries do not decode Parquet row groups each time (default 64 MiB;
	// -1 never). Larger products stay views over their files.
	MaterializeBytes int64
	// Served, when set, is told of each read of a product's data: ok
	// false when it failed on the platform's side (the availability SLO,
	// slo.Tracker.Served). Refusals and the caller's own errors (bad SQL,
	// a timeout) are not counted.
	Served func(productID string, ok bool)

	once    sync.Once
	initErr error
	parser  *duckdb.Engine
	parsers chan *duckdb.Session

	mu       sync.Mutex
	engines  map[string]*engineEntry
	lru      []string
	index    *productIndex
	files    map[string]cachedFiles // by ref + snapshot id
	checked  map[string]*duckdb.ServeStatement
	cacheDir string
	closed   bool
}

type cachedFiles struct {
	files []string
	cols  []table.Column
}

func (s *Service) init() error {
	s.once.Do(func() {
		if s.Clock == nil {
			s.Clock = rhizome.SystemClock{}
		}
		if s.Logger == nil {
			s.Logger = slog.New(slog.DiscardHandler)
		}
		if s.StatementTimeout <= 0 {
			s.StatementTimeout = 30 * time.Second
		}
		if s.MaxRows <= 0 {
			s.MaxRows = 1_000_000
		}
		if s.MaxEngines <= 0 {
			s.MaxEngines = 32
		}
		if s.MaterializeBytes == 0 {
			s.MaterializeBytes = 64 << 20
		}
		s.cacheDir = s.CacheDir
		if s.cacheDir == "" {
			d, err := os.MkdirTemp("", "rhizome-serve-")
			if err != nil {
				s.initErr = rhizome.Wrap(err, "serve: cache dir")
				return
			}
			s.cacheDir = d
		}
		if err := os.MkdirAll(s.cacheDir, 0o700); err != nil {
			s.initErr = rhizome.Wrap(err, "serve: cache dir")
			return
		}
		// The parser reaches no files at all.
		e, err := duckdb.Open(context.Background(), duckdb.Options{TempDir: filepath.Join(s.cacheDir, "parser-tmp"), Threads: 1})
		if err != nil {
			s.initErr = err
			return
		}
		s.parser = e
		s.parsers = make(chan *duckdb.Session, 8)
		s.engines = map[string]*engineEntry{}
		s.files = map[string]cachedFiles{}
		s.checked = map[string]*duckdb.ServeStatement{}
	})
	return s.initErr
}

// Close closes every engine.
func (s *Service) Close() error {
	if err := s.init(); err != nil {
		return err
	}
	s.mu.Lock()
	s.closed = true
	engines := s.engines
	s.engines = map[string]*engineEntry{}
	s.mu.Unlock()
	for _, e := range engines {
		e.retire()
	}
	close(s.parsers)
	for p := range s.parsers {
		p.Close()
	}
	return s.parser.Close()
}

// check parses and vets query on a parser session. Accepted statements
// are remembered by their text (they do not depend on the subject).
func (s *Service) check(ctx context.Context, query string) (*duckdb.ServeStatement, error) {
	s.mu.Lock()
	st, ok := s.checked[query]
	s.mu.Unlock()
	if ok {
		return st, nil
	}
	var sess *duckdb.Session
	select {
	case sess = <-s.parsers:
	default:
		var err error
		if sess, err = s.parser.Session(ctx); err != nil {
			return nil, err
		}
	}
	st, err := sess.CheckServe(ctx, query)
	select {
	case s.parsers <- sess:
	default:
		sess.Close()
	}
	if err == nil && len(query) <= 64<<10 {
		s.mu.Lock()
		if len(s.checked) >= 4096 {
			s.checked = map[string]*duckdb.ServeStatement{}
		}
		s.checked[query] = st
		s.mu.Unlock()
	}
	return st, err
}

// target is a product relation: which product and major version.
type target struct {
	rel       duckdb.Relation
	productID string
	version   string // the version whose major names the table
	ref       table.Ref
	current   bool // the unversioned name
}

type productIndex struct {
	at   time.Time
	rels map[duckdb.Relation]target
	all  []target // current names, for catalog queries
	// domains are the schemas products live in.
	domains map[string]bool
}

// indexTTL is how long the product name index is reused.
const indexTTL = 2 * time.Second

// products maps relation names to products: "domain"."name" is the
// current version, "domain"."name_vN" major N (see docs/data-api.md).
func (s *Service) products(ctx context.Context) (*productIndex, error) {
	now := s.Clock.Now()
	s.mu.Lock()
	idx := s.index
	s.mu.Unlock()
	if idx != nil && now.Sub(idx.at) < indexTTL && !now.Before(idx.at) {
		return idx, nil
	}
	idx = &productIndex{at: now, rels: map[duckdb.Relation]target{}, domains: map[string]bool{}}
	after := ""
	for {
		page, err := s.Store.List(ctx, metastore.ListOptions{Kind: rhizome.KindDataProduct, After: after, Limit: 1000})
		if err != nil {
			return nil, err
		}
		for _, o := range page.Items {
			var dp rhizome.DataProduct
			if err := json.Unmarshal(o.Body, &dp); err != nil {
				continue
			}
			cur := table.RefFor(dp.ID, dp.CurrentVersion)
			base := strings.TrimSuffix(cur.Name, "_v"+major(dp.CurrentVersion))
			t := target{rel: duckdb.Relation{Schema: cur.Namespace, Name: base}, productID: dp.ID, version: dp.CurrentVersion, ref: cur, current: true}
			idx.rels[t.rel] = t
			idx.all = append(idx.all, t)
			idx.domains[t.rel.Schema] = true
			for _, v := range append([]string{dp.CurrentVersion}, dp.PreviousVersions...) {
				ref := table.RefFor(dp.ID, v)
				r := duckdb.Relation{Schema: ref.Namespace, Name: ref.Name}
				if _, ok := idx.rels[r]; !ok {
					idx.rels[r] = target{rel: r, productID: dp.ID, version: v, ref: ref}
				}
			}
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	s.mu.Lock()
	s.index = idx
	s.mu.Unlock()
	return idx, nil
}

// major is the major version table.RefFor uses.
func major(v string) string {
	r := table.RefFor("dp.x.y", v)
	return strings.TrimPrefix(r.Name, "y_v")
}

// view is one product view of a session.
type view struct {
	target
	decision *access.Decision
	files    []string
	cols     []table.Column
	sql      string // CREATE VIEW body
	// materialize loads the rows into a table instead (small products).
	materialize bool
}

// prepared is a product ready to read: decided, its files local.
func (s *Service) prepare(ctx context.Context, subj access.Subject, t target, at table.AsOf, via string) (*view, error) {
	files, cols, err := s.dataFiles(ctx, t.ref, at)
	if err != nil && rhizome.Code(err) != rhizome.ENotFound {
		return nil, err
	}
	req := access.Request{Subject: subj, ProductID: t.productID, Via: via, Types: map[string]string{}}
	for _, c := range cols {
		req.Columns = append(req.Columns, c.Name)
		req.Types[c.Name] = duckType(c.Type)
	}
	d, derr := s.Decider.Decide(ctx, req)
	if derr != nil {
		return nil, derr
	}
	if !d.Allow {
		return &view{target: t, decision: d}, nil
	}
	if err != nil && !at.Time.IsZero() {
		return nil, rhizome.Errorf(rhizome.ENotFound, "product %s has no snapshot as of %s", t.productID, at.Time.UTC().Format(time.RFC3339)).
			WithHint("rhizome versions %s lists its versions; read a later time, a version or a snapshot id", t.productID)
	}
	if err != nil {
		return nil, rhizome.Errorf(rhizome.ENotFound, "product %s has no data to read yet", t.productID).WithHint("run it first: rhizome run %s", t.productID)
	}
	v := &view{target: t, decision: d, files: files, cols: cols}
	proj := d.Projection()
	if proj == "" {
		proj = "NULL AS no_visible_columns"
	}
	if len(files) == 0 {
		var nulls []string
		for _, c := range cols {
			nulls = append(nulls, "CAST(NULL AS "+duckType(c.Type)+") AS "+access.QuoteIdent(c.Name))
		}
		if len(nulls) == 0 {
			nulls = []string{"NULL AS no_columns"}
		}
		v.sql = "SELECT " + proj + " FROM (SELECT " + strings.Join(nulls, ", ") + ") WHERE false"
		return v, nil
	}
	lits := make([]string, len(files))
	for i, f := range files {
		lits[i] = quoteLit(f)
	}
	v.sql = "SELECT " + proj + " FROM read_parquet([" + strings.Join(lits, ", ") + "])"
	if d.RowFilter != "" {
		v.sql += " WHERE (" + d.RowFilter + ")"
	}
	if s.MaterializeBytes > 0 {
		var size int64
		for _, f := range files {
			if fi, err := os.Stat(f); err == nil {
				size += fi.Size()
			}
		}
		v.materialize = size <= s.MaterializeBytes
	}
	return v, nil
}

// dataFiles are the local plaintext files of a snapshot and its schema.
// The current snapshot's id is looked up each time (a publish shows at
// once); files per snapshot are cached.
func (s *Service) dataFiles(ctx context.Context, ref table.Ref, at table.AsOf) ([]string, []table.Column, error) {
	if at.SnapshotID == 0 && at.Time.IsZero() {
		cur, err := s.Tables.Current(ctx, ref)
		if err != nil {
			return nil, nil, err
		}
		at.SnapshotID = cur.ID
	}
	key := ""
	if at.SnapshotID != 0 {
		key = fmt.Sprintf("%s@%d", ref, at.SnapshotID)
		s.mu.Lock()
		c, ok := s.files[key]
		s.mu.Unlock()
		if ok {
			return c.files, c.cols, nil
		}
	}
	files, cols, err := s.Tables.DataFiles(ctx, ref, at)
	if err != nil {
		return nil, nil, err
	}
	local := true
	for _, f := range files {
		if !filepath.IsAbs(f) {
			local = false
		}
	}
	if !local {
		h := sha256.Sum256([]byte(strings.Join(files, "\n")))
		dir := filepath.Join(s.cacheDir, "files", hex.EncodeToString(h[:12]))
		if files, err = s.Tables.Readable(ctx, ref, at, dir); err != nil {
			return nil, nil, err
		}
	}
	if key != "" {
		s.mu.Lock()
		if len(s.files) > 4096 {
			s.files = map[string]cachedFiles{}
		}
		s.files[key] = cachedFiles{files, cols}
		s.mu.Unlock()
	}
	return files, cols, nil
}

// duckType maps an Iceberg type name (table.Column.Type) to DuckDB's.
func duckType(t string) string {
	t = strings.ToLower(strings.TrimSpace(t))
	switch t {
	case "boolean":
		return "BOOLEAN"
	case "int":
		return "INTEGER"
	case "long":
		return "BIGINT"
	case "float":
		return "FLOAT"
	case "double":
		return "DOUBLE"
	case "date":
		return "DATE"
	case "time":
		return "TIME"
	case "timestamp", "timestamp_ns":
		return "TIMESTAMP"
	case "timestamptz", "timestamptz_ns":
		return "TIMESTAMP WITH TIME ZONE"
	case "string":
		return "VARCHAR"
	case "uuid":
		return "UUID"
	case "binary":
		return "BLOB"
	}
	if strings.HasPrefix(t, "decimal(") {
		return "DECIMAL" + strings.ReplaceAll(strings.TrimPrefix(t, "decimal"), " ", "")
	}
	if strings.HasPrefix(t, "fixed") {
		return "BLOB"
	}
	return "VARCHAR"
}

func quoteLit(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

// engineEntry is a sandboxed engine holding a set of product views, with
// a pool of sessions. Its allowed directories are the views' files' only.
type engineEntry struct {
	key   string
	tmp   string // the engine's spill directory, removed with it
	eng   *duckdb.Engine
	pool  chan *duckdb.Session
	types map[string][]Column // lower "schema.name" -> visible columns

	mu      sync.Mutex
	refs    int
	retired bool
}

func (e *engineEntry) acquire(ctx context.Context) (*duckdb.Session, error) {
	select {
	case sess := <-e.pool:
		return sess, nil
	default:
		return e.eng.Session(ctx)
	}
}

func (e *engineEntry) release(sess *duckdb.Session, broken bool) {
	if sess == nil {
	} else if !broken {
		select {
		case e.pool <- sess:
		default:
			sess.Close()
		}
	} else {
		sess.Close()
	}
	e.mu.Lock()
	e.refs--
	done := e.retired && e.refs == 0
	e.mu.Unlock()
	if done {
		e.close()
	}
}

func (e *engineEntry) retire() {
	e.mu.Lock()
	e.retired = true
	done := e.refs == 0
	e.mu.Unlock()
	if done {
		e.close()
	}
}

func (e *engineEntry) close() {
	for {
		select {
		case sess := <-e.pool:
			sess.Close()
		default:
			e.eng.Close()
			os.RemoveAll(e.tmp)
			return
		}
	}
}

// engineFor returns an engine with exactly these views, creating it if
// needed; the caller holds a reference until release.
func (s *Service) engineFor(ctx context.Context, views []*view) (*engineEntry, error) {
	sort.Slice(views, func(i, j int) bool { return views[i].rel.String() < views[j].rel.String() })
	h := sha256.New()
	for _, v := range views {
		fmt.Fprintf(h, "%s\x00%s\x00%v\x00", v.rel, v.sql, v.materialize)
	}
	key := hex.EncodeToString(h.Sum(nil))
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, rhizome.Errorf(rhizome.EUnavailable, "the query service is closed")
	}
	if e, ok := s.engines[key]; ok {
		e.mu.Lock()
		e.refs++
		e.mu.Unlock()
		s.touch(key)
		s.mu.Unlock()
		return e, nil
	}
	s.mu.Unlock()

	dirs := map[string]bool{}
	for _, v := range views {
		for _, f := range v.files {
			dirs[filepath.Dir(f)] = true
		}
	}
	var allowed []string
	for d := range dirs {
		allowed = append(allowed, d)
	}
	slices.Sort(allowed)
	tmp, err := os.MkdirTemp(s.cacheDir, "engine-")
	if err != nil {
		return nil, rhizome.Wrap(err, "serve: engine temp dir")
	}
	eng, err := duckdb.Open(ctx, duckdb.Options{AllowedDirs: allowed, TempDir: tmp, Threads: s.Threads, MemoryLimit: s.MemoryLimit, ParquetMetadataCache: true})
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	e := &engineEntry{key: key, tmp: tmp, eng: eng, pool: make(chan *duckdb.Session, 8), types: map[string][]Column{}, refs: 1}
	sess, err := eng.Session(ctx)
	if err != nil {
		eng.Close()
		os.RemoveAll(tmp)
		return nil, err
	}
	schemas := map[string]bool{}
	for _, v := range views {
		stmt := ""
		if !schemas[v.rel.Schema] {
			schemas[v.rel.Schema] = true
			stmt = "CREATE SCHEMA IF NOT EXISTS " + access.QuoteIdent(v.rel.Schema) + "; "
		}
		if v.materialize {
			stmt += "CREATE TABLE " + v.rel.String() + " AS " + v.sql
		} else {
			stmt += "CREATE VIEW " + v.rel.String() + " AS " + v.sql
		}
		if _, err := sess.Exec(ctx, stmt); err != nil {
			sess.Close()
			eng.Close()
			os.RemoveAll(tmp)
			return nil, rhizome.Wrap(fmt.Errorf("%s", scrubPaths(err.Error(), v.files)), "serve: exposing %s", v.productID)
		}
		rows, err := sess.Query(ctx, "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position", v.rel.Schema, v.rel.Name)
		if err != nil {
			sess.Close()
			eng.Close()
			return nil, rhizome.Wrap(err, "serve: reading the columns of %s", v.productID)
		}
		var cols []Column
		for rows.Next() {
			var c Column
			if err := rows.Scan(&c.Name, &c.Type); err != nil {
				rows.Close()
				sess.Close()
				eng.Close()
				return nil, rhizome.Wrap(err, "serve: reading the columns of %s", v.productID)
			}
			cols = append(cols, c)
		}
		rows.Close()
		e.types[v.rel.Schema+"."+v.rel.Name] = cols
	}
	e.pool <- sess
	s.mu.Lock()
	if old, ok := s.engines[key]; ok {
		// Another request built the same engine meanwhile: use it.
		old.mu.Lock()
		old.refs++
		old.mu.Unlock()
		s.mu.Unlock()
		e.retire()
		e.release(<-e.pool, true)
		return old, nil
	}
	s.engines[key] = e
	s.touch(key)
	var evict []*engineEntry
	for len(s.lru) > s.MaxEngines {
		k := s.lru[0]
		s.lru = s.lru[1:]
		if old, ok := s.engines[k]; ok {
			delete(s.engines, k)
			evict = append(evict, old)
		}
	}
	s.mu.Unlock()
	for _, old := range evict {
		old.retire()
	}
	return e, nil
}

// touch moves key to the end of the LRU list; s.mu is held.
func (s *Service) touch(key string) {
	if i := slices.Index(s.lru, key); i >= 0 {
		s.lru = append(s.lru[:i], s.lru[i+1:]...)
	}
	s.lru = append(s.lru, key)
}

// scrubPaths removes file paths from an engine message.
func scrubPaths(msg string, files []string) string {
	for _, f := range files {
		msg = strings.ReplaceAll(msg, f, "<product file>")
		msg = strings.ReplaceAll(msg, filepath.Dir(f), "<product files>")
	}
	return msg
}

var errNoSubject = rhizome.Errorf(rhizome.EUnauthorized, "no subject: authenticate first")

// Invalidate forgets the product index (call it after manifests are
// applied; otherwise it is read again after a couple of seconds).
func (s *Service) Invalidate() {
	if s.init() != nil {
		return
	}
	s.mu.Lock()
	s.index = nil
	s.mu.Unlock()
}
