package duckdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"

	duckdbdriver "github.com/duckdb/duckdb-go/v2"

	"github.com/rhizome-mesh/rhizome"
)

// The serving allowlist: what a subject's SQL may do on the governed read
// path (package serve). It is stricter than the transform allowlist in one
// way (relations must be product views named "schema"."name", or catalog
// relations BI tools read) and looser in another (EXPLAIN, DESCRIBE, SHOW
// and SUMMARIZE are allowed). Everything is parsed by DuckDB itself
// (json_serialize_sql), so comments, quoting and unicode are read exactly
// as the engine will read them.

// ServeStatement is a statement CheckServe accepted.
type ServeStatement struct {
	// SQL is what to run: the text as given (EXPLAIN included).
	SQL string
	// Explain is set for EXPLAIN statements; Show for DESCRIBE, SHOW,
	// SUMMARIZE (their output is small and not capped).
	Explain, Show bool
	// Relations are the product relations referenced, lower-cased
	// "schema"."name" pairs, deduplicated, in order of appearance.
	Relations []Relation
	// Catalog is set when the statement reads information_schema or
	// pg_catalog relations (or SHOW TABLES): every product the subject may
	// read must then be present, and no other.
	Catalog bool
}

// Relation is a schema-qualified relation named in a query.
type Relation struct {
	Schema, Name string
}

func (r Relation) String() string { return quoteIdent(r.Schema) + "." + quoteIdent(r.Name) }

// catalogRelations are the metadata relations a query may read, by schema.
// Each session holds only the subject's product views, so these list only
// visible objects; relations that show view definitions (and with them
// the files a view reads) are left out: information_schema.views,
// pg_views, duckdb_views() and the other duckdb_* table functions.
var catalogRelations = map[string]map[string]bool{
	"information_schema": {"schemata": true, "tables": true, "columns": true, "table_constraints": true,
		"key_column_usage": true, "referential_constraints": true, "character_sets": true},
	"pg_catalog": {"pg_namespace": true, "pg_class": true, "pg_attribute": true, "pg_type": true, "pg_database": true,
		"pg_index": true, "pg_constraint": true, "pg_description": true, "pg_attrdef": true, "pg_tables": true,
		"pg_proc": true, "pg_enum": true, "pg_collation": true, "pg_am": true, "pg_tablespace": true, "pg_indexes": true},
}

// serveDeniedPrefixes and serveDeniedFuncs are functions refused anywhere
// in a served query: they read files or URLs, run SQL given as text,
// reveal configuration, paths or view definitions, or change session state.
var serveDeniedPrefixes = []string{"duckdb_", "pg_get_", "read_", "parquet_", "iceberg_", "delta_", "sniff_",
	"json_execute", "pragma_", "icu_", "sqlite_", "postgres_", "mysql_", "httpfs", "http_", "load_"}

var serveDeniedFuncs = map[string]bool{
	"getenv": true, "current_setting": true, "query": true, "query_table": true, "glob": true,
	"which_secret": true, "sql_auto_complete": true, "checkpoint": true, "force_checkpoint": true,
	"setseed": true, "nextval": true, "currval": true, "set_config": true, "current_schemas": true,
	"current_database": false, "to_json": false, "test_all_types": true, "test_vector_types": true,
	"summary": true, "enable_logging": true, "disable_logging": true, "truncate_duckdb_logs": true,
	"enable_profiling": true, "disable_profiling": true, "repeat_row": true,
}

// showTables are the SHOW forms allowed without a relation.
var showTables = map[string]bool{"tables": true, "all tables": true, "all_tables": true, "__show_tables_expanded": true, "databases": true, "schemas": false}

// Refused is the error of a statement the serving allowlist refuses:
// EForbidden, naming what was refused.
func refused(off int, query, format string, args ...any) *rhizome.Error {
	msg := fmt.Sprintf(format, args...)
	e := rhizome.Errorf(rhizome.EForbidden, "%s", msg)
	if line, col := lineCol(query, off); line > 0 {
		e.Problems = []rhizome.Problem{{Pos: rhizome.Pos{Line: line, Col: col}, Message: msg}}
	}
	return e
}

