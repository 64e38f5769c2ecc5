package duckdb

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/rhizome-mesh/rhizome"
)

// Column is one column of a table or of a declared input schema. Required
// means the column may hold no NULLs.
type Column struct {
	Name     string
	Type     string // a DuckDB type: INTEGER, VARCHAR, DECIMAL(10,2), TIMESTAMP...
	Required bool
}

// Source describes an input's files. When Columns is empty the schema is
// inferred; otherwise the declared columns win: each must be present in
// the files and every value must cast to its type. Strict also refuses
// columns in the files that are not declared (otherwise they are dropped).
type Source struct {
	Format  string   // csv, json, ndjson or parquet
	Paths   []string // files or globs inside the engine's allowed dirs
	Columns []Column
	Options map[string]string // format options, e.g. delimiter, header
	Strict  bool
}

// formatOptions are the reader options a Source may set, by format, mapped
// to DuckDB's parameter names; bools are rendered as booleans.
var formatOptions = map[string]map[string]string{
	"csv": {"delimiter": "delim", "delim": "delim", "sep": "delim", "header": "header", "quote": "quote",
		"escape": "escape", "skip": "skip", "null": "nullstr", "nullstr": "nullstr", "dateformat": "dateformat",
		"timestampformat": "timestampformat", "decimal_separator": "decimal_separator",
		"compression": "compression", "comment": "comment", "encoding": "encoding"},
	"json":    {"dateformat": "dateformat", "timestampformat": "timestampformat", "compression": "compression"},
	"ndjson":  {"dateformat": "dateformat", "timestampformat": "timestampformat", "compression": "compression"},
	"parquet": {"binary_as_string": "binary_as_string", "union_by_name": "union_by_name"},
}

var boolOptions = map[string]bool{"header": true, "binary_as_string": true, "union_by_name": true}
var intOptions = map[string]bool{"skip": true}

// typeRE admits DuckDB type names, with precision and list brackets; nested
// types (STRUCT, MAP) are not declarable yet.
var typeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_ ]*(\(\s*\d+\s*(,\s*\d+\s*)?\))?(\[\])*$`)

// Register makes src available as name.
//
// With declared Columns the data is loaded into a table, so problems in the
// data surface here, as EInvalid errors naming the file, row (the CSV line
// when DuckDB knows it), column and value.
//
// Without declared columns (the schema is inferred) name is a view over
// the files: nothing is copied, and the models and the export read the
// files directly, in one pass. The files are sniffed here, so a missing,
// unreadable or malformed file is refused here; a malformed row beyond
// what the sniffer samples surfaces when the view is read (as the error
// of the model or export that reads it, naming the file and line). The
// files must stay in place for the Session's life.
func (s *Session) Register(ctx context.Context, name string, src Source) error {
	if !identRE.MatchString(name) {
		return rhizome.Errorf(rhizome.EInvalid, "input name %q is not a plain SQL name", name).
			WithHint("use letters, digits and underscores, starting with a letter")
	}
	var exists bool
	if err := s.conn.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM duckdb_tables() WHERE lower(table_name) = lower($1) AND NOT temporary)
	+ (SELECT count(*) FROM duckdb_views() WHERE lower(view_name) = lower($1) AND NOT temporary AND NOT internal) > 0`, name).Scan(&exists); err != nil {
		return rhizome.Wrap(err, "registering input %s", name)
	}
	if exists {
		return rhizome.Errorf(rhizome.EConflict, "input %s: a table of that name already exists", name)
	}
	scan, err := s.scan(src, false)
	if err != nil {
		return err
	}
	if len(src.Columns) == 0 {
		// CREATE VIEW binds the scan: the sniffer reads the files now.
		_, err := s.conn.ExecContext(ctx, "CREATE VIEW "+quoteIdent(name)+" AS SELECT * FROM "+scan)
		if err == nil {
			s.mu.Lock()
			if s.scans == nil {
				s.scans = map[string]Source{}
			}
			s.scans[strings.ToLower(name)] = src
			s.mu.Unlock()
		}
		return s.loadErr(ctx, err, name, src)
	}
	return s.registerDeclared(ctx, name, src)
}

