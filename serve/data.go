package serve

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/access"
	"github.com/rhizome-mesh/rhizome/audit"
	"github.com/rhizome-mesh/rhizome/engine/duckdb"
	"github.com/rhizome-mesh/rhizome/table"
)

// Filter operators.
var filterOps = map[string]string{"eq": "=", "ne": "<>", "lt": "<", "le": "<=", "gt": ">", "ge": ">=", "in": "IN", "like": "LIKE", "is_null": "IS NULL", "not_null": "IS NOT NULL"}

// Filter is one typed condition of a read: Column Op Values. Values are
// bound as parameters, cast to the column's type; never spliced into SQL.
type Filter struct {
	Column string   `json:"column"`
	Op     string   `json:"op"`
	Values []string `json:"values,omitempty"`
}

// ParseFilter reads "column:op:value" (value omitted for is_null and
// not_null; comma-separated for in).
func ParseFilter(s string) (Filter, error) {
	col, rest, ok := strings.Cut(s, ":")
	if !ok || col == "" {
		return Filter{}, rhizome.Errorf(rhizome.EInvalid, "filter %q: want column:op:value", s).WithHint("e.g. region:eq:EU, amount:gt:100, id:in:1,2,3, deleted_at:is_null")
	}
	op, val, hasVal := strings.Cut(rest, ":")
	op = strings.ToLower(op)
	if _, ok := filterOps[op]; !ok {
		return Filter{}, rhizome.Errorf(rhizome.EInvalid, "filter %q: unknown operator %q", s, op).WithHint("use eq, ne, lt, le, gt, ge, in, like, is_null or not_null")
	}
	f := Filter{Column: col, Op: op}
	switch op {
	case "is_null", "not_null":
		if hasVal && val != "" {
			return Filter{}, rhizome.Errorf(rhizome.EInvalid, "filter %q: %s takes no value", s, op)
		}
	case "in":
		if !hasVal {
			return Filter{}, rhizome.Errorf(rhizome.EInvalid, "filter %q: in needs values, comma-separated", s)
		}
		f.Values = strings.Split(val, ",")
	default:
		if !hasVal {
			return Filter{}, rhizome.Errorf(rhizome.EInvalid, "filter %q: %s needs a value", s, op)
		}
		f.Values = []string{val}
	}
	return f, nil
}

// SortKey orders a read.
type SortKey struct {
	Column string `json:"column"`
	Desc   bool   `json:"desc,omitempty"`
}

// ParseSort reads "-col,col2" (a leading "-" sorts descending).
func ParseSort(s string) []SortKey {
	var out []SortKey
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		k := SortKey{Column: strings.TrimPrefix(strings.TrimPrefix(p, "-"), "+"), Desc: strings.HasPrefix(p, "-")}
		out = append(out, k)
	}
	return out
}

// ReadRequest is a REST read of one product.
type ReadRequest struct {
	Columns []string
	Filters []Filter
	Sort    []SortKey
	// Limit is the page size; 0 reads every row (up to MaxRows).
	Limit  int64
	Cursor string
	// AsOf is a snapshot id, a product version (1.2.0, v1) or an
	// RFC 3339 time; "" is the current snapshot of the current version.
	AsOf string
	// Via and Action for the decision and audit (defaults rest, data.read).
	Via, Action string
	// Query describes the request in the audit entry (e.g. the URL query).
	Query string
}

// Reader streams the rows of a read. Call Next until false, then Err,
// Cursor and Close.
type Reader struct {
	*Result
	limit    int64
	keys     int
	sortSpec string
	vals     []any
	ptrs     []any
	keyVals  []sql.NullString
	n        int64
	more     bool
	lastKey  []*string
	dup      int64 // rows emitted equal to lastKey
	prevSkip int64
	prevKey  []*string
	err      error
	done     bool
}