// CheckServe vets query for the governed read path. A refused statement
// is EForbidden (with the reason); a syntax error is EInvalid with
// ServeErrorKind "syntax".
func (s *Session) CheckServe(ctx context.Context, query string) (*ServeStatement, error) {
	st := &ServeStatement{SQL: query}
	body := query
	if strings.EqualFold(firstWord(query), "EXPLAIN") {
		off := firstWordOffset(query)
		body = query[:off] + strings.Repeat(" ", len("EXPLAIN")) + query[off+len("EXPLAIN"):]
		st.Explain = true
		if strings.EqualFold(firstWord(body), "ANALYZE") || strings.EqualFold(firstWord(body), "EXPLAIN") {
			return nil, refused(-1, query, "EXPLAIN ANALYZE is not allowed")
		}
	}
	if !validUTF8(query) {
		return nil, rhizome.Errorf(rhizome.EInvalid, "the SQL is not valid UTF-8")
	}
	stmt, f, err := s.parseSelect(ctx, body)
	if err != nil {
		return nil, err
	}
	if f != nil {
		if strings.Contains(f.msg, "statements are not allowed") || strings.Contains(f.msg, "not a SELECT") {
			switch kw := strings.ToUpper(firstWord(body)); kw {
			case "SELECT", "WITH", "VALUES", "FROM", "TABLE", "DESCRIBE", "SHOW", "SUMMARIZE", "NON-SELECT", "":
				return nil, refused(f.off, query, "the SQL holds more than one statement, or one that is not a query: only SELECT, WITH, VALUES, EXPLAIN, DESCRIBE and SHOW are allowed")
			default:
				return nil, refused(f.off, query, "%s statements are not allowed: only SELECT, WITH, VALUES, EXPLAIN, DESCRIBE and SHOW are", kw)
			}
		}
		if strings.Contains(f.msg, "statements;") {
			return nil, refused(-1, query, "only one statement may be sent at a time")
		}
		e := &rhizome.Error{Code: rhizome.EInvalid, Message: "syntax error: " + f.msg, Err: ServeError{Kind: "syntax"}}
		if line, col := lineCol(query, f.off); line > 0 {
			e.Problems = []rhizome.Problem{{Pos: rhizome.Pos{Line: line, Col: col}, Message: f.msg, Hint: f.hint}}
		}
		return nil, e
	}
	c := &serveChecker{st: st, query: query, seen: map[Relation]bool{}}
	c.walk(stmt["node"], nil)
	if c.err != nil {
		return nil, c.err
	}
	return st, nil
}