// scan renders the DuckDB table function reading src.
func (s *Session) scan(src Source, allVarchar bool, extra ...string) (string, error) {
	known, ok := formatOptions[src.Format]
	if !ok {
		return "", rhizome.Errorf(rhizome.EInvalid, "format %q is not supported", src.Format).WithHint("use csv, json, ndjson or parquet")
	}
	if len(src.Paths) == 0 {
		return "", rhizome.Errorf(rhizome.EInvalid, "no files to read")
	}
	paths := make([]string, len(src.Paths))
	for i, p := range src.Paths {
		if !s.e.allowed(p) {
			return "", rhizome.Errorf(rhizome.EInvalid, "input file %s is outside the sandbox's directories", p)
		}
		paths[i] = quoteLit(p)
	}
	args := []string{"[" + strings.Join(paths, ", ") + "]"}
	keys := make([]string, 0, len(src.Options))
	for k := range src.Options {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		param, ok := known[strings.ToLower(k)]
		if !ok {
			return "", rhizome.Errorf(rhizome.EInvalid, "%s option %q is not known", src.Format, k).WithHint("known options: %s", strings.Join(sortedKeys(known), ", "))
		}
		v := src.Options[k]
		switch {
		case boolOptions[param]:
			switch strings.ToLower(v) {
			case "true", "yes", "1":
				v = "true"
			case "false", "no", "0":
				v = "false"
			default:
				return "", rhizome.Errorf(rhizome.EInvalid, "%s option %s=%q is not a boolean", src.Format, k, v)
			}
		case intOptions[param]:
			if !regexp.MustCompile(`^\d{1,9}$`).MatchString(v) {
				return "", rhizome.Errorf(rhizome.EInvalid, "%s option %s=%q is not a number", src.Format, k, v)
			}
		default:
			v = quoteLit(v)
		}
		args = append(args, param+" = "+v)
	}
	fn := map[string]string{"csv": "read_csv", "json": "read_json", "ndjson": "read_json", "parquet": "read_parquet"}[src.Format]
	switch src.Format {
	case "ndjson":
		args = append(args, "format = 'newline_delimited'")
	case "json":
		args = append(args, "format = 'auto'")
	case "csv":
		if allVarchar {
			args = append(args, "all_varchar = true")
		}
	}
	args = append(args, extra...)
	return fn + "(" + strings.Join(args, ", ") + ")", nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// registerDeclared loads src with its declared schema.
func (s *Session) registerDeclared(ctx context.Context, name string, src Source) error {
	var probs []rhizome.Problem
	for i, c := range src.Columns {
		path := fmt.Sprintf("columns[%d]", i)
		if !typeRE.MatchString(c.Type) {
			probs = append(probs, rhizome.Problem{Path: path, Message: fmt.Sprintf("column %s: type %q is not a DuckDB type name", c.Name, c.Type)})
			continue
		}
		if _, err := s.conn.ExecContext(ctx, "SELECT CAST(NULL AS "+c.Type+")"); err != nil {
			msg, _, _ := splitDuckError(err.Error(), "", 0)
			probs = append(probs, rhizome.Problem{Path: path, Message: fmt.Sprintf("column %s: type %q: %s", c.Name, c.Type, msg)})
		}
	}
	if len(probs) > 0 {
		return rhizome.Invalid(fmt.Sprintf("input %s: invalid declared schema", name), probs...)
	}

	// Compare names first: a positional read would shift columns silently.
	var extra []string
	if src.Format == "csv" {
		// Take the names from the header even if a row is ragged (the
		// sniffer would otherwise follow the widest row); padding columns
		// are dropped below and the ragged row is rejected when loading.
		extra = append(extra, "null_padding = true")
		if !hasOption(src, "header") {
			extra = append(extra, "header = true")
		}
	}
	scan, err := s.scan(src, true, extra...)
	if err != nil {
		return err
	}
	fileCols, err := s.describe(ctx, "SELECT * FROM "+scan)
	if err != nil {
		return s.loadErr(ctx, err, name, src)
	}
	if src.Format == "csv" {
		for len(fileCols) > 0 && fileCols[len(fileCols)-1].Name == fmt.Sprintf("column%d", len(fileCols)-1) {
			fileCols = fileCols[:len(fileCols)-1]
		}
	}
	inFile := map[string]string{} // lower name -> name as in the file
	for _, c := range fileCols {
		inFile[strings.ToLower(c.Name)] = c.Name
	}
	declared := map[string]bool{}
	for _, c := range src.Columns {
		declared[strings.ToLower(c.Name)] = true
		if _, ok := inFile[strings.ToLower(c.Name)]; !ok {
			probs = append(probs, rhizome.Problem{Pos: s.filePos(src), Message: fmt.Sprintf("column %s is declared but missing from the data", c.Name),
				Hint: fmt.Sprintf("the data has columns %s", colNames(fileCols))})
		}
	}
	if src.Strict {
		for _, c := range fileCols {
			if !declared[strings.ToLower(c.Name)] {
				probs = append(probs, rhizome.Problem{Pos: s.filePos(src), Message: fmt.Sprintf("column %s is in the data but not declared", c.Name),
					Hint: "declare it in the input's schema, or drop it at the source"})
			}
		}
	}
	if len(probs) > 0 {
		return rhizome.Invalid(fmt.Sprintf("input %s does not match its declared schema", name), probs...)
	}

	if src.Format == "csv" {
		if err := s.loadCSV(ctx, name, src, fileCols); err != nil {
			return err
		}
	} else if err := s.loadCast(ctx, name, src, inFile); err != nil {
		return err
	}
	return s.checkRequired(ctx, name, src)
}

// loadCSV reads with the header's columns and the declared types, and
// DuckDB's rejects tables, which record the file, line, column and text of
// every row that does not fit.
func (s *Session) loadCSV(ctx context.Context, name string, src Source, fileCols []Column) error {
	n := s.seq.Add(1)
	rejects, rscan := fmt.Sprintf("rhizome_rejects_%d", n), fmt.Sprintf("rhizome_rejects_scan_%d", n)
	typeOf := map[string]string{}
	for _, c := range src.Columns {
		typeOf[strings.ToLower(c.Name)] = c.Type
	}
	var cols, sel []string
	for _, c := range fileCols {
		t, ok := typeOf[strings.ToLower(c.Name)]
		if !ok {
			t = "VARCHAR"
		}
		cols = append(cols, quoteLit(c.Name)+": "+quoteLit(t))
	}
	for _, c := range src.Columns {
		for _, f := range fileCols {
			if strings.EqualFold(f.Name, c.Name) {
				sel = append(sel, quoteIdent(f.Name)+" AS "+quoteIdent(c.Name))
			}
		}
	}
	extra := []string{"columns = {" + strings.Join(cols, ", ") + "}",
		"store_rejects = true", "rejects_limit = 100", "rejects_table = " + quoteLit(rejects), "rejects_scan = " + quoteLit(rscan)}
	if !hasOption(src, "header") {
		extra = append(extra, "header = true")
	}
	scan, err := s.scan(src, false, extra...)
	if err != nil {
		return err
	}
	defer s.conn.ExecContext(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS temp."+rejects+"; DROP TABLE IF EXISTS temp."+rscan)
	if _, err := s.conn.ExecContext(ctx, "CREATE TABLE "+quoteIdent(name)+" AS SELECT "+strings.Join(sel, ", ")+" FROM "+scan); err != nil {
		return s.loadErr(ctx, err, name, src)
	}
	rows, err := s.conn.QueryContext(ctx, fmt.Sprintf(`SELECT s.file_path, e.line, coalesce(e.column_name, ''), e.error_type::VARCHAR, coalesce(e.csv_line, ''), e.error_message
FROM temp.%s e JOIN temp.%s s USING (scan_id, file_id) ORDER BY s.file_path, e.line LIMIT 20`, rejects, rscan))
	if err != nil {
		return rhizome.Wrap(err, "input %s: reading rejected rows", name)
	}
	defer rows.Close()
	var probs []rhizome.Problem
	for rows.Next() {
		var file, col, typ, text, msg string
		var line int
		if err := rows.Scan(&file, &line, &col, &typ, &text, &msg); err != nil {
			return rhizome.Wrap(err, "input %s: reading rejected rows", name)
		}
		p := rhizome.Problem{Pos: rhizome.Pos{File: file, Line: line}, Message: fmt.Sprintf("%s (row: %s)", msg, clip(text, 200))}
		if col != "" {
			p.Path = "column " + col
		}
		if typ == "CAST" {
			p.Hint = "fix the value, or declare the column with a type that holds it"
		}
		probs = append(probs, p)
	}
	if err := rows.Err(); err != nil {
		return rhizome.Wrap(err, "input %s: reading rejected rows", name)
	}
	if len(probs) > 0 {
		s.conn.ExecContext(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+quoteIdent(name))
		return rhizome.Invalid(fmt.Sprintf("input %s: rows do not match the declared schema", name), probs...)
	}
	return nil
}

// loadCast stages the data as read, finds the first value per column that
// does not cast, and only then casts.
func (s *Session) loadCast(ctx context.Context, name string, src Source, inFile map[string]string) error {
	scan, err := s.scan(src, false)
	if err != nil {
		return err
	}
	n := s.seq.Add(1)
	stage := fmt.Sprintf("temp.rhizome_stage_%d", n)
	if _, err := s.conn.ExecContext(ctx, fmt.Sprintf("CREATE TEMP TABLE rhizome_stage_%d AS SELECT * FROM %s", n, scan)); err != nil {
		return s.loadErr(ctx, err, name, src)
	}
	defer s.conn.ExecContext(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+stage)
	var probs []rhizome.Problem
	var sel []string
	for _, c := range src.Columns {
		col := quoteIdent(inFile[strings.ToLower(c.Name)])
		sel = append(sel, "CAST("+col+" AS "+c.Type+") AS "+quoteIdent(c.Name))
		var row int64
		var val string
		err := s.conn.QueryRowContext(ctx, fmt.Sprintf("SELECT rowid + 1, CAST(%s AS VARCHAR) FROM %s WHERE %s IS NOT NULL AND TRY_CAST(%s AS %s) IS NULL ORDER BY rowid LIMIT 1",
			col, stage, col, col, c.Type)).Scan(&row, &val)
		if err == nil {
			probs = append(probs, rhizome.Problem{Pos: s.filePos(src), Path: "column " + c.Name,
				Message: fmt.Sprintf("row %d: value %s does not cast to %s", row, showValue(val), c.Type),
				Hint:    "fix the value, or declare the column with a type that holds it"})
		} else if !isNoRows(err) {
			return rhizome.Wrap(err, "input %s: checking column %s", name, c.Name)
		}
	}
	if len(probs) > 0 {
		return rhizome.Invalid(fmt.Sprintf("input %s: values do not match the declared schema", name), probs...)
	}
	if _, err := s.conn.ExecContext(ctx, "CREATE TABLE "+quoteIdent(name)+" AS SELECT "+strings.Join(sel, ", ")+" FROM "+stage+" ORDER BY rowid"); err != nil {
		return s.loadErr(ctx, err, name, src)
	}
	return nil
}

// checkRequired refuses NULLs in required columns, naming the first row.
func (s *Session) checkRequired(ctx context.Context, name string, src Source) error {
	var probs []rhizome.Problem
	for _, c := range src.Columns {
		if !c.Required {
			continue
		}
		var row int64
		err := s.conn.QueryRowContext(ctx, fmt.Sprintf("SELECT rowid + 1 FROM %s WHERE %s IS NULL ORDER BY rowid LIMIT 1", quoteIdent(name), quoteIdent(c.Name))).Scan(&row)
		if err == nil {
			probs = append(probs, rhizome.Problem{Pos: s.filePos(src), Path: "column " + c.Name,
				Message: fmt.Sprintf("row %d: the value is empty but the column is required", row),
				Hint:    "fill the value, or declare the column as not required"})
		} else if !isNoRows(err) {
			return rhizome.Wrap(err, "input %s: checking column %s", name, c.Name)
		}
	}
	if len(probs) > 0 {
		s.conn.ExecContext(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+quoteIdent(name))
		return rhizome.Invalid(fmt.Sprintf("input %s: required values missing", name), probs...)
	}
	return nil
}

func (s *Session) describe(ctx context.Context, query string) ([]Column, error) {
	rows, err := s.conn.QueryContext(ctx, "DESCRIBE "+query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []Column
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		out = append(out, Column{Name: fmt.Sprint(vals[0]), Type: fmt.Sprint(vals[1])})
	}
	return out, rows.Err()
}

// loadErr turns a DuckDB error while reading src into EInvalid: reading
// errors are about the data. DuckDB's CSV errors name the file and line.
func (s *Session) loadErr(ctx context.Context, err error, name string, src Source) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return rhizome.Wrap(ctx.Err(), "loading input %s", name)
	}
	msg, _, _ := splitDuckError(err.Error(), "", 0)
	return &rhizome.Error{Code: rhizome.EInvalid, Message: fmt.Sprintf("input %s: reading %s data failed", name, src.Format),
		Problems: []rhizome.Problem{{Pos: s.filePos(src), Message: msg}}, Err: err}
}

// filePos names the input file when there is exactly one.
func (s *Session) filePos(src Source) rhizome.Pos {
	if len(src.Paths) == 1 && !strings.ContainsAny(src.Paths[0], "*?[") {
		return rhizome.Pos{File: src.Paths[0]}
	}
	return rhizome.Pos{}
}

func colNames(cols []Column) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func hasOption(src Source, key string) bool {
	for k := range src.Options {
		if formatOptions[src.Format][strings.ToLower(k)] == key {
			return true
		}
	}
	return false
}

// showValue quotes a value for a message, unless it is already a JSON string.
func showValue(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return clip(v, 200)
	}
	return strconv.Quote(clip(v, 200))
}
