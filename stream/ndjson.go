package stream

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"unicode/utf8"

	"github.com/rhizome-mesh/rhizome"
)

// writeTemp copies body into a new file in dir, checking each line, and
// syncs it.
func writeTemp(ctx context.Context, dir, batchID string, body io.Reader, maxBytes int64) (path string, rows, n int64, err error) {
	f, err := os.CreateTemp(dir, batchID+"-*.tmp")
	if err != nil {
		return "", 0, 0, rhizome.Errorf(rhizome.EInternal, "stream: %v", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	r := bufio.NewReaderSize(io.LimitReader(body, maxBytes+1), 1<<16)
	w := bufio.NewWriterSize(f, 1<<16)
	for line := 1; ; line++ {
		b, rerr := r.ReadSlice('\n')
		if errors.Is(rerr, bufio.ErrBufferFull) { // a line longer than the buffer
			long := append([]byte(nil), b...)
			for errors.Is(rerr, bufio.ErrBufferFull) && int64(len(long)) <= maxBytes {
				b, rerr = r.ReadSlice('\n')
				long = append(long, b...)
			}
			b = long
		}
		n += int64(len(b))
		if n > maxBytes {
			return "", 0, 0, rhizome.Errorf(rhizome.ETooLarge, "batch %s is over %d bytes", batchID, maxBytes).
				WithHint("split it into smaller batches, each with its own batch id")
		}
		if t := bytes.TrimSpace(b); len(t) > 0 {
			if t[0] != '{' || !utf8.Valid(t) || !json.Valid(t) {
				return "", 0, 0, notObject(batchID, line, t)
			}
			rows++
			if _, err := w.Write(t); err != nil {
				return "", 0, 0, rhizome.Errorf(rhizome.EInternal, "stream: %v", err)
			}
			if err := w.WriteByte('\n'); err != nil {
				return "", 0, 0, rhizome.Errorf(rhizome.EInternal, "stream: %v", err)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return "", 0, 0, rhizome.Errorf(rhizome.EInvalid, "batch %s: reading the body: %v", batchID, rerr)
		}
		if line%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return "", 0, 0, err
			}
		}
	}
	if rows == 0 {
		return "", 0, 0, rhizome.Errorf(rhizome.EInvalid, "batch %s has no rows", batchID).
			WithHint("send one JSON object per line")
	}
	if err := w.Flush(); err != nil {
		return "", 0, 0, rhizome.Errorf(rhizome.EInternal, "stream: %v", err)
	}
	if err := f.Sync(); err != nil {
		return "", 0, 0, rhizome.Errorf(rhizome.EInternal, "stream: %v", err)
	}
	fi, err := f.Stat()
	if err != nil {
		return "", 0, 0, rhizome.Errorf(rhizome.EInternal, "stream: %v", err)
	}
	if err := f.Close(); err != nil {
		return "", 0, 0, rhizome.Errorf(rhizome.EInternal, "stream: %v", err)
	}
	return f.Name(), rows, fi.Size(), nil
}

func notObject(batchID string, line int, t []byte) error {
	got := string(t)
	if len(got) > 40 {
		got = got[:40] + "..."
	}
	msg := "want a JSON object"
	if !utf8.Valid(t) {
		msg += " in UTF-8; the line has invalid UTF-8"
	} else if json.Valid(t) {
		msg += ", got " + got
	} else {
		msg += "; not valid JSON: " + got
	}
	e := rhizome.Invalid(fmt.Sprintf("batch %s: line %d is not a JSON object", batchID, line),
		rhizome.Problem{Pos: rhizome.Pos{File: "body", Line: line}, Message: msg})
	return e.WithHint("send NDJSON: one JSON object per line, e.g. {\"id\": 1}")
}

// countRows counts the non-empty lines of a spooled file.
func countRows(path string) (rows, size int64, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, rhizome.Errorf(rhizome.EInternal, "stream: %v", err)
	}
	for _, l := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(l)) > 0 {
			rows++
		}
	}
	return rows, int64(len(b)), nil
}
