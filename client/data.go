package client

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/rhizome-mesh/rhizome"
)

// The data API: governed reads, schemas and SQL (docs/data-api.md).

// DataColumn is a result column: its name and DuckDB type.
type DataColumn struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// DataSchemaColumn is one column of a product as the caller sees it.
type DataSchemaColumn struct {
	Name           string `json:"name"`
	Type           string `json:"type"`
	Required       bool   `json:"required,omitempty"`
	Classification string `json:"classification,omitempty"`
	Mask           string `json:"mask,omitempty"`
	Description    string `json:"description,omitempty"`
}

// DataSchema is GET /products/{id}/schema.
type DataSchema struct {
	ProductID   string             `json:"product_id"`
	Version     string             `json:"version"`
	Relation    string             `json:"relation"`
	Table       string             `json:"table"`
	Contract    string             `json:"contract,omitempty"`
	Description string             `json:"description,omitempty"`
	Columns     []DataSchemaColumn `json:"columns"`
	RowFilter   bool               `json:"row_filter,omitempty"`
}

// DataOptions select what Data reads.
type DataOptions struct {
	Columns []string
	// Filters are column:op:value (eq, ne, lt, le, gt, ge, in, like,
	// is_null, not_null).
	Filters []string
	Sort    string // e.g. -amount,id
	// Limit is the page size; 0 leaves the server's default (1000 rows
	// for json and ndjson, every row for csv, parquet and arrow); -1
	// asks for every row.
	Limit  int64
	Cursor string
	AsOf   string
	// Format is json, ndjson, csv, parquet or arrow ("" = json).
	Format string
}

// Stream is a streamed response body. Read Body to the end, then
// NextCursor gives the next page's cursor ("" on the last page).
type Stream struct {
	Body        io.ReadCloser
	ContentType string
	resp        *http.Response
}

// Read reads the body.
func (s *Stream) Read(p []byte) (int, error) { return s.Body.Read(p) }

// Close closes the body.
func (s *Stream) Close() error { return s.Body.Close() }

// NextCursor is the Rhizome-Next-Cursor trailer, once Body is read.
func (s *Stream) NextCursor() string { return s.resp.Trailer.Get("Rhizome-Next-Cursor") }

// Error is the Rhizome-Error trailer: why a stream ended early.
func (s *Stream) Error() string { return s.resp.Trailer.Get("Rhizome-Error") }

var accepts = map[string]string{
	"json": "application/json", "ndjson": "application/x-ndjson", "csv": "text/csv",
	"parquet": "application/vnd.apache.parquet", "arrow": "application/vnd.apache.arrow.stream",
}

// Data reads a product's rows as the caller may see them.
func (c *Client) Data(ctx context.Context, productID string, opt DataOptions) (*Stream, error) {
	p, err := objectPath(rhizome.KindDataProduct, productID)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	if len(opt.Columns) > 0 {
		q.Set("columns", strings.Join(opt.Columns, ","))
	}
	for _, f := range opt.Filters {
		q.Add("filter", f)
	}
	if opt.Sort != "" {
		q.Set("sort", opt.Sort)
	}
	switch {
	case opt.Limit > 0:
		q.Set("limit", strconv.FormatInt(opt.Limit, 10))
	case opt.Limit < 0:
		q.Set("limit", "0")
	}
	if opt.Cursor != "" {
		q.Set("cursor", opt.Cursor)
	}
	if opt.AsOf != "" {
		q.Set("as_of", opt.AsOf)
	}
	if opt.Format != "" {
		q.Set("format", opt.Format)
	}
	return c.dataStream(ctx, http.MethodGet, p+"/data", q, nil, opt.Format)
}

// DataSchema returns a product's columns as the caller sees them.
func (c *Client) DataSchema(ctx context.Context, productID, asOf string) (*DataSchema, error) {
	p, err := objectPath(rhizome.KindDataProduct, productID)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	if asOf != "" {
		q.Set("as_of", asOf)
	}
	var out DataSchema
	err = c.do(ctx, request{method: http.MethodGet, path: p + "/schema", query: q}, &out)
	return &out, err
}

// Query runs one governed SQL statement; format as for Data (not parquet).
func (c *Client) Query(ctx context.Context, sql, format string) (*Stream, error) {
	body, _ := json.Marshal(map[string]string{"sql": sql})
	return c.dataStream(ctx, http.MethodPost, "/api/v1/query", nil, body, format)
}

func (c *Client) dataStream(ctx context.Context, method, path string, q url.Values, body []byte, format string) (*Stream, error) {
	if format == "" {
		format = "json"
	}
	accept, ok := accepts[format]
	if !ok {
		return nil, rhizome.Errorf(rhizome.EInvalid, "format %q is not supported", format).WithHint("use json, ndjson, csv, parquet or arrow")
	}
	resp, err := c.open(ctx, method, path, q, body, http.Header{"Accept": {accept}})
	if err != nil {
		return nil, err
	}
	return &Stream{Body: resp.Body, ContentType: resp.Header.Get("Content-Type"), resp: resp}, nil
}
