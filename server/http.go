package server

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/rhizome-mesh/rhizome"
)

// MaxBodyBytes bounds every request body.
const MaxBodyBytes = 16 << 20

// Status maps an error code to its HTTP status: the one place it is done.
func Status(code rhizome.ErrorCode) int {
	switch code {
	case rhizome.EInvalid:
		return http.StatusUnprocessableEntity
	case rhizome.ENotFound:
		return http.StatusNotFound
	case rhizome.EConflict:
		return http.StatusConflict
	case rhizome.EUnauthorized:
		return http.StatusUnauthorized
	case rhizome.EForbidden:
		return http.StatusForbidden
	case rhizome.ETooLarge:
		return http.StatusRequestEntityTooLarge
	case rhizome.EUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

type errorBody struct {
	Error *rhizome.Error `json:"error"`
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *rhizome.Error
	if !errors.As(err, &e) {
		e = &rhizome.Error{Code: rhizome.EInternal, Message: "internal error", Err: err}
	}
	if e.Code == rhizome.EInternal {
		s.logger.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		// Do not leak internals to clients.
		e = &rhizome.Error{Code: rhizome.EInternal, Message: "internal error; see the server log"}
	}
	if e.Code == rhizome.EUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="rhizome"`)
	}
	writeJSON(w, Status(e.Code), errorBody{Error: e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// readBody reads a size-limited request body.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, rhizome.Errorf(rhizome.ETooLarge, "request body over %d bytes", MaxBodyBytes).WithHint("split the apply into several directories")
	}
	if err != nil {
		return nil, rhizome.Errorf(rhizome.EInvalid, "reading request body: %v", err)
	}
	return b, nil
}

// decodeJSON reads a JSON body into v, refusing unknown fields.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return rhizome.Errorf(rhizome.EInvalid, "request body: %v", err).WithHint("see /api/v1/openapi.json")
	}
	return nil
}

// isJSON reports whether the request says its body is JSON (the default
// when it says nothing).
func isJSON(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return true
	}
	mt, _, _ := mime.ParseMediaType(ct)
	return mt == "application/json"
}

// writeItems answers {"items": [...]} (an empty list, never null), or the
// error.
func writeItems[T any](s *Server, w http.ResponseWriter, r *http.Request, items []T, err error) {
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if items == nil {
		items = []T{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
}