// Next advances to the next row; false at the end of the page.
func (r *Reader) Next() bool {
	if r.done {
		return false
	}
	if r.err != nil || (r.limit > 0 && r.n >= r.limit) {
		if r.limit > 0 && r.n >= r.limit && r.err == nil {
			r.more = r.Rows.Next()
			r.err = r.Result.Err(r.Rows.Err())
		}
		r.done = true
		return false
	}
	if !r.Rows.Next() {
		r.err = r.Result.Err(r.Rows.Err())
		r.done = true
		return false
	}
	if err := r.Rows.Scan(r.ptrs...); err != nil {
		r.err = r.Result.Err(err)
		r.done = true
		return false
	}
	r.n++
	if r.keys > 0 {
		key := make([]*string, r.keys)
		for i := range key {
			if kv := r.keyVals[i]; kv.Valid {
				s := kv.String
				key[i] = &s
			}
		}
		if r.lastKey != nil && sameKey(key, r.lastKey) {
			r.dup++
		} else {
			r.dup = 1
			if r.n == 1 && r.prevKey != nil && sameKey(key, r.prevKey) {
				r.dup = r.prevSkip + 1
			}
		}
		r.lastKey = key
	}
	return true
}

func sameKey(a, b []*string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if (a[i] == nil) != (b[i] == nil) || (a[i] != nil && *a[i] != *b[i]) {
			return false
		}
	}
	return true
}

// Values are the current row's values (PlainValue'd), valid until Next.
func (r *Reader) Values() []any {
	out := r.vals[:len(r.Columns)]
	for i, v := range out {
		out[i] = duckdb.PlainValue(v)
	}
	return out
}

// Err is the error that ended the rows, if any.
func (r *Reader) Err() error { return r.err }

// Rows read so far.
func (r *Reader) Count() int64 { return r.n }

// Close ends the read and audits the rows it returned.
func (r *Reader) Close() error {
	r.Result.read = r.n
	return r.Result.Close()
}

// Cursor is the token of the next page, "" on the last (valid after Next
// returned false).
func (r *Reader) Cursor() string {
	if !r.more || r.keys == 0 {
		return ""
	}
	return encodeCursor(cursor{Sort: r.sortSpec, Key: r.lastKey, Skip: r.dup})
}

type cursor struct {
	Sort string    `json:"s"`
	Key  []*string `json:"k"`
	Skip int64     `json:"n"`
}

func encodeCursor(c cursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (cursor, error) {
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.Skip < 0 {
		return c, rhizome.Errorf(rhizome.EInvalid, "cursor is not one this API returned").WithHint("pass the next_cursor of the previous page unchanged")
	}
	return c, nil
}

var snapshotRE = regexp.MustCompile(`^\d{6,}$`)
var versionRE = regexp.MustCompile(`^[vV]?\d+(\.\d+){0,2}([-+][0-9A-Za-z.-]+)?$`)

// resolveAsOf picks the table and snapshot of an as_of value.
func (s *Service) resolveAsOf(ctx context.Context, t target, idx *productIndex, asOf string) (target, table.AsOf, error) {
	asOf = strings.TrimSpace(asOf)
	switch {
	case asOf == "":
		return t, table.AsOf{}, nil
	case strings.HasPrefix(asOf, "snapshot:") || snapshotRE.MatchString(asOf):
		id, err := strconv.ParseInt(strings.TrimPrefix(asOf, "snapshot:"), 10, 64)
		if err != nil {
			return t, table.AsOf{}, rhizome.Errorf(rhizome.EInvalid, "as_of %q: not a snapshot id", asOf)
		}
		return t, table.AsOf{SnapshotID: id}, nil
	case versionRE.MatchString(strings.TrimPrefix(asOf, "version:")):
		v := strings.TrimPrefix(asOf, "version:")
		ref := table.RefFor(t.productID, v)
		r := duckdb.Relation{Schema: ref.Namespace, Name: ref.Name}
		vt, ok := idx.rels[r]
		if !ok || vt.productID != t.productID {
			return t, table.AsOf{}, rhizome.Errorf(rhizome.ENotFound, "product %s has no version %s", t.productID, v).WithHint("list its versions: rhizome get versions %s", t.productID)
		}
		vt.current = t.current
		vt.rel = t.rel
		if strings.Count(v, ".") == 2 {
			// A full version: its last snapshot.
			snaps, err := s.Tables.Snapshots(ctx, ref)
			if err != nil {
				return t, table.AsOf{}, err
			}
			for i := len(snaps) - 1; i >= 0; i-- {
				if strings.TrimPrefix(snaps[i].Properties["product-version"], "v") == strings.TrimPrefix(v, "v") {
					return vt, table.AsOf{SnapshotID: snaps[i].ID}, nil
				}
			}
			return t, table.AsOf{}, rhizome.Errorf(rhizome.ENotFound, "product %s has no data published as version %s", t.productID, v)
		}
		return vt, table.AsOf{}, nil
	default:
		tm, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(asOf, "time:"))
		if err != nil {
			return t, table.AsOf{}, rhizome.Errorf(rhizome.EInvalid, "as_of %q is not a snapshot id, a version or an RFC 3339 time", asOf).
				WithHint("e.g. as_of=4215733450386392271, as_of=1.2.0, as_of=v1 or as_of=2026-01-31T12:00:00Z")
		}
		return t, table.AsOf{Time: tm}, nil
	}
}

