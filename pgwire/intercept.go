package pgwire

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	wire "github.com/jeroenrinzema/psql-wire"
)

// Statements the wire layer answers itself, without DuckDB: what drivers
// and BI tools send on connect or around every query, none of which reads
// data. Everything else goes to serve, which decides whether it may run.

// settable are the parameters SET accepts: as no-ops (their value is only
// remembered for SHOW), except statement_timeout, which the session
// honours up to the server's limit. Any other SET is refused (42501).
var settable = map[string]bool{
	"client_encoding": true, "extra_float_digits": true, "datestyle": true, "timezone": true,
	"application_name": true, "search_path": true, "statement_timeout": true, "bytea_output": true,
	"intervalstyle": true, "standard_conforming_strings": true, "client_min_messages": true,
	"lc_messages": true, "lc_monetary": true, "lc_numeric": true, "lc_time": true,
	"default_transaction_isolation": true, "default_transaction_read_only": true,
	"transaction_isolation": true, "lock_timeout": true, "idle_in_transaction_session_timeout": true,
	"jit": true, "join_collapse_limit": true, "geqo": true,
}

// showDefaults are the values SHOW reports for parameters not SET in the
// session.
var showDefaults = map[string]string{
	"server_version": "15.0", "server_version_num": "150000", "client_encoding": "UTF8",
	"server_encoding": "UTF8", "standard_conforming_strings": "on", "datestyle": "ISO, MDY",
	"timezone": "UTC", "transaction_isolation": "repeatable read", "default_transaction_isolation": "repeatable read",
	"default_transaction_read_only": "on", "transaction_read_only": "on", "integer_datetimes": "on",
	"is_superuser": "off", "max_identifier_length": "63", "search_path": "main", "statement_timeout": "0",
	"application_name": "", "extra_float_digits": "1", "bytea_output": "hex", "intervalstyle": "postgres",
	"client_min_messages": "notice", "lc_messages": "C", "lc_monetary": "C", "lc_numeric": "C", "lc_time": "C",
	"lock_timeout": "0", "idle_in_transaction_session_timeout": "0", "jit": "off",
}

// noOps are whole statements accepted and ignored, with their command tag:
// a session is read-only and every statement sees the current snapshots,
// so transaction control has nothing to do.
var noOps = map[string]string{
	"begin": "BEGIN", "start": "START TRANSACTION", "commit": "COMMIT", "end": "COMMIT",
	"rollback": "ROLLBACK", "abort": "ROLLBACK", "discard": "DISCARD ALL", "deallocate": "DEALLOCATE",
	"unlisten": "UNLISTEN", "savepoint": "SAVEPOINT", "release": "RELEASE",
}

// intercept answers st if it is one of the wire layer's statements.
func (s *Server) intercept(c *conn, st string) (*wire.PreparedStatement, bool, error) {
	w := words(st, 8)
	if len(w) == 0 {
		return nil, false, nil
	}
	if tag, ok := noOps[w[0]]; ok {
		// Transaction blocks change nothing but ReadyForQuery's status,
		// which keeps portals (JDBC's fetch size) alive across Syncs.
		c.mu.Lock()
		switch {
		case w[0] == "begin" || w[0] == "start":
			c.inTx = true
		case w[0] == "rollback" && len(w) > 1 && w[1] == "to":
		case w[0] == "commit" || w[0] == "end" || w[0] == "rollback" || w[0] == "abort":
			c.inTx = false
		}
		c.mu.Unlock()
		return complete(tag), true, nil
	}
	switch w[0] {
	case "set":
		return s.set(c, st, w)
	case "reset":
		if len(w) < 2 {
			return nil, true, refuse(stateSyntax, "RESET needs a parameter name", "")
		}
		name := w[1]
		if name != "all" && !settable[name] {
			return nil, true, refuse(stateForbidden, fmt.Sprintf("RESET %s is not allowed on the Rhizome SQL endpoint", name), settableHint())
		}
		c.mu.Lock()
		if name == "all" {
			c.settings = map[string]string{}
		} else {
			delete(c.settings, name)
		}
		c.mu.Unlock()
		return complete("RESET"), true, nil
	case "show":
		name := strings.Join(w[1:], " ")
		switch name {
		case "transaction isolation level":
			name = "transaction_isolation"
		case "time zone":
			name = "timezone"
		}
		if v, ok := c.setting(name); ok {
			return oneValue(name, v, "SHOW"), true, nil
		}
		return nil, false, nil // SHOW TABLES, SHOW <table>: serve's
	case "select":
		// SELECT version(), pg_catalog.version(), current_setting('x')
		rest := strings.Join(w[1:], "")
		switch rest {
		case "version()", "pg_catalog.version()":
			return oneValue("version", s.versionString(), "SELECT 1"), true, nil
		case "current_user", "session_user", "user", "current_role":
			c.mu.Lock()
			id := c.subj.ID
			c.mu.Unlock()
			return oneValue(rest, id, "SELECT 1"), true, nil
		}
	}
	return nil, false, nil
}

