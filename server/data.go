package server

import (
	"bufio"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"mime"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/go-chi/chi/v5"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/access"
	"github.com/rhizome-mesh/rhizome/audit"
	"github.com/rhizome-mesh/rhizome/engine/duckdb"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/serve"
	"github.com/rhizome-mesh/rhizome/table"
)

// The data API (docs/data-api.md): governed reads of one product, its
// schema as the caller sees it, and SQL; all through serve.Service, which
// decides, masks, filters rows and audits.

func (s *Server) dataRoutes(r chi.Router) {
	r.Get("/products/{id}/data", s.handleData)
	r.Get("/products/{id}/schema", s.handleDataSchema)
	r.With(selfAudited).Post("/query", s.handleQuery)
}

// Media types of the formats.
var formatTypes = map[string]string{
	"json":    "application/json",
	"ndjson":  "application/x-ndjson",
	"csv":     "text/csv; charset=utf-8",
	"parquet": "application/vnd.apache.parquet",
	"arrow":   "application/vnd.apache.arrow.stream",
}

// NextCursorHeader carries the next page's cursor of a paginated read in
// the formats other than JSON (an HTTP trailer: it is known at the end).
const NextCursorHeader = "Rhizome-Next-Cursor"

// DefaultPageSize is the limit of JSON and NDJSON reads that give none.
const DefaultPageSize = 1000

func (s *Server) needServe() error {
	if s.serve == nil {
		return rhizome.Errorf(rhizome.EUnavailable, "the data API is not running in this server").WithHint("start it with `rhizome up`")
	}
	return nil
}

// formatOf picks the output format: ?format=, else the Accept header,
// else JSON.
func formatOf(r *http.Request) (string, error) {
	if f := strings.ToLower(r.URL.Query().Get("format")); f != "" {
		if _, ok := formatTypes[f]; !ok {
			return "", rhizome.Errorf(rhizome.EInvalid, "format %q is not supported", f).WithHint("use json, ndjson, csv, parquet or arrow")
		}
		return f, nil
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "application/json", "*/*":
			return "json", nil
		case "application/x-ndjson", "application/ndjson", "application/jsonl":
			return "ndjson", nil
		case "text/csv":
			return "csv", nil
		case "application/vnd.apache.parquet", "application/x-parquet", "application/parquet":
			return "parquet", nil
		case "application/vnd.apache.arrow.stream", "application/vnd.apache.arrow.file", "application/x-arrow":
			return "arrow", nil
		}
	}
	return "json", nil
}