// Read reads one product through the REST rules: typed filters bound as
// parameters, visible columns only, keyset pagination.
func (s *Service) Read(ctx context.Context, subj access.Subject, productID string, req ReadRequest) (*Reader, error) {
	if err := s.init(); err != nil {
		return nil, err
	}
	if req.Via == "" {
		req.Via = access.ViaREST
	}
	if req.Action == "" {
		req.Action = ActionRead
	}
	entry := audit.Entry{Actor: subj.ID, Action: req.Action, Via: req.Via, ProductID: productID, Products: []string{productID}, Query: req.Query}
	if subj.ID == "" {
		return nil, errNoSubject
	}
	t, idx, err := s.productTarget(ctx, productID)
	if err != nil {
		return nil, err
	}
	t, at, err := s.resolveAsOf(ctx, t, idx, req.AsOf)
	if err != nil {
		s.deny(ctx, entry, err)
		return nil, err
	}
	v, err := s.prepare(ctx, subj, t, at, req.Via)
	if err != nil {
		s.deny(ctx, entry, err)
		return nil, err
	}
	if v.decision != nil {
		describeViews(&entry, []*view{v})
	}
	if err := v.decision.Err(productID); err != nil {
		s.deny(ctx, entry, err)
		return nil, err
	}
	e, err := s.engineFor(ctx, []*view{v})
	if err != nil {
		return nil, err
	}
	visible := e.types[v.rel.Schema+"."+v.rel.Name]
	e.release(nil, true) // run takes its own reference
	q, args, keys, sortSpec, cur, err := buildRead(v, visible, req)
	if err != nil {
		s.deny(ctx, entry, err)
		return nil, err
	}
	for _, c := range q.cols {
		entry.Columns = append(entry.Columns, c.Name)
	}
	entry.Decision, entry.Rows = "allow", -1
	if err := s.record(ctx, entry); err != nil {
		return nil, err
	}
	res, err := s.run(ctx, []*view{v}, func(ctx context.Context, sess *duckdb.Session, scrub func(string) string) (*Result, error) {
		rows, err := sess.Query(ctx, q.sql, args...)
		if err != nil {
			return nil, duckdb.ServeErr(ctx, err, scrub)
		}
		return resultOf(rows, keys)
	})
	if err != nil {
		return nil, err
	}
	res.done = s.completion(entry)
	r := &Reader{Result: res, limit: req.Limit, keys: keys, sortSpec: sortSpec}
	r.vals = make([]any, len(res.Columns))
	r.keyVals = make([]sql.NullString, keys)
	for i := range r.vals {
		r.ptrs = append(r.ptrs, &r.vals[i])
	}
	for i := range r.keyVals {
		r.ptrs = append(r.ptrs, &r.keyVals[i])
	}
	if cur != nil {
		r.prevKey, r.prevSkip = cur.Key, cur.Skip
	}
	return r, nil
}

type readQuery struct {
	sql  string
	cols []Column
}

// column finds a visible column by name; a column the product has but
// the subject may not see is EForbidden, an unknown one EInvalid.
func column(v *view, visible []Column, name, what string) (Column, error) {
	for _, c := range visible {
		if c.Name == name {
			return c, nil
		}
	}
	for _, c := range visible {
		if strings.EqualFold(c.Name, name) {
			return c, nil
		}
	}
	for _, c := range v.decision.Columns {
		if strings.EqualFold(c.Name, name) && c.Hidden {
			return Column{}, rhizome.Errorf(rhizome.EForbidden, "%s: column %s of %s is not visible to you", what, name, v.productID)
		}
	}
	names := make([]string, len(visible))
	for i, c := range visible {
		names[i] = c.Name
	}
	return Column{}, rhizome.Errorf(rhizome.EInvalid, "%s: %s has no column %q", what, v.productID, name).WithHint("columns: %s", strings.Join(names, ", "))
}

