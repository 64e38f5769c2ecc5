package duckdb

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// countCSV counts the records of an input that Register made a view over
// CSV files without reading them through DuckDB, when that is exact: each
// file is plain (per DuckDB's own sniffer: no rows skipped, no comments,
// "\n" line ends; and no quote character, carriage return or blank line
// in the file), so records are lines less the header. It reports false
// whenever any of that does not hold, and the caller counts with SQL.
// It reads the files at memory speed rather than parsing them.
func (s *Session) countCSV(ctx context.Context, src Source) (int64, bool) {
	if src.Format != "csv" || len(src.Columns) > 0 || len(src.Paths) == 0 {
		return 0, false
	}
	for k := range src.Options {
		switch formatOptions["csv"][strings.ToLower(k)] {
		case "delim", "header", "quote", "nullstr", "dateformat", "timestampformat", "decimal_separator":
		default: // skip, comment, escape, compression, encoding: let DuckDB count
			return 0, false
		}
	}
	var total int64
	var first *sniffed
	for _, p := range src.Paths {
		switch strings.ToLower(filepath.Ext(p)) {
		case ".csv", ".tsv", ".txt", "":
		default: // compressed, or something DuckDB may treat specially
			return 0, false
		}
		if strings.ContainsAny(p, "*?[{") {
			return 0, false
		}
		one := src
		one.Paths = []string{p}
		sn, err := s.sniff(ctx, one)
		if err != nil || sn.skip != 0 || sn.comment != "(empty)" || sn.newline != `\n` {
			return 0, false
		}
		if first == nil {
			first = &sn
		} else if *first != sn {
			return 0, false // DuckDB reads every file with one dialect
		}
		var quote byte
		switch {
		case sn.quote == "(empty)":
		case len(sn.quote) == 1:
			quote = sn.quote[0]
		default:
			return 0, false
		}
		lines, ok := countLines(ctx, p, quote)
		if !ok {
			return 0, false
		}
		if sn.header {
			lines--
		}
		total += max(lines, 0)
	}
	return total, true
}

type sniffed struct {
	delim, quote, newline, comment string
	skip                           int64
	header                         bool
}

// sniff asks DuckDB's CSV sniffer how it reads src's one file, with
// src's options.
func (s *Session) sniff(ctx context.Context, src Source) (sniffed, error) {
	scan, err := s.scan(src, false)
	if err != nil {
		return sniffed{}, err
	}
	// scan is read_csv([<path>], opts...); sniff_csv takes one path.
	lit := quoteLit(src.Paths[0])
	prefix := "read_csv([" + lit + "]"
	if !strings.HasPrefix(scan, prefix) {
		return sniffed{}, errors.New("unexpected scan")
	}
	q := "SELECT Delimiter, Quote, NewLineDelimiter, Comment, SkipRows, HasHeader FROM sniff_csv(" + lit + strings.TrimPrefix(scan, prefix)
	var sn sniffed
	err = s.conn.QueryRowContext(ctx, q).Scan(&sn.delim, &sn.quote, &sn.newline, &sn.comment, &sn.skip, &sn.header)
	return sn, err
}

// countLines counts the lines of a file (a last line without "\n"
// counts), or reports false if the file holds quote (when not 0), "\r",
// or a blank line, which DuckDB's reader would treat other than as one
// record a line.
func countLines(ctx context.Context, path string, quote byte) (int64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var n int64
	prev := byte('\n') // a blank first line counts as blank
	var last byte
	size := 0
	for {
		if ctx.Err() != nil {
			return 0, false
		}
		k, err := f.Read(buf)
		b := buf[:k]
		if k > 0 {
			if bytes.IndexByte(b, '\r') >= 0 || (quote != 0 && bytes.IndexByte(b, quote) >= 0) ||
				(prev == '\n' && b[0] == '\n') || bytes.Contains(b, []byte("\n\n")) {
				return 0, false
			}
			n += int64(bytes.Count(b, []byte{'\n'}))
			prev, last = b[k-1], b[k-1]
			size += k
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, false
		}
	}
	if size > 0 && last != '\n' {
		n++
	}
	return n, true
}