func validUTF8(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

type serveChecker struct {
	st    *ServeStatement
	query string
	seen  map[Relation]bool
	err   *rhizome.Error
}

func (c *serveChecker) refuse(v map[string]any, format string, args ...any) {
	if c.err == nil {
		c.err = refused(location(v), c.query, format, args...)
	}
}

func (c *serveChecker) walk(v any, scope []string) {
	if c.err != nil {
		return
	}
	switch v := v.(type) {
	case []any:
		for _, x := range v {
			c.walk(x, scope)
		}
	case map[string]any:
		scope = walkCTEs(v, scope, c.walk)
		class, _ := v["class"].(string)
		typ, _ := v["type"].(string)
		switch {
		case class == "FUNCTION":
			name := strings.ToLower(str(v["function_name"]))
			if schema := strings.ToLower(str(v["schema"])); schema != "" && schema != "main" && schema != "pg_catalog" {
				c.refuse(v, "function %s.%s() is not allowed", schema, name)
				return
			}
			if deniedFuncs[name] || serveDeniedFuncs[name] || hasDeniedPrefix(name) {
				c.refuse(v, "function %s() is not allowed: it reads files, URLs, settings or definitions", name)
				return
			}
		case class == "" && typ == "BASE_TABLE":
			c.table(v, scope)
		case class == "" && typ == "TABLE_FUNCTION":
			fn, _ := v["function"].(map[string]any)
			if name := strings.ToLower(str(fn["function_name"])); !allowedTableFuncs[name] {
				c.refuse(v, "table function %s() is not allowed: read products by name, \"domain\".\"product\"", name)
				return
			}
		case class == "" && typ == "SHOW_REF":
			if v["query"] == nil {
				name := strings.ToLower(strings.Trim(str(v["table_name"]), `"`))
				if !showTables[name] {
					c.refuse(v, "SHOW %s is not allowed", name)
					return
				}
				c.st.Catalog = true
			}
			c.st.Show = true
		}
		for k, x := range v {
			if k == "cte_map" {
				continue
			}
			c.walk(x, scope)
		}
	}
}

// serveAllowedPgGet are the pg_get_* functions BI tools' catalog queries
// call that reveal nothing a catalog query does not: user names, column
// default expressions and constraint definitions of visible relations
// (views have neither). pg_get_viewdef stays refused: a view's
// definition names the product's files.
var serveAllowedPgGet = map[string]bool{"pg_get_userbyid": true, "pg_get_expr": true, "pg_get_constraintdef": true}

func hasDeniedPrefix(name string) bool {
	if serveAllowedPgGet[name] {
		return false
	}
	for _, p := range serveDeniedPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func (c *serveChecker) table(v map[string]any, scope []string) {
	name, schema, catalog := str(v["table_name"]), str(v["schema_name"]), str(v["catalog_name"])
	lname, lschema := strings.ToLower(name), strings.ToLower(schema)
	switch {
	case catalog != "":
		c.refuse(v, "relation %s.%s.%s: name products as \"domain\".\"product\", without a catalog", catalog, schema, name)
	case schema == "" && slices.Contains(scope, lname):
	case schema == "" && catalogRelations["pg_catalog"][lname]:
		c.st.Catalog = true
	case schema == "":
		c.refuse(v, "relation %q is not a product you may read: name products as \"domain\".\"product\"", name)
	case catalogRelations[lschema] != nil:
		if !catalogRelations[lschema][lname] {
			c.refuse(v, "catalog relation %s.%s is not allowed", schema, name)
			return
		}
		c.st.Catalog = true
	default:
		r := Relation{Schema: lschema, Name: lname}
		if !c.seen[r] {
			c.seen[r] = true
			c.st.Relations = append(c.st.Relations, r)
		}
	}
}

// ServeError classifies an error of the serving path for the Postgres
// wire: Kind is syntax, column, relation, function, data, canceled or
// other.
type ServeError struct {
	Kind string
}

func (e ServeError) Error() string { return "sql " + e.Kind + " error" }

// QueryServe runs a statement CheckServe accepted. Engine errors are
// EInvalid (binding, conversion), EUnavailable (canceled or timed out) or
// ETooLarge (out of memory), with a ServeError giving their kind; scrub
// removes from messages what the caller may not see (file paths).
func (s *Session) QueryServe(ctx context.Context, st *ServeStatement, wrapped string, scrub func(string) string) (*sql.Rows, error) {
	q := st.SQL
	if wrapped != "" {
		q = wrapped
	}
	rows, err := s.conn.QueryContext(ctx, q)
	if err != nil {
		return nil, ServeErr(ctx, err, scrub)
	}
	return rows, nil
}

// DescribeServe returns the columns a statement CheckServe accepted would
// return, without running it.
func (s *Session) DescribeServe(ctx context.Context, st *ServeStatement, scrub func(string) string) ([]Column, error) {
	if st.Explain {
		return []Column{{Name: "explain_key", Type: "VARCHAR"}, {Name: "explain_value", Type: "VARCHAR"}}, nil
	}
	cols, err := s.describe(ctx, st.SQL)
	if err != nil {
		return nil, ServeErr(ctx, err, scrub)
	}
	return cols, nil
}

// ServeErr maps an engine error of a served query.
func ServeErr(ctx context.Context, err error, scrub func(string) string) error {
	if scrub == nil {
		scrub = func(s string) string { return s }
	}
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &rhizome.Error{Code: rhizome.EUnavailable, Message: "query canceled: it ran past the statement timeout or the client went away",
			Hint: "narrow the query (filters, LIMIT) or raise the timeout", Err: ServeError{Kind: "canceled"}}
	}
	msg := scrub(err.Error())
	kind, code := "other", rhizome.EInvalid
	var de *duckdbdriver.Error
	if errors.As(err, &de) {
		switch de.Type {
		case duckdbdriver.ErrorTypeParser, duckdbdriver.ErrorTypeSyntax:
			kind = "syntax"
		case duckdbdriver.ErrorTypeBinder:
			kind = "column"
			if strings.Contains(msg, "Function") || strings.Contains(msg, "function") {
				kind = "function"
			}
		case duckdbdriver.ErrorTypeCatalog:
			kind = "relation"
			if strings.Contains(msg, "Function") || strings.Contains(msg, "function") || strings.Contains(msg, "Macro") {
				kind = "function"
			}
		case duckdbdriver.ErrorTypeConversion, duckdbdriver.ErrorTypeOutOfRange, duckdbdriver.ErrorTypeDivideByZero, duckdbdriver.ErrorTypeInvalidInput:
			kind = "data"
		case duckdbdriver.ErrorTypeInterrupt:
			return &rhizome.Error{Code: rhizome.EUnavailable, Message: "query canceled", Err: ServeError{Kind: "canceled"}}
		case duckdbdriver.ErrorTypeOutOfMemory:
			kind, code = "other", rhizome.ETooLarge
		case duckdbdriver.ErrorTypePermission, duckdbdriver.ErrorTypeIO, duckdbdriver.ErrorTypeHTTP:
			return &rhizome.Error{Code: rhizome.EForbidden, Message: "the query was refused by the sandbox", Err: ServeError{Kind: "forbidden"}}
		default:
			kind, code = "other", rhizome.EInternal
		}
	}
	return &rhizome.Error{Code: code, Message: msg, Err: ServeError{Kind: kind}}
}

// Decimal is an exact DECIMAL value: Value scaled by 10^-Scale.
type Decimal struct {
	Width, Scale uint8
	Value        *big.Int
}

// String spells the decimal exactly, without trailing zeros.
func (d Decimal) String() string {
	return duckdbdriver.Decimal{Width: d.Width, Scale: d.Scale, Value: d.Value}.String()
}

// MarshalJSON writes the decimal as an exact JSON number.
func (d Decimal) MarshalJSON() ([]byte, error) { return []byte(d.String()), nil }

// PlainValue converts a value scanned from a query into plain Go values:
// decimals become Decimal, UUIDs and intervals strings, maps
// map[string]any; lists and structs are converted element by element.
func PlainValue(v any) any {
	switch x := v.(type) {
	case duckdbdriver.Decimal:
		return Decimal{Width: x.Width, Scale: x.Scale, Value: x.Value}
	case duckdbdriver.UUID:
		return x.String()
	case *duckdbdriver.UUID:
		return x.String()
	case duckdbdriver.Interval:
		return fmt.Sprintf("%d months %d days %d microseconds", x.Months, x.Days, x.Micros)
	case duckdbdriver.Map:
		m := make(map[string]any, len(x))
		for k, val := range x {
			m[fmt.Sprint(PlainValue(k))] = PlainValue(val)
		}
		return m
	case duckdbdriver.Union:
		return PlainValue(x.Value)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = PlainValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = PlainValue(e)
		}
		return out
	}
	return v
}