// buildRead renders the read's SQL; every value is a parameter.
func buildRead(v *view, visible []Column, req ReadRequest) (readQuery, []any, int, string, *cursor, error) {
	var q readQuery
	var args []any
	if len(req.Columns) == 0 {
		q.cols = visible
	} else {
		for _, name := range req.Columns {
			c, err := column(v, visible, strings.TrimSpace(name), "columns")
			if err != nil {
				return q, nil, 0, "", nil, err
			}
			q.cols = append(q.cols, c)
		}
	}
	var where []string
	for _, f := range req.Filters {
		c, err := column(v, visible, f.Column, "filter")
		if err != nil {
			return q, nil, 0, "", nil, err
		}
		cond, fargs, err := filterSQL(c, f)
		if err != nil {
			return q, nil, 0, "", nil, err
		}
		where = append(where, cond)
		args = append(args, fargs...)
	}
	type key struct {
		c    Column
		desc bool
	}
	var keys []key
	var spec []string
	for _, k := range req.Sort {
		c, err := column(v, visible, k.Column, "sort")
		if err != nil {
			return q, nil, 0, "", nil, err
		}
		keys = append(keys, key{c, k.Desc})
		if k.Desc {
			spec = append(spec, "-"+c.Name)
		} else {
			spec = append(spec, c.Name)
		}
	}
	sortSpec := strings.Join(spec, ",")
	paged := req.Limit > 0
	if paged {
		// A stable order: the sort keys, then every visible column.
		for _, c := range visible {
			if !slices.ContainsFunc(keys, func(k key) bool { return k.c.Name == c.Name }) {
				keys = append(keys, key{c, false})
			}
		}
	} else if req.Cursor != "" {
		return q, nil, 0, "", nil, rhizome.Errorf(rhizome.EInvalid, "a cursor needs a limit")
	}
	var cur *cursor
	var offset int64
	if req.Cursor != "" {
		c, err := decodeCursor(req.Cursor)
		if err != nil {
			return q, nil, 0, "", nil, err
		}
		if c.Sort != sortSpec || len(c.Key) != len(keys) {
			return q, nil, 0, "", nil, rhizome.Errorf(rhizome.EInvalid, "the cursor belongs to another sort order or schema").WithHint("repeat the sort of the request that returned it")
		}
		// Rows at or after the last key; OFFSET skips those equal to it
		// already returned.
		var ors []string
		for i := range keys {
			if c.Key[i] == nil {
				continue // nothing sorts after NULL (NULLS LAST)
			}
			var ands []string
			for j := 0; j < i; j++ {
				ands = append(ands, quoteIdent(keys[j].c.Name)+" IS NOT DISTINCT FROM CAST(? AS "+keys[j].c.Type+")")
				args = append(args, nullable(c.Key[j]))
			}
			op := ">"
			if keys[i].desc {
				op = "<"
			}
			ands = append(ands, "("+quoteIdent(keys[i].c.Name)+" "+op+" CAST(? AS "+keys[i].c.Type+") OR "+quoteIdent(keys[i].c.Name)+" IS NULL)")
			args = append(args, *c.Key[i])
			ors = append(ors, "("+strings.Join(ands, " AND ")+")")
		}
		var eq []string
		for j := range keys {
			eq = append(eq, quoteIdent(keys[j].c.Name)+" IS NOT DISTINCT FROM CAST(? AS "+keys[j].c.Type+")")
			args = append(args, nullable(c.Key[j]))
		}
		ors = append(ors, "("+strings.Join(eq, " AND ")+")")
		where = append(where, "("+strings.Join(ors, " OR ")+")")
		offset = c.Skip
		cur = &c
	}
	var sel []string
	for _, c := range q.cols {
		sel = append(sel, quoteIdent(c.Name))
	}
	nkeys := 0
	if paged {
		for _, k := range keys {
			sel = append(sel, "CAST("+quoteIdent(k.c.Name)+" AS VARCHAR)")
		}
		nkeys = len(keys)
	}
	b := "SELECT " + strings.Join(sel, ", ") + " FROM " + v.rel.String()
	if len(where) > 0 {
		b += " WHERE " + strings.Join(where, " AND ")
	}
	if len(keys) > 0 {
		var ord []string
		for _, k := range keys {
			dir := "ASC"
			if k.desc {
				dir = "DESC"
			}
			ord = append(ord, quoteIdent(k.c.Name)+" "+dir+" NULLS LAST")
		}
		b += " ORDER BY " + strings.Join(ord, ", ")
	}
	if paged {
		b += fmt.Sprintf(" LIMIT %d", req.Limit+1)
		if offset > 0 {
			b += fmt.Sprintf(" OFFSET %d", offset)
		}
	}
	q.sql = b
	return q, args, nkeys, sortSpec, cur, nil
}