// set handles SET [SESSION|LOCAL] name {TO|=} value and SET TIME ZONE.
func (s *Server) set(c *conn, st string, w []string) (*wire.PreparedStatement, bool, error) {
	i := 1
	if i < len(w) && (w[i] == "session" || w[i] == "local") {
		i++
	}
	if i >= len(w) {
		return nil, true, refuse(stateSyntax, "SET needs a parameter", "")
	}
	name := w[i]
	if name == "time" && i+1 < len(w) && w[i+1] == "zone" {
		name = "timezone"
	} else if name == "names" {
		name = "client_encoding"
	} else if name == "characteristics" || name == "transaction" || name == "session_characteristics" {
		return complete("SET"), true, nil
	}
	if !settable[name] {
		return nil, true, refuse(stateForbidden, fmt.Sprintf("SET %s is not allowed on the Rhizome SQL endpoint", name), settableHint())
	}
	value := setValue(st)
	c.mu.Lock()
	defer c.mu.Unlock()
	if name == "statement_timeout" {
		d, err := parseTimeout(value)
		if err != nil {
			return nil, true, refuse("22023", fmt.Sprintf("invalid value for statement_timeout: %q", value), `write milliseconds or a unit, e.g. 30000 or '30s'`)
		}
		if max := s.StatementTimeout; max > 0 && (d == 0 || d > max) {
			d = max
		}
		c.timeout = d
	}
	c.settings[name] = value
	return complete("SET"), true, nil
}

// setValue is the text after TO or = in a SET statement, unquoted.
func setValue(st string) string {
	lower := strings.ToLower(st)
	k := -1
	scan(st, func(a, b int) {
		if k >= 0 {
			return
		}
		if i := strings.Index(lower[a:b], "="); i >= 0 {
			k = a + i + 1
		} else if i := strings.Index(lower[a:b], " to "); i >= 0 {
			k = a + i + 4
		} else if i := strings.Index(lower[a:b], " zone "); i >= 0 {
			k = a + i + 6
		}
	})
	if k < 0 {
		return ""
	}
	v := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(st[k:]), ";"))
	if len(v) >= 2 && (v[0] == '\'' || v[0] == '"') && v[len(v)-1] == v[0] {
		v = strings.ReplaceAll(v[1:len(v)-1], string(v[0])+string(v[0]), string(v[0]))
	}
	return v
}

// parseTimeout reads Postgres' statement_timeout: milliseconds, or a
// number with a unit (ms, s, min, h); 0 or DEFAULT is no limit.
func parseTimeout(v string) (time.Duration, error) {
	v = strings.ToLower(strings.TrimSpace(v))
	if v == "" || v == "default" || v == "0" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Duration(n) * time.Millisecond, nil
	}
	v = strings.ReplaceAll(v, " ", "")
	v = strings.Replace(v, "min", "m", 1)
	return time.ParseDuration(v)
}

func settableHint() string {
	names := make([]string, 0, len(settable))
	for n := range settable {
		names = append(names, n)
	}
	sort.Strings(names)
	return "the endpoint is read-only; SET accepts only " + strings.Join(names, ", ")
}

// complete is a statement that returns no rows, only its tag.
func complete(tag string) *wire.PreparedStatement {
	return wire.NewStatement(func(ctx context.Context, w wire.DataWriter, _ []wire.Parameter) error {
		return w.Complete(tag)
	})
}

// oneValue is a statement returning one text value.
func oneValue(col, value, tag string) *wire.PreparedStatement {
	return wire.NewStatement(func(ctx context.Context, w wire.DataWriter, _ []wire.Parameter) error {
		if err := w.Row([]any{value}); err != nil {
			return err
		}
		return w.Complete(tag)
	}, wire.WithColumns(wire.Columns{{Name: col, Oid: pgtype.TextOID, Width: -1}}))
}

func (s *Server) versionString() string {
	v := s.Version
	if v == "" {
		v = "dev"
	}
	return "PostgreSQL 15.0 (Rhizome " + v + " SQL endpoint on DuckDB)"
}

