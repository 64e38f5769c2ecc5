package rhizome

import (
	"errors"
	"fmt"
	"strings"
)

// ErrorCode classifies an Error. Each edge maps it once: to an HTTP status in
// server, to a SQLSTATE on the Postgres wire, to an exit code in the CLI.
type ErrorCode string

const (
	EInvalid      ErrorCode = "invalid"      // bad input: 400 / 422
	ENotFound     ErrorCode = "not_found"    // 404
	EConflict     ErrorCode = "conflict"     // 409: stale revision, duplicate
	EUnauthorized ErrorCode = "unauthorized" // 401: no or bad credentials
	EForbidden    ErrorCode = "forbidden"    // 403: credentials fine, not allowed
	ETooLarge     ErrorCode = "too_large"    // 413
	EUnavailable  ErrorCode = "unavailable"  // 503
	EInternal     ErrorCode = "internal"     // 500
)

// Pos is a place in an input file. Line and Col are 1-based; zero means unknown.
type Pos struct {
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	Col  int    `json:"col,omitempty"`
}

func (p Pos) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
		if p.Col > 0 {
			fmt.Fprintf(&b, ":%d", p.Col)
		}
	}
	return b.String()
}

// Problem is one thing wrong with an input: where, which field, what was
// expected, and a hint at the fix.
type Problem struct {
	Pos
	Path    string `json:"path,omitempty"` // field path, e.g. spec.quality.checks[1].threshold
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
}

func (p Problem) String() string {
	var parts []string
	if s := p.Pos.String(); s != "" {
		parts = append(parts, s)
	}
	if p.Path != "" {
		parts = append(parts, p.Path)
	}
	parts = append(parts, p.Message)
	s := strings.Join(parts, ": ")
	if p.Hint != "" {
		s += " (hint: " + p.Hint + ")"
	}
	return s
}

// Error is Rhizome's one error type. Message is for people; Problems lists
// every input problem at once when the error is about a manifest.
type Error struct {
	Code     ErrorCode `json:"code"`
	Message  string    `json:"message"`
	Hint     string    `json:"hint,omitempty"`
	Problems []Problem `json:"problems,omitempty"`
	Err      error     `json:"-"` // underlying cause, not shown to clients
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Message)
	if e.Err != nil && e.Message == "" {
		b.WriteString(e.Err.Error())
	}
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	if e.Hint != "" {
		b.WriteString("\n  hint: ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WithHint sets the hint and returns e.
func (e *Error) WithHint(format string, args ...any) *Error {
	e.Hint = fmt.Sprintf(format, args...)
	return e
}

// Wrap returns an internal error wrapping err with context, unless err is
// already an *Error, whose code it keeps (the message gets the context).
func Wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf(format, args...)
	var e *Error
	if errors.As(err, &e) {
		c := *e
		if msg != "" {
			c.Message = msg + ": " + e.Message
		}
		c.Err = err
		return &c
	}
	return &Error{Code: EInternal, Message: msg + ": " + err.Error(), Err: err}
}

// Invalid returns an EInvalid error listing problems.
func Invalid(message string, problems ...Problem) *Error {
	return &Error{Code: EInvalid, Message: message, Problems: problems}
}

// Code returns the code of err: EInternal for errors that are not *Error,
// "" for nil.
func Code(err error) ErrorCode {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ProblemsOf returns the problems carried by err, if any.
func ProblemsOf(err error) []Problem {
	var e *Error
	if errors.As(err, &e) {
		return e.Problems
	}
	return nil
}