func nullable(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

func quoteIdent(s string) string { return access.QuoteIdent(s) }

var (
	intTypes   = regexp.MustCompile(`^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT)$`)
	floatTypes = regexp.MustCompile(`^(FLOAT|DOUBLE|REAL)$`)
	decimalRE  = regexp.MustCompile(`^DECIMAL\(\d+,\d+\)$`)
	decimalVal = regexp.MustCompile(`^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$`)
	uuidVal    = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)
)

// filterSQL renders one filter over column c with its values as typed
// parameters; a value that is not of the column's type is EInvalid.
func filterSQL(c Column, f Filter) (string, []any, error) {
	col := quoteIdent(c.Name)
	op := filterOps[f.Op]
	switch f.Op {
	case "is_null", "not_null":
		return col + " " + op, nil, nil
	case "like":
		if c.Type != "VARCHAR" {
			return "", nil, rhizome.Errorf(rhizome.EInvalid, "filter on %s: like works on text columns; %s is %s", c.Name, c.Name, c.Type)
		}
		return col + " LIKE ?", []any{f.Values[0]}, nil
	}
	var args []any
	var ph []string
	for _, raw := range f.Values {
		v, err := coerce(c, raw)
		if err != nil {
			return "", nil, err
		}
		args = append(args, v)
		ph = append(ph, "CAST(? AS "+c.Type+")")
	}
	if f.Op == "in" {
		return col + " IN (" + strings.Join(ph, ", ") + ")", args, nil
	}
	return col + " " + op + " " + ph[0], args, nil
}

// coerce checks raw against the column's type and returns the value to
// bind (cast to the type in SQL).
func coerce(c Column, raw string) (any, error) {
	bad := func(want string) error {
		return rhizome.Errorf(rhizome.EInvalid, "filter on %s: %q is not %s (the column is %s)", c.Name, raw, want, c.Type)
	}
	t := strings.ToUpper(c.Type)
	switch {
	case t == "VARCHAR":
		return raw, nil
	case intTypes.MatchString(t):
		if _, err := strconv.ParseInt(raw, 10, 64); err != nil {
			if _, err := strconv.ParseUint(raw, 10, 64); err != nil {
				return nil, bad("an integer")
			}
		}
		return raw, nil
	case floatTypes.MatchString(t):
		if _, err := strconv.ParseFloat(raw, 64); err != nil {
			return nil, bad("a number")
		}
		return raw, nil
	case decimalRE.MatchString(strings.ReplaceAll(t, " ", "")):
		if !decimalVal.MatchString(raw) {
			return nil, bad("a decimal number")
		}
		return raw, nil
	case t == "BOOLEAN":
		if _, err := strconv.ParseBool(raw); err != nil {
			return nil, bad("true or false")
		}
		return raw, nil
	case t == "DATE":
		if _, err := time.Parse(time.DateOnly, raw); err != nil {
			return nil, bad("a date (YYYY-MM-DD)")
		}
		return raw, nil
	case strings.HasPrefix(t, "TIMESTAMP"):
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", time.DateOnly} {
			if _, err := time.Parse(layout, raw); err == nil {
				return raw, nil
			}
		}
		return nil, bad("a timestamp (RFC 3339)")
	case t == "TIME":
		if _, err := time.Parse("15:04:05.999999999", raw); err != nil {
			return nil, bad("a time (HH:MM:SS)")
		}
		return raw, nil
	case t == "UUID":
		if !uuidVal.MatchString(raw) {
			return nil, bad("a UUID")
		}
		return raw, nil
	}
	return nil, rhizome.Errorf(rhizome.EInvalid, "filter on %s: columns of type %s cannot be filtered", c.Name, c.Type)
}

// SchemaColumn is one column of a product as the caller sees it.
type SchemaColumn struct {
	Name           string `json:"name"`
	Type           string `json:"type"` // DuckDB type, after masking
	Required       bool   `json:"required,omitempty"`
	Classification string `json:"classification,omitempty"`
	Mask           string `json:"mask,omitempty"`
	Description    string `json:"description,omitempty"`
}