// psql's \dt, \dv, \d and \dt PATTERN read pg_class with functions DuckDB
// lacks (pg_get_userbyid) and would list products (views in serve's
// sandbox) under the wrong kind. The wire layer recognises that query and
// sends serve an equivalent one over information_schema.tables instead,
// so products list as tables, and serve still decides and audits it.
var (
	psqlListTables = regexp.MustCompile(`(?s)^SELECT n\.nspname as "Schema",\s+c\.relname as "Name",.*pg_catalog\.pg_get_userbyid\(c\.relowner\) as "Owner".*FROM pg_catalog\.pg_class c`)
	psqlRelname    = regexp.MustCompile(`c\.relname OPERATOR\(pg_catalog\.~\) '((?:[^']|'')*)'`)
	psqlNspname    = regexp.MustCompile(`n\.nspname OPERATOR\(pg_catalog\.~\) '((?:[^']|'')*)'`)
)

// psqlListDatabases is psql's \l query (DuckDB's pg_database lacks the
// columns it reads).
var psqlListDatabases = regexp.MustCompile(`(?s)^SELECT d\.datname as "Name",.*FROM pg_catalog\.pg_database d`)

// psqlSpellings are the Postgres-only spellings in psql's describe
// queries (\d TABLE) and their DuckDB equivalents: the anchored pattern
// psql builds ('^(orders)$') means the same under DuckDB's full-match ~.
var psqlSpellings = strings.NewReplacer(
	"OPERATOR(pg_catalog.~)", "~",
	" COLLATE pg_catalog.default", "",
	"::pg_catalog.regtype::pg_catalog.text", "::VARCHAR",
	"::pg_catalog.text", "::VARCHAR",
	"c.relforcerowsecurity", "false AS relforcerowsecurity",
	"pg_catalog.pg_get_expr(d.adbin, d.adrelid, true)", "pg_catalog.pg_get_expr(d.adbin, d.adrelid)",
	// \d+: storage options (views have none).
	"pg_catalog.array_to_string(c.reloptions || array(select 'toast.' || x from pg_catalog.unnest(tc.reloptions) x), ', ')", "''",
	// \l
	"pg_catalog.pg_encoding_to_char(d.encoding)", "'UTF8'",
)

// psqlUserByID is pg_get_userbyid(oid), which DuckDB lacks; every
// object of the endpoint is owned by "rhizome".
var psqlUserByID = regexp.MustCompile(`(?i)(?:pg_catalog\.)?pg_get_userbyid\([a-z_.]*\)`)

// psqlViewDef is \d+'s pg_get_viewdef(oid, true): a product view's
// definition names its files, so psql is answered NULL (serve refuses
// pg_get_viewdef itself).
var psqlViewDef = regexp.MustCompile(`pg_catalog\.pg_get_viewdef\('[0-9]+'::pg_catalog\.oid, true\)`)

// rewriteCatalog returns the query serve runs for a psql catalog query.
func rewriteCatalog(st string) (string, bool) {
	if q, ok := rewriteJDBC(st); ok {
		return q, true
	}
	if psqlListDatabases.MatchString(st) {
		// \l: the endpoint has one database, whatever name the client gave.
		return `SELECT 'rhizome' AS "Name", 'rhizome' AS "Owner", 'UTF8' AS "Encoding", 'C' AS "Collate", 'C' AS "Ctype",
NULL::VARCHAR AS "ICU Locale", 'libc' AS "Locale Provider", NULL::VARCHAR AS "Access privileges"`, true
	}
	if !psqlListTables.MatchString(st) {
		q := psqlUserByID.ReplaceAllString(psqlSpellings.Replace(st), "'rhizome'")
		q = psqlViewDef.ReplaceAllString(q, "NULL::VARCHAR")
		if q != st {
			return q, true
		}
		return "", false
	}
	q := `SELECT table_schema AS "Schema", table_name AS "Name", 'table' AS "Type", 'rhizome' AS "Owner"
FROM information_schema.tables WHERE table_schema NOT IN ('information_schema', 'pg_catalog')`
	if m := psqlRelname.FindStringSubmatch(st); m != nil {
		q += " AND regexp_full_match(table_name, " + quoteLiteral(strings.ReplaceAll(m[1], "''", "'")) + ")"
	}
	if m := psqlNspname.FindStringSubmatch(st); m != nil {
		q += " AND regexp_full_match(table_schema, " + quoteLiteral(strings.ReplaceAll(m[1], "''", "'")) + ")"
	}
	return q + " ORDER BY 1, 2", true
}
