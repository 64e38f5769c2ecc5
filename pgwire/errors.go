package pgwire

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jeroenrinzema/psql-wire/codes"
	psqlerr "github.com/jeroenrinzema/psql-wire/errors"

	"github.com/rhizome-mesh/rhizome"
)

// SQLSTATEs this package sends (see docs/sql-endpoint.md).
const (
	stateSyntax          = "42601"
	stateForbidden       = "42501"
	stateUndefinedTable  = "42P01"
	stateUndefinedColumn = "42703"
	stateUndefinedFunc   = "42883"
	stateBadPassword     = "28P01"
	stateAuthSpec        = "28000" // e.g. TLS required
	stateCanceled        = "57014"
	stateInvalidText     = "22P02"
	stateOutOfRange      = "22003"
	stateDivByZero       = "22012"
	stateDataException   = "22000"
	stateFeature         = "0A000"
	stateUnavailable     = "57P03"
	stateInternal        = "XX000"
	stateProtocol        = "08P01"
)

// SQLState gives the SQLSTATE of an error from serve or DuckDB: from its
// rhizome code, refined by DuckDB's message class where the code is
// EInvalid or internal.
func SQLState(err error) string {
	switch {
	case err == nil:
		return "00000"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return stateCanceled
	}
	msg := err.Error()
	switch rhizome.Code(err) {
	case rhizome.EForbidden:
		return stateForbidden
	case rhizome.EUnauthorized:
		return stateBadPassword
	case rhizome.ENotFound:
		if s := duckState(msg); s != "" {
			return s
		}
		return stateUndefinedTable
	case rhizome.EUnavailable:
		return stateUnavailable
	case rhizome.ETooLarge:
		return "54000" // program_limit_exceeded
	case rhizome.EInvalid:
		if s := duckState(msg); s != "" {
			return s
		}
		return stateSyntax
	}
	if s := duckState(msg); s != "" {
		return s
	}
	return stateInternal
}

// duckState maps DuckDB's error classes ("Parser Error: ...") to SQLSTATEs.
func duckState(msg string) string {
	switch {
	case strings.Contains(msg, "Parser Error"):
		return stateSyntax
	case strings.Contains(msg, "Catalog Error") && (strings.Contains(msg, "Table with name") || strings.Contains(msg, "View with name") || strings.Contains(msg, "Schema with name")):
		return stateUndefinedTable
	case strings.Contains(msg, "Catalog Error") && strings.Contains(msg, "Function with name"):
		return stateUndefinedFunc
	case strings.Contains(msg, "Binder Error") && strings.Contains(msg, "column"):
		return stateUndefinedColumn
	case strings.Contains(msg, "Binder Error"):
		return stateSyntax
	case strings.Contains(msg, "Conversion Error"):
		return stateInvalidText
	case strings.Contains(msg, "Out of Range Error"):
		return stateOutOfRange
	case strings.Contains(msg, "Division by zero"):
		return stateDivByZero
	case strings.Contains(msg, "Invalid Input Error"):
		return stateDataException
	case strings.Contains(msg, "Permission Error"):
		return stateForbidden
	case strings.Contains(msg, "INTERRUPT") || strings.Contains(msg, "Interrupted"):
		return stateCanceled
	case strings.Contains(msg, "Not implemented Error"):
		return stateFeature
	}
	return ""
}

// wireError wraps err for psql-wire with its SQLSTATE, a message for
// people and the rhizome hint.
func wireError(err error) error {
	return wireErrorCode(err, SQLState(err))
}

func wireErrorCode(err error, state string) error {
	msg := err.Error()
	hint := ""
	var re *rhizome.Error
	if errors.As(err, &re) {
		msg, hint = re.Message, re.Hint
		if msg == "" && re.Err != nil {
			msg = re.Err.Error()
		}
		// Problems repeat the message with a position: keep what they add.
		for _, p := range re.Problems {
			where := ""
			if p.Line > 0 {
				where = fmt.Sprintf("LINE %d, column %d", p.Line, p.Col)
			}
			switch {
			case p.Message == re.Message && where != "":
				msg += " (" + where + ")"
			case p.Message != re.Message:
				msg += "\n" + strings.TrimPrefix(where+": "+p.Message, ": ")
			}
			if hint == "" {
				hint = p.Hint
			}
		}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		msg = "canceling statement due to statement timeout"
	case errors.Is(err, context.Canceled):
		msg = "canceling statement due to user request"
	}
	out := psqlerr.WithCode(errors.New(msg), codes.Code(state))
	if hint != "" {
		out = psqlerr.WithHint(out, hint)
	}
	return psqlerr.WithSeverity(out, psqlerr.LevelError)
}

// fatal is an error that ends the session (FATAL severity).
func fatal(state, msg, hint string) error {
	out := psqlerr.WithCode(errors.New(msg), codes.Code(state))
	if hint != "" {
		out = psqlerr.WithHint(out, hint)
	}
	return psqlerr.WithSeverity(out, psqlerr.LevelFatal)
}

// refuse is an ERROR with a state and hint.
func refuse(state, msg, hint string) error {
	out := psqlerr.WithCode(errors.New(msg), codes.Code(state))
	if hint != "" {
		out = psqlerr.WithHint(out, hint)
	}
	return psqlerr.WithSeverity(out, psqlerr.LevelError)
}