// Schema is a product's readable schema for the caller.
type Schema struct {
	ProductID   string         `json:"product_id"`
	Version     string         `json:"version"`
	Relation    string         `json:"relation"` // the SQL name, "domain"."product"
	Table       string         `json:"table"`    // the Iceberg table
	Contract    string         `json:"contract,omitempty"`
	Description string         `json:"description,omitempty"`
	Columns     []SchemaColumn `json:"columns"`
	RowFilter   bool           `json:"row_filter,omitempty"` // whether rows are filtered for the caller
}

// productTarget finds productID's table in the product index (the last
// of its names there); ENotFound when it is no data product.
func (s *Service) productTarget(ctx context.Context, productID string) (target, *productIndex, error) {
	idx, err := s.products(ctx)
	if err != nil {
		return target{}, nil, err
	}
	var t target
	found := false
	for _, x := range idx.all {
		if x.productID == productID {
			t, found = x, true
		}
	}
	if !found {
		return target{}, nil, rhizome.Errorf(rhizome.ENotFound, "no data product %s", productID)
	}
	return t, idx, nil
}

// Schema returns the columns of productID that subj sees, with types,
// classifications, masks and the contract's descriptions.
func (s *Service) Schema(ctx context.Context, subj access.Subject, productID, asOf string) (*Schema, error) {
	if err := s.init(); err != nil {
		return nil, err
	}
	entry := audit.Entry{Actor: subj.ID, Action: ActionRead, Via: access.ViaREST, ProductID: productID, Products: []string{productID}, Query: "schema", Details: map[string]any{"what": "schema"}}
	if subj.ID == "" {
		return nil, errNoSubject
	}
	t, idx, err := s.productTarget(ctx, productID)
	if err != nil {
		return nil, err
	}
	t, at, err := s.resolveAsOf(ctx, t, idx, asOf)
	if err != nil {
		return nil, err
	}
	v, err := s.prepare(ctx, subj, t, at, access.ViaREST)
	if err != nil {
		s.deny(ctx, entry, err)
		return nil, err
	}
	describeViews(&entry, []*view{v})
	if err := v.decision.Err(productID); err != nil {
		s.deny(ctx, entry, err)
		return nil, err
	}
	e, err := s.engineFor(ctx, []*view{v})
	if err != nil {
		return nil, err
	}
	visible := e.types[v.rel.Schema+"."+v.rel.Name]
	e.release(nil, true)
	entry.Decision = "allow"
	if err := s.record(ctx, entry); err != nil {
		return nil, err
	}
	out := &Schema{ProductID: productID, Version: t.version, Relation: t.rel.String(), Table: t.ref.String(), RowFilter: v.decision.RowFilter != ""}
	descs := s.contractDescriptions(ctx, productID, out)
	required := map[string]bool{}
	for _, c := range v.cols {
		required[c.Name] = c.Required
	}
	for _, c := range visible {
		sc := SchemaColumn{Name: c.Name, Type: c.Type, Required: required[c.Name], Description: descs[strings.ToLower(c.Name)]}
		for _, dc := range v.decision.Columns {
			if dc.Name == c.Name {
				sc.Classification, sc.Mask = dc.Classification, dc.Mask
			}
		}
		out.Columns = append(out.Columns, sc)
	}
	return out, nil
}

// contractDescriptions reads the product's contract's column
// descriptions (ODCS schema[].properties[]), by lower-case name.
func (s *Service) contractDescriptions(ctx context.Context, productID string, out *Schema) map[string]string {
	descs := map[string]string{}
	obj, err := s.Store.Get(ctx, rhizome.KindDataProduct, productID)
	if err != nil {
		return descs
	}
	var dp rhizome.DataProduct
	if json.Unmarshal(obj.Body, &dp) != nil {
		return descs
	}
	out.Description = dp.Description
	if dp.Contract == "" {
		return descs
	}
	out.Contract = dp.Contract
	cobj, err := s.Store.Get(ctx, rhizome.KindDataContract, dp.Contract)
	if err != nil {
		return descs
	}
	var c struct {
		Description any `json:"description"`
		Schema      []struct {
			Properties []struct {
				Name        string `json:"name"`
				Description string `json:"description"`
			} `json:"properties"`
		} `json:"schema"`
	}
	if json.Unmarshal(cobj.Body, &c) != nil {
		return descs
	}
	for _, o := range c.Schema {
		for _, p := range o.Properties {
			if p.Description != "" {
				descs[strings.ToLower(p.Name)] = p.Description
			}
		}
	}
	return descs
}