func (s *Server) handleData(w http.ResponseWriter, r *http.Request) {
	if err := s.needServe(); err != nil {
		s.writeError(w, r, err)
		return
	}
	id := chi.URLParam(r, "id")
	q := r.URL.Query()
	format, err := formatOf(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	req := serve.ReadRequest{Sort: serve.ParseSort(q.Get("sort")), Cursor: q.Get("cursor"), AsOf: q.Get("as_of"), Query: r.URL.RawQuery}
	for _, c := range strings.Split(q.Get("columns"), ",") {
		if c = strings.TrimSpace(c); c != "" {
			req.Columns = append(req.Columns, c)
		}
	}
	for _, f := range q["filter"] {
		flt, err := serve.ParseFilter(f)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		req.Filters = append(req.Filters, flt)
	}
	switch l := q.Get("limit"); {
	case l != "":
		n, err := strconv.ParseInt(l, 10, 64)
		if err != nil || n < 0 {
			s.writeError(w, r, rhizome.Errorf(rhizome.EInvalid, "limit %q is not a count of rows", l).WithHint("limit=0 reads every row (csv, parquet, arrow)"))
			return
		}
		req.Limit = n
	case format == "json" || format == "ndjson":
		req.Limit = DefaultPageSize
	}
	if format == "csv" || format == "parquet" || format == "arrow" {
		req.Action = serve.ActionExport
	}
	rd, err := s.serve.Read(r.Context(), access.SubjectOf(principalOf(r.Context())), id, req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer rd.Close()
	s.writeRows(w, r, format, &readerSource{rd: rd})
}

func (s *Server) handleDataSchema(w http.ResponseWriter, r *http.Request) {
	if err := s.needServe(); err != nil {
		s.writeError(w, r, err)
		return
	}
	sc, err := s.serve.Schema(r.Context(), access.SubjectOf(principalOf(r.Context())), chi.URLParam(r, "id"), r.URL.Query().Get("as_of"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sc)
}

// QueryRequest is the body of POST /query.
type QueryRequest struct {
	SQL    string `json:"sql"`
	Format string `json:"format,omitempty"`
}

func (s *Server) handleQuery(w http.ResponseWriter, r *http.Request) {
	if err := s.needServe(); err != nil {
		s.writeError(w, r, err)
		return
	}
	var req QueryRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if strings.TrimSpace(req.SQL) == "" {
		s.writeError(w, r, rhizome.Errorf(rhizome.EInvalid, "sql is empty").WithHint(`send {"sql": "SELECT ..."}`))
		return
	}
	if req.Format != "" {
		qv := r.URL.Query()
		qv.Set("format", req.Format)
		r.URL.RawQuery = qv.Encode()
	}
	format, err := formatOf(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.serve.QueryVia(r.Context(), access.SubjectOf(principalOf(r.Context())), req.SQL, access.ViaREST)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer res.Close()
	s.writeRows(w, r, format, newResultSource(res))
}

// rowSource is what the writers stream: a reader or a SQL result.
type rowSource interface {
	columns() []serve.Column
	next() bool
	values() []any
	err() error
	cursor() string
}

type readerSource struct{ rd *serve.Reader }

func (s *readerSource) columns() []serve.Column { return s.rd.Columns }
func (s *readerSource) next() bool              { return s.rd.Next() }
func (s *readerSource) values() []any           { return s.rd.Values() }
func (s *readerSource) err() error              { return s.rd.Err() }
func (s *readerSource) cursor() string          { return s.rd.Cursor() }

type resultSource struct {
	res  *serve.Result
	vals []any
	ptrs []any
	e    error
}

func newResultSource(res *serve.Result) *resultSource {
	s := &resultSource{res: res, vals: make([]any, len(res.Columns))}
	for i := range s.vals {
		s.ptrs = append(s.ptrs, &s.vals[i])
	}
	return s
}

func (s *resultSource) columns() []serve.Column { return s.res.Columns }
func (s *resultSource) next() bool {
	rows := s.res.Stream() // counts rows for the audit log, fails past MaxRows
	if s.e != nil || !rows.Next() {
		if s.e == nil {
			s.e = rows.Err()
		}
		return false
	}
	if err := rows.Scan(s.ptrs...); err != nil {
		s.e = err
		return false
	}
	return true
}
func (s *resultSource) values() []any {
	for i, v := range s.vals {
		s.vals[i] = duckdb.PlainValue(v)
	}
	return s.vals
}
func (s *resultSource) err() error     { return s.e }
func (s *resultSource) cursor() string { return "" }

// writeRows streams src in format. The first row is read before the
// status is sent, so that an error the query meets at once is a proper
// error response; an error later ends the stream (JSON and NDJSON say so
// in the body, every format in the Rhizome-Error trailer).
func (s *Server) writeRows(w http.ResponseWriter, r *http.Request, format string, src rowSource) {
	have := src.next()
	if !have && src.err() != nil {
		s.writeError(w, r, src.err())
		return
	}
	w.Header().Set("Content-Type", formatTypes[format])
	w.Header().Set("Trailer", NextCursorHeader+", Rhizome-Error")
	w.Header().Set("Cache-Control", "no-store")
	if format == "parquet" || format == "arrow" || format == "csv" {
		ext := map[string]string{"parquet": "parquet", "arrow": "arrows", "csv": "csv"}[format]
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.%s"`, safeName(chi.URLParam(r, "id")), ext))
	}
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	var err error
	switch format {
	case "json":
		err = writeJSONRows(bw, src, have)
	case "ndjson":
		err = writeNDJSON(bw, src, have)
	case "csv":
		err = writeCSV(bw, src, have)
	case "arrow", "parquet":
		err = writeArrow(bw, src, have, format == "parquet")
	}
	if err == nil {
		err = src.err()
	}
	if err != nil {
		s.logger.WarnContext(r.Context(), "data stream ended early", "path", r.URL.Path, "err", err)
		if format == "ndjson" {
			b, _ := json.Marshal(map[string]any{"error": errorText(err)})
			bw.Write(append(b, '\n'))
		}
		w.Header().Set("Rhizome-Error", errorText(err))
	}
	bw.Flush()
	if c := src.cursor(); c != "" {
		w.Header().Set(NextCursorHeader, c)
	}
}

func errorText(err error) string {
	var e *rhizome.Error
	if ok := asError(err, &e); ok && e.Code != rhizome.EInternal {
		return strings.ReplaceAll(e.Message, "\n", " ")
	}
	return "internal error; see the server log"
}

func asError(err error, target **rhizome.Error) bool {
	for err != nil {
		if e, ok := err.(*rhizome.Error); ok {
			*target = e
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]`)

func safeName(s string) string {
	if s == "" {
		return "query"
	}
	return unsafeName.ReplaceAllString(s, "_")
}

// dateColumns marks the DATE columns, whose values (time.Time at
// midnight UTC) JSON and CSV write as 2006-01-02, not as timestamps.
func dateColumns(cols []serve.Column) []bool {
	var out []bool
	for i, c := range cols {
		if c.Type == "DATE" {
			if out == nil {
				out = make([]bool, len(cols))
			}
			out[i] = true
		}
	}
	return out
}

// plainDates replaces the DATE columns' times in vals with their dates.
func plainDates(vals []any, dates []bool) []any {
	for i, d := range dates {
		if t, ok := vals[i].(time.Time); d && ok {
			vals[i] = t.Format(time.DateOnly)
		}
	}
	return vals
}

// jsonValue encodes one value.
func jsonValue(v any) []byte {
	switch x := v.(type) {
	case nil:
		return []byte("null")
	case time.Time:
		return []byte(`"` + x.Format(time.RFC3339Nano) + `"`)
	case []byte:
		return []byte(`"` + base64.StdEncoding.EncodeToString(x) + `"`)
	case float64:
		if x != x || x > 1.7e308 || x < -1.7e308 {
			return []byte(`"` + strconv.FormatFloat(x, 'g', -1, 64) + `"`)
		}
	case float32:
		f := float64(x)
		if f != f || f > 3.4e38 || f < -3.4e38 {
			return []byte(`"` + strconv.FormatFloat(f, 'g', -1, 32) + `"`)
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(fmt.Sprint(v))
	}
	return b
}

// writeObject writes one row as a JSON object in column order.
func writeObject(w *bufio.Writer, names [][]byte, vals []any) {
	w.WriteByte('{')
	for i, v := range vals {
		if i > 0 {
			w.WriteByte(',')
		}
		w.Write(names[i])
		w.WriteByte(':')
		w.Write(jsonValue(v))
	}
	w.WriteByte('}')
}

func namesOf(cols []serve.Column) [][]byte {
	out := make([][]byte, len(cols))
	for i, c := range cols {
		out[i], _ = json.Marshal(c.Name)
	}
	return out
}

// writeJSONRows writes {"columns": [...], "rows": [{...}, ...],
// "count": n, "next_cursor": "..."} row by row.
func writeJSONRows(w *bufio.Writer, src rowSource, have bool) error {
	cols, _ := json.Marshal(src.columns())
	w.WriteString(`{"columns":`)
	w.Write(cols)
	w.WriteString(`,"rows":[`)
	names := namesOf(src.columns())
	dates := dateColumns(src.columns())
	n := 0
	for ok := have; ok; ok = src.next() {
		if n > 0 {
			w.WriteByte(',')
		}
		w.WriteByte('\n')
		writeObject(w, names, plainDates(src.values(), dates))
		n++
	}
	w.WriteString("\n],\"count\":" + strconv.Itoa(n))
	if err := src.err(); err != nil {
		b, _ := json.Marshal(errorText(err))
		w.WriteString(`,"error":`)
		w.Write(b)
	}
	if c := src.cursor(); c != "" {
		w.WriteString(`,"next_cursor":"` + c + `"`)
	}
	w.WriteString("}\n")
	return nil
}

func writeNDJSON(w *bufio.Writer, src rowSource, have bool) error {
	names := namesOf(src.columns())
	dates := dateColumns(src.columns())
	for ok := have; ok; ok = src.next() {
		writeObject(w, names, plainDates(src.values(), dates))
		if err := w.WriteByte('\n'); err != nil {
			return err
		}
	}
	return nil
}

func csvValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	case []any, map[string]any:
		b, _ := json.Marshal(x)
		return string(b)
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v)
}

func writeCSV(w *bufio.Writer, src rowSource, have bool) error {
	cw := csv.NewWriter(w)
	cols := src.columns()
	rec := make([]string, len(cols))
	for i, c := range cols {
		rec[i] = c.Name
	}
	if err := cw.Write(rec); err != nil {
		return err
	}
	dates := dateColumns(cols)
	for ok := have; ok; ok = src.next() {
		for i, v := range plainDates(src.values(), dates) {
			rec[i] = csvValue(v)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

var decimalTypeRE = regexp.MustCompile(`^DECIMAL\((\d+),\s*(\d+)\)$`)

// arrowType maps a DuckDB type to Arrow's; types without a direct
// counterpart (nested, HUGEINT, INTERVAL, UUID) travel as strings.
func arrowType(t string) arrow.DataType {
	switch strings.ToUpper(t) {
	case "BOOLEAN":
		return arrow.FixedWidthTypes.Boolean
	case "TINYINT":
		return arrow.PrimitiveTypes.Int8
	case "SMALLINT":
		return arrow.PrimitiveTypes.Int16
	case "INTEGER":
		return arrow.PrimitiveTypes.Int32
	case "BIGINT":
		return arrow.PrimitiveTypes.Int64
	case "UTINYINT":
		return arrow.PrimitiveTypes.Uint8
	case "USMALLINT":
		return arrow.PrimitiveTypes.Uint16
	case "UINTEGER":
		return arrow.PrimitiveTypes.Uint32
	case "UBIGINT":
		return arrow.PrimitiveTypes.Uint64
	case "FLOAT":
		return arrow.PrimitiveTypes.Float32
	case "DOUBLE":
		return arrow.PrimitiveTypes.Float64
	case "DATE":
		return arrow.FixedWidthTypes.Date32
	case "TIMESTAMP":
		return &arrow.TimestampType{Unit: arrow.Microsecond}
	case "TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ":
		return &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	case "BLOB":
		return arrow.BinaryTypes.Binary
	}
	if m := decimalTypeRE.FindStringSubmatch(strings.ToUpper(t)); m != nil {
		p, _ := strconv.Atoi(m[1])
		sc, _ := strconv.Atoi(m[2])
		return &arrow.Decimal128Type{Precision: int32(p), Scale: int32(sc)}
	}
	return arrow.BinaryTypes.String
}

// arrowBatch is how many rows each Arrow record (Parquet row group) holds.
const arrowBatch = 64 * 1024

// writeArrow streams src as an Arrow IPC stream or a Parquet file, in
// records of arrowBatch rows built as the rows come.
func writeArrow(w io.Writer, src rowSource, have, asParquet bool) error {
	cols := src.columns()
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = arrow.Field{Name: c.Name, Type: arrowType(c.Type), Nullable: true}
	}
	schema := arrow.NewSchema(fields, nil)
	mem := memory.DefaultAllocator
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	var write func(arrow.RecordBatch) error
	var finish func() error
	if asParquet {
		props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd), parquet.WithMaxRowGroupLength(arrowBatch*2))
		fw, err := pqarrow.NewFileWriter(schema, w, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
		if err != nil {
			return err
		}
		write, finish = fw.Write, fw.Close
	} else {
		iw := ipc.NewWriter(w, ipc.WithSchema(schema), ipc.WithAllocator(mem))
		write, finish = iw.Write, iw.Close
	}
	n := 0
	flush := func() error {
		rec := b.NewRecordBatch()
		defer rec.Release()
		n = 0
		return write(rec)
	}
	for ok := have; ok; ok = src.next() {
		for i, v := range src.values() {
			appendArrow(b.Field(i), v)
		}
		if n++; n == arrowBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if n > 0 || !asParquet {
		if err := flush(); err != nil {
			return err
		}
	}
	return finish()
}

var pow10 = func() []*big.Int {
	out := make([]*big.Int, 39)
	for i := range out {
		out[i] = new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(i)), nil)
	}
	return out
}()

// appendArrow appends v to the builder of its column.
func appendArrow(b array.Builder, v any) {
	if v == nil {
		b.AppendNull()
		return
	}
	switch bb := b.(type) {
	case *array.Int64Builder:
		switch x := v.(type) {
		case int64:
			bb.Append(x)
		case int32:
			bb.Append(int64(x))
		case int:
			bb.Append(int64(x))
		default:
			bb.AppendNull()
		}
	case *array.Int32Builder:
		if x, ok := v.(int32); ok {
			bb.Append(x)
		} else {
			bb.AppendNull()
		}
	case *array.Int16Builder:
		if x, ok := v.(int16); ok {
			bb.Append(x)
		} else {
			bb.AppendNull()
		}
	case *array.Int8Builder:
		if x, ok := v.(int8); ok {
			bb.Append(x)
		} else {
			bb.AppendNull()
		}
	case *array.Uint8Builder:
		if x, ok := v.(uint8); ok {
			bb.Append(x)
		} else {
			bb.AppendNull()
		}
	case *array.Uint16Builder:
		if x, ok := v.(uint16); ok {
			bb.Append(x)
		} else {
			bb.AppendNull()
		}
	case *array.Uint32Builder:
		if x, ok := v.(uint32); ok {
			bb.Append(x)
		} else {
			bb.AppendNull()
		}
	case *array.Uint64Builder:
		if x, ok := v.(uint64); ok {
			bb.Append(x)
		} else {
			bb.AppendNull()
		}
	case *array.Float64Builder:
		if x, ok := v.(float64); ok {
			bb.Append(x)
		} else {
			bb.AppendNull()
		}
	case *array.Float32Builder:
		if x, ok := v.(float32); ok {
			bb.Append(x)
		} else {
			bb.AppendNull()
		}
	case *array.BooleanBuilder:
		if x, ok := v.(bool); ok {
			bb.Append(x)
		} else {
			bb.AppendNull()
		}
	case *array.Date32Builder:
		if x, ok := v.(time.Time); ok {
			bb.Append(arrow.Date32FromTime(x))
		} else {
			bb.AppendNull()
		}
	case *array.TimestampBuilder:
		if x, ok := v.(time.Time); ok {
			bb.Append(arrow.Timestamp(x.UnixMicro()))
		} else {
			bb.AppendNull()
		}
	case *array.BinaryBuilder:
		if x, ok := v.([]byte); ok {
			bb.Append(x)
		} else {
			bb.AppendNull()
		}
	case *array.Decimal128Builder:
		d, ok := v.(duckdb.Decimal)
		if !ok || d.Value == nil {
			bb.AppendNull()
			return
		}
		want := bb.Type().(*arrow.Decimal128Type).Scale
		val := d.Value
		if diff := int(want) - int(d.Scale); diff > 0 && diff < len(pow10) {
			val = new(big.Int).Mul(val, pow10[diff])
		}
		bb.Append(decimal128.FromBigInt(val))
	case *array.StringBuilder:
		bb.Append(csvValue(v))
	default:
		b.AppendNull()
	}
}

// newServeService builds the governed read path of `rhizome up`.
func newServeService(cfg Config, store metastore.Store, tables *table.Catalog, dec access.Decider, rec audit.Recorder) *serve.Service {
	return &serve.Service{Tables: tables, Store: store, Decider: dec, Audit: rec, Clock: cfg.Clock, Logger: cfg.Logger,
		CacheDir: filepath.Join(cfg.DataDir, "serve")}
}
