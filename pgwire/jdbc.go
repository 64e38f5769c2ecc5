package pgwire

import (
	"regexp"
	"strings"
)

// pgjdbc's DatabaseMetaData (getSchemas, getTables, getColumns: what
// DBeaver's navigator and Metabase's sync call) queries pg_catalog with
// Postgres-only parts DuckDB cannot run ('pg_class'::regclass,
// current_schemas()). The wire layer recognises those three queries and
// sends serve equivalents over information_schema, with the column names
// pgjdbc reads, so serve still decides what is listed and audits it.
// Products are listed as tables (they are views in serve's sandbox).

var (
	jdbcSchemas = regexp.MustCompile(`(?s)^SELECT nspname AS TABLE_SCHEM, NULL AS TABLE_CATALOG FROM pg_catalog\.pg_namespace\s`)
	jdbcTables  = regexp.MustCompile(`(?s)^SELECT NULL AS TABLE_CAT, n\.nspname AS TABLE_SCHEM, c\.relname AS TABLE_NAME,`)
	jdbcColumns = regexp.MustCompile(`(?s)^SELECT \* FROM \(SELECT n\.nspname,c\.relname,a\.attname,a\.atttypid,`)

	jdbcNspLike  = regexp.MustCompile(`\bn\.nspname LIKE '((?:[^']|'')*)'`)
	jdbcSchLike  = regexp.MustCompile(`\bnspname LIKE '((?:[^']|'')*)'`)
	jdbcRelLike  = regexp.MustCompile(`\bc\.relname LIKE '((?:[^']|'')*)'`)
	jdbcAttLike  = regexp.MustCompile(`\battname LIKE '((?:[^']|'')*)'`)
	jdbcRelkinds = regexp.MustCompile(`c\.relkind (?:= '([a-zA-Z])'|IN \(([^)]*)\))`)
)

// like is a LIKE condition on col with pgjdbc's pattern (backslash
// escapes, as Postgres' default).
func like(col string, m []string) string {
	if m == nil {
		return ""
	}
	return " AND " + col + " LIKE " + quoteLiteral(strings.ReplaceAll(m[1], "''", "'")) + ` ESCAPE '\'`
}

// visible keeps the schemas of products (serve exposes nothing else but
// its own catalog schemas).
const visible = `table_schema NOT IN ('information_schema', 'pg_catalog')`

// rewriteJDBC returns the query serve runs for a pgjdbc metadata query.
func rewriteJDBC(st string) (string, bool) {
	switch {
	case jdbcSchemas.MatchString(st):
		return `SELECT DISTINCT table_schema AS "TABLE_SCHEM", NULL::VARCHAR AS "TABLE_CATALOG" FROM information_schema.tables WHERE ` +
			visible + like("table_schema", jdbcSchLike.FindStringSubmatch(st)) + ` ORDER BY 1`, true
	case jdbcTables.MatchString(st):
		// Products are tables: list them when tables (relkind r or p) or
		// every type are asked for.
		if kinds := jdbcRelkinds.FindAllStringSubmatch(st, -1); kinds != nil {
			tables := false
			for _, k := range kinds {
				if k[1] == "r" || k[1] == "p" || strings.Contains(k[2], "'r'") || strings.Contains(k[2], "'p'") {
					tables = true
				}
			}
			if !tables {
				return `SELECT NULL::VARCHAR AS "TABLE_CAT", '' AS "TABLE_SCHEM", '' AS "TABLE_NAME", '' AS "TABLE_TYPE", NULL::VARCHAR AS "REMARKS",
'' AS "TYPE_CAT", '' AS "TYPE_SCHEM", '' AS "TYPE_NAME", '' AS "SELF_REFERENCING_COL_NAME", '' AS "REF_GENERATION" WHERE false`, true
			}
		}
		return `SELECT NULL::VARCHAR AS "TABLE_CAT", table_schema AS "TABLE_SCHEM", table_name AS "TABLE_NAME", 'TABLE' AS "TABLE_TYPE",
NULL::VARCHAR AS "REMARKS", '' AS "TYPE_CAT", '' AS "TYPE_SCHEM", '' AS "TYPE_NAME", '' AS "SELF_REFERENCING_COL_NAME", '' AS "REF_GENERATION"
FROM information_schema.tables WHERE ` + visible + like("table_schema", jdbcNspLike.FindStringSubmatch(st)) +
			like("table_name", jdbcRelLike.FindStringSubmatch(st)) + ` ORDER BY 2, 3`, true
	case jdbcColumns.MatchString(st):
		// The OIDs are those the endpoint sends for each DuckDB type
		// (types.go); atttypmod carries a decimal's precision and scale
		// as Postgres does ((p << 16 | s) + 4).
		return `SELECT table_schema AS nspname, table_name AS relname, column_name AS attname,
CASE WHEN data_type LIKE '%[]' OR data_type LIKE 'STRUCT%' OR data_type LIKE 'MAP%' OR data_type = 'JSON' THEN 114
     WHEN data_type IN ('BOOLEAN') THEN 16
     WHEN data_type IN ('TINYINT', 'SMALLINT', 'UTINYINT') THEN 21
     WHEN data_type IN ('INTEGER', 'USMALLINT') THEN 23
     WHEN data_type IN ('BIGINT', 'UINTEGER') THEN 20
     WHEN data_type IN ('UBIGINT', 'HUGEINT', 'UHUGEINT') OR data_type LIKE 'DECIMAL%' THEN 1700
     WHEN data_type IN ('FLOAT', 'REAL') THEN 700
     WHEN data_type = 'DOUBLE' THEN 701
     WHEN data_type = 'DATE' THEN 1082
     WHEN data_type = 'TIME' THEN 1083
     WHEN data_type = 'TIMESTAMP WITH TIME ZONE' THEN 1184
     WHEN data_type LIKE 'TIMESTAMP%' THEN 1114
     WHEN data_type = 'INTERVAL' THEN 1186
     WHEN data_type = 'BLOB' THEN 17
     WHEN data_type = 'UUID' THEN 2950
     ELSE 25 END AS atttypid,
is_nullable = 'NO' AS attnotnull,
CASE WHEN data_type LIKE 'DECIMAL%' THEN ((numeric_precision::INTEGER << 16) | numeric_scale::INTEGER) + 4 ELSE -1 END AS atttypmod,
-1 AS attlen, -1 AS typtypmod, ordinal_position AS attnum, NULL::VARCHAR AS attidentity, NULL::VARCHAR AS attgenerated,
NULL::VARCHAR AS adsrc, NULL::VARCHAR AS description, 0 AS typbasetype, 'b' AS typtype
FROM information_schema.columns WHERE ` + visible + like("table_schema", jdbcNspLike.FindStringSubmatch(st)) +
			like("table_name", jdbcRelLike.FindStringSubmatch(st)) + like("column_name", jdbcAttLike.FindStringSubmatch(st)) +
			` ORDER BY 1, 2, ordinal_position`, true
	}
	return "", false
}
