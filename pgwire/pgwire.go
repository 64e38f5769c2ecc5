// Package pgwire is Rhizome's SQL endpoint on the PostgreSQL wire protocol:
// psql, pgx, JDBC and BI tools connect with a Rhizome token as password and
// query the products they may read. It owns the connection: the handshake,
// TLS, password authentication against identity (re-checked before every
// statement, so a revoked token ends the session), the simple and the
// extended protocol (parameters bound as literals), cancellation
// (CancelRequest), the statement timeout, DuckDB → Postgres type mapping
// with text and binary encodings, batched rows, SQLSTATEs, and the few
// statements drivers send that touch no data (SET client_encoding, SHOW
// server_version, BEGIN, SELECT version(), ...: see intercept.go).
//
// What a statement may do and what it sees is serve's: every other
// statement goes to serve.Querier as the authenticated subject, which
// applies the allowlist, the access decision (views with masks and row
// filters) and the audit.
//
// The protocol itself comes from github.com/jeroenrinzema/psql-wire rather
// than our own code: message framing, the extended-protocol state machine
// (portals, Sync/discard), TLS upgrade and cancel requests are intricate and
// well tested there. pgtype (from pgx, already a dependency) encodes values.
// This package does not link DuckDB: rows arrive through database/sql and
// are typed by their DuckDB type names.
package pgwire

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	wire "github.com/jeroenrinzema/psql-wire"
	"github.com/jeroenrinzema/psql-wire/pkg/buffer"
	"github.com/jeroenrinzema/psql-wire/pkg/types"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/access"
)

// Querier runs statements as a subject: serve.Service, through a small
// adapter in server (this package does not import serve, which links
// DuckDB, so that it builds and tests fast).
type Querier interface {
	// Query runs one statement as subj; the caller reads and closes the
	// Result.
	Query(ctx context.Context, subj access.Subject, query string) (*Result, error)
	// Describe returns the columns query would return, without running it.
	Describe(ctx context.Context, subj access.Subject, query string) ([]Column, error)
}

// Column is a result column: its name and DuckDB type name (DECIMAL(18,2),
// UUID, TIMESTAMP WITH TIME ZONE, VARCHAR[], ...).
type Column struct {
	Name string
	Type string
}

// Rows are a running query's rows: *sql.Rows, or a reader that counts
// and caps them (serve.Stream), whose Err ends a result that is too large.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

var _ Rows = (*sql.Rows)(nil)

// Result is a running query's rows.
type Result struct {
	Columns []Column
	Rows    Rows
	// Close ends the query (nil: Rows.Close).
	Close func() error
}

func (r *Result) close() error {
	if r.Close != nil {
		return r.Close()
	}
	return r.Rows.Close()
}

// DefaultBatchRows is how many rows are converted and handed to the wire
// writer at a time.
const DefaultBatchRows = 1024

// Server is the SQL endpoint. Set the fields, then Listen and Serve; Close
// stops it.
type Server struct {
	// Querier runs and describes statements as a subject (serve.Service).
	Querier Querier
	// Authenticate maps the startup user name and the password (a Rhizome
	// token) to a subject. The server wires identity.Authenticate and
	// ignores the user name: the token alone says who connects.
	Authenticate func(ctx context.Context, user, password string) (access.Subject, error)
	// TLS, when set, offers TLS (it needs Certificates). Connections must
	// then use it unless AllowPlain is set.
	TLS        *tls.Config
	AllowPlain bool
	// StatementTimeout bounds every statement (0: none). A session may
	// lower it with SET statement_timeout.
	StatementTimeout time.Duration
	// Logger receives connection errors (default: discard).
	Logger *slog.Logger
	// BatchRows is the number of rows per write batch (default 1024).
	BatchRows int
	// Version is the Rhizome version that SELECT version() names.
	Version string
	// SQLState gives the SQLSTATE of the Querier's errors (serve.SQLState);
	// "" or XX000 falls back to this package's mapping from rhizome codes
	// and DuckDB's error classes.
	SQLState func(error) string

	mu      sync.Mutex
	wire    *wire.Server
	conns   map[int32]*conn       // by backend process id, for cancel requests
	tlsFrom map[string]bool       // remote addresses that completed a TLS handshake
	open    map[net.Conn]struct{} // accepted network connections, closed by Close
	closed  bool
}

// conn is one client session.
type conn struct {
	pid, secret    int32
	user, password string
	remote         string

	mu       sync.Mutex
	subj     access.Subject
	cancel   context.CancelFunc // of the running statement
	timeout  time.Duration
	settings map[string]string
	inTx     bool // between BEGIN and COMMIT/ROLLBACK
}

type connKey struct{}

func connFrom(ctx context.Context) *conn {
	c, _ := ctx.Value(connKey{}).(*conn)
	return c
}

// setting is the session's value of a parameter, or its default.
func (c *conn) setting(name string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.settings[name]; ok {
		return v, true
	}
	v, ok := showDefaults[name]
	return v, ok
}

// Listen opens a TCP listener on addr ("127.0.0.1:5433"; port 0 picks
// one). Serve it with Serve.
func (s *Server) Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, rhizome.Errorf(rhizome.EUnavailable, "SQL endpoint: listening on %s: %v", addr, err).WithHint("pick another address with --pg-listen, or --pg-listen \"\" to turn the endpoint off")
	}
	return ln, nil
}

// Serve accepts connections on ln until Close. It returns nil after Close.
func (s *Server) Serve(ln net.Listener) error {
	if s.Querier == nil || s.Authenticate == nil {
		return rhizome.Errorf(rhizome.EInternal, "pgwire: Server needs a Querier and Authenticate")
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.BatchRows <= 0 {
		s.BatchRows = DefaultBatchRows
	}
	opts := []wire.OptionFn{
		wire.Logger(s.Logger),
		wire.SessionAuthStrategy(s.auth),
		wire.BackendKeyData(s.backendKeyData),
		wire.CancelRequest(s.cancelRequest),
		wire.CloseConn(s.closeConn),
		wire.WithShutdownTimeout(5 * time.Second),
		wire.ExtendTypes(extendTypes),
		wire.TxStatus(txStatus),
		wire.GlobalParameters(wire.Parameters{
			"standard_conforming_strings": "on", "DateStyle": "ISO, MDY", "TimeZone": "UTC",
			"IntervalStyle": "postgres", "integer_datetimes": "on",
		}),
	}
	if s.TLS != nil {
		cfg := s.TLS.Clone()
		inner := cfg.GetConfigForClient
		cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			if hello.Conn != nil {
				s.mu.Lock()
				s.tlsFrom[hello.Conn.RemoteAddr().String()] = true
				s.mu.Unlock()
			}
			if inner != nil {
				return inner(hello)
			}
			return nil, nil
		}
		opts = append(opts, wire.TLSConfig(cfg))
	}
	ws, err := wire.NewServer(s.parse, opts...)
	if err != nil {
		return rhizome.Wrap(err, "pgwire: configuring the server")
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ln.Close()
		return nil
	}
	s.wire = ws
	s.conns = map[int32]*conn{}
	s.tlsFrom = map[string]bool{}
	s.open = map[net.Conn]struct{}{}
	s.mu.Unlock()
	return ws.Serve(&trackingListener{Listener: ln, s: s})
}

// Close stops accepting connections, waits up to five seconds for running
// statements, then closes every client connection.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	ws := s.wire
	s.mu.Unlock()
	if ws == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := ws.Shutdown(ctx)
	s.mu.Lock()
	var open []net.Conn
	for c := range s.open {
		open = append(open, c)
	}
	var sessions []*conn
	for _, c := range s.conns {
		sessions = append(sessions, c)
	}
	s.mu.Unlock()
	for _, c := range sessions {
		c.cancelRunning()
	}
	for _, c := range open {
		_ = c.Close()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return nil // the running statements were cut off
	}
	return err
}

// trackingListener remembers accepted connections so Close can end idle
// sessions, which psql-wire's Shutdown leaves open.
type trackingListener struct {
	net.Listener
	s *Server
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, s: l.s}
	l.s.mu.Lock()
	l.s.open[tc] = struct{}{}
	l.s.mu.Unlock()
	return tc, nil
}

type trackedConn struct {
	net.Conn
	s    *Server
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.open, c)
		delete(c.s.tlsFrom, c.RemoteAddr().String())
		c.s.mu.Unlock()
	})
	return c.Conn.Close()
}

// auth asks for a clear-text password (the token) and authenticates it.
func (s *Server) auth(ctx context.Context, w *buffer.Writer, r *buffer.Reader) (context.Context, error) {
	remote := ""
	if a := wire.RemoteAddress(ctx); a != nil {
		remote = a.String()
	}
	fail := func(err error) (context.Context, error) {
		_ = wire.WriteUnterminatedError(w, err)
		return ctx, err
	}
	if s.TLS != nil && !s.AllowPlain {
		s.mu.Lock()
		ok := s.tlsFrom[remote]
		s.mu.Unlock()
		if !ok {
			return fail(fatal(stateAuthSpec, "the Rhizome SQL endpoint requires TLS", "connect with sslmode=require (or verify-full)"))
		}
	}
	w.Start(types.ServerAuth)
	w.AddInt32(3) // AuthenticationCleartextPassword
	if err := w.End(); err != nil {
		return ctx, err
	}
	t, _, err := r.ReadTypedMsg()
	if err != nil {
		return ctx, err
	}
	if t != types.ClientPassword {
		return fail(fatal(stateProtocol, "expected a password message", ""))
	}
	password, err := r.GetString()
	if err != nil {
		return ctx, err
	}
	params := wire.ClientParameters(ctx)
	user := params[wire.ParamUsername]
	subj, err := s.Authenticate(ctx, user, password)
	if err != nil {
		s.Logger.Info("SQL endpoint: authentication failed", "remote", remote, "user", user, "err", err)
		if rhizome.Code(err) == rhizome.EUnauthorized {
			return fail(fatal(stateBadPassword, "password authentication failed: "+messageOf(err), "use a Rhizome token as the password (`rhizome token create`)"))
		}
		return fail(fatal(stateUnavailable, "cannot check the token: "+messageOf(err), ""))
	}
	c := &conn{user: user, password: password, remote: remote, subj: subj, timeout: s.StatementTimeout,
		settings: map[string]string{}}
	if app := params[wire.ParamApplicationName]; app != "" {
		c.settings["application_name"] = app
	}
	ctx = context.WithValue(ctx, connKey{}, c)
	w.Start(types.ServerAuth)
	w.AddInt32(0) // AuthenticationOk
	return ctx, w.End()
}

func messageOf(err error) string {
	var re *rhizome.Error
	if errors.As(err, &re) && re.Message != "" {
		return re.Message
	}
	return err.Error()
}

// backendKeyData gives the session its cancel key.
func (s *Server) backendKeyData(ctx context.Context) (int32, int32) {
	c := connFrom(ctx)
	if c == nil {
		return 0, 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		var b [8]byte
		_, _ = rand.Read(b[:])
		pid := int32(binary.BigEndian.Uint32(b[:4]) & 0x7fffffff)
		if _, taken := s.conns[pid]; pid == 0 || taken {
			continue
		}
		c.pid, c.secret = pid, int32(binary.BigEndian.Uint32(b[4:]))
		s.conns[pid] = c
		return c.pid, c.secret
	}
}

// cancelRequest cancels the running statement of the session with that key.
func (s *Server) cancelRequest(ctx context.Context, pid, secret int32) error {
	s.mu.Lock()
	c := s.conns[pid]
	s.mu.Unlock()
	if c == nil {
		return nil
	}
	var a, b [4]byte
	binary.BigEndian.PutUint32(a[:], uint32(c.secret))
	binary.BigEndian.PutUint32(b[:], uint32(secret))
	if subtle.ConstantTimeCompare(a[:], b[:]) == 1 {
		c.cancelRunning()
	}
	return nil
}

func (s *Server) closeConn(ctx context.Context) error {
	if c := connFrom(ctx); c != nil {
		c.cancelRunning()
		s.mu.Lock()
		delete(s.conns, c.pid)
		s.mu.Unlock()
	}
	return nil
}

// txStatus is ReadyForQuery's status: in a block after BEGIN, else idle.
func txStatus(ctx context.Context) types.ServerStatus {
	if c := connFrom(ctx); c != nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.inTx {
			return types.ServerTransactionBlock
		}
	}
	return types.ServerIdle
}

func (c *conn) cancelRunning() {
	c.mu.Lock()
	cancel := c.cancel
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// statementContext is the context of one statement: the session's timeout
// and a cancel for CancelRequest.
func (c *conn) statementContext(ctx context.Context) (context.Context, context.CancelFunc) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var cancel context.CancelFunc
	if c.timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	c.cancel = cancel
	return ctx, func() {
		cancel()
		c.mu.Lock()
		c.cancel = nil
		c.mu.Unlock()
	}
}

// recheck authenticates the session's token again before a statement: a
// revoked or expired token ends the session (FATAL 28P01); teams that
// changed apply at once.
func (s *Server) recheck(ctx context.Context, c *conn) (access.Subject, error) {
	subj, err := s.Authenticate(ctx, c.user, c.password)
	if err != nil {
		if rhizome.Code(err) == rhizome.EUnauthorized {
			return subj, fatal(stateBadPassword, messageOf(err)+": the session ends", "reconnect with a valid token")
		}
		return subj, wireError(err)
	}
	c.mu.Lock()
	c.subj = subj
	c.mu.Unlock()
	return subj, nil
}

// parse turns a query into prepared statements. A simple query runs here
// (its columns are known once it runs); an extended one is described here
// and runs at Execute with its bound parameters.
func (s *Server) parse(ctx context.Context, q wire.Query) (wire.PreparedStatements, error) {
	c := connFrom(ctx)
	if c == nil {
		return nil, fatal(stateProtocol, "no session", "")
	}
	stmts := splitStatements(q.Query)
	if len(stmts) == 0 {
		return wire.Prepared(complete("")), nil
	}
	if !q.SimpleQuery && len(stmts) > 1 {
		return nil, refuse(stateSyntax, "cannot insert multiple commands into a prepared statement", "")
	}
	var out wire.PreparedStatements
	var forward []string
	for _, st := range stmts {
		ps, ok, err := s.intercept(c, st)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, ps)
		} else {
			forward = append(forward, st)
		}
	}
	if len(forward) == 0 {
		return out, nil
	}
	if len(stmts) > 1 {
		return nil, refuse(stateForbidden, "the Rhizome SQL endpoint runs one statement per query", "send the statements one at a time")
	}
	st := forward[0]
	if q, ok := rewriteCatalog(st); ok {
		st = q
	}
	if q.SimpleQuery {
		ps, err := s.runNow(ctx, c, st)
		if err != nil {
			return nil, err
		}
		return wire.Prepared(ps), nil
	}
	ps, err := s.prepare(ctx, c, st, q.ParameterOIDs)
	if err != nil {
		return nil, err
	}
	return wire.Prepared(ps), nil
}

// runNow runs a simple-protocol statement and returns one that streams its
// rows.
func (s *Server) runNow(ctx context.Context, c *conn, st string) (*wire.PreparedStatement, error) {
	subj, err := s.recheck(ctx, c)
	if err != nil {
		return nil, err
	}
	qctx, done := c.statementContext(ctx)
	res, err := s.Querier.Query(qctx, subj, st)
	if err != nil {
		err = s.statementError(qctx, err)
		done()
		return nil, err
	}
	cols, typs := wireColumns(res.Columns)
	fn := func(_ context.Context, w wire.DataWriter, _ []wire.Parameter) error {
		defer done()
		defer res.close()
		return s.stream(qctx, done, w, res, typs)
	}
	return wire.NewStatement(fn, wire.WithColumns(cols)), nil
}

// prepare describes an extended-protocol statement; it runs at Execute.
// Parameters the client left untyped are described as unknown (OID 0), so
// drivers send them as text; each is bound into the statement as a quoted
// literal that DuckDB casts where it is used.
func (s *Server) prepare(ctx context.Context, c *conn, st string, given []uint32) (*wire.PreparedStatement, error) {
	ps := params(st)
	n := 0
	for _, p := range ps {
		n = max(n, p.n)
	}
	oids := make([]uint32, n)
	copy(oids, given)
	nulls := make([]string, n)
	for i := range nulls {
		nulls[i] = "NULL"
	}
	subj, err := s.recheck(ctx, c)
	if err != nil {
		return nil, err
	}
	dctx, done := c.statementContext(ctx)
	described, err := s.Querier.Describe(dctx, subj, bindParams(st, ps, nulls))
	if err != nil {
		err = s.statementError(dctx, err)
	}
	done()
	if err != nil {
		return nil, err
	}
	if n > 0 {
		described = s.untypedAsText(ctx, c, st, ps, described)
	}
	cols, typs := wireColumns(described)
	fn := func(ctx context.Context, w wire.DataWriter, args []wire.Parameter) error {
		if len(args) != n {
			return refuse("08P01", fmt.Sprintf("bind message supplies %d parameters, but the statement requires %d", len(args), n), "")
		}
		lits := make([]string, n)
		for i, a := range args {
			l, err := literal(a, oids[i])
			if err != nil {
				return refuse(stateInvalidText, fmt.Sprintf("parameter $%d: %v", i+1, err), "")
			}
			lits[i] = l
		}
		subj, err := s.recheck(ctx, c)
		if err != nil {
			return err
		}
		qctx, done := c.statementContext(ctx)
		defer done()
		res, err := s.Querier.Query(qctx, subj, bindParams(st, ps, lits))
		if err != nil {
			return s.statementError(qctx, err)
		}
		defer res.close()
		if len(res.Columns) != len(typs) {
			return refuse(stateFeature, fmt.Sprintf("the statement returned %d columns where it was described with %d", len(res.Columns), len(typs)), "prepare the statement again")
		}
		// Values convert by the type the statement now returns, into the
		// OID the client was told at Describe.
		actual := make([]pgType, len(typs))
		for i, col := range res.Columns {
			actual[i] = typeFor(col.Type)
			if actual[i].oid != typs[i].oid {
				if typs[i].oid != pgtype.TextOID {
					return refuse(stateFeature, fmt.Sprintf("column %q is %s with these parameters, but was described as %s", col.Name, col.Type, typeName(typs[i].oid)),
						"cast the parameter where it sets a result column's type, e.g. $1::VARCHAR")
				}
				actual[i] = pgType{oid: pgtype.TextOID, conv: textConv}
			}
		}
		return s.stream(qctx, done, w, res, actual)
	}
	return wire.NewStatement(fn, wire.WithColumns(cols), wire.WithParameters(oids)), nil
}

// untypedAsText describes st a second time with string literals for its
// parameters: a column whose type differs from the NULL-bound description
// is set by a parameter alone (SELECT $1, COALESCE($1, ...)), and is
// described as text, as Postgres does for an unknown-typed parameter; at
// Execute its value converts to text whatever the bound type. If that
// description fails, the first one stands.
func (s *Server) untypedAsText(ctx context.Context, c *conn, st string, ps []param, described []Column) []Column {
	n := 0
	for _, p := range ps {
		n = max(n, p.n)
	}
	lits := make([]string, n)
	for i := range lits {
		lits[i] = "'0'"
	}
	dctx, done := c.statementContext(ctx)
	defer done()
	c.mu.Lock()
	subj := c.subj
	c.mu.Unlock()
	other, err := s.Querier.Describe(dctx, subj, bindParams(st, ps, lits))
	if err != nil || len(other) != len(described) {
		return described
	}
	out := slices.Clone(described)
	for i := range out {
		if typeFor(other[i].Type).oid != typeFor(out[i].Type).oid {
			out[i].Type = "VARCHAR"
		}
	}
	return out
}

// statementError maps a failed statement's error; a canceled or timed-out
// context wins over whatever DuckDB said about it.
func (s *Server) statementError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return wireErrorCode(ctxErr, stateCanceled)
	}
	state := ""
	if s.SQLState != nil {
		state = s.SQLState(err)
	}
	if state == "" || state == stateInternal {
		state = SQLState(err)
	}
	return wireErrorCode(err, state)
}

func wireColumns(cols []Column) (wire.Columns, []pgType) {
	out := make(wire.Columns, len(cols))
	typs := make([]pgType, len(cols))
	for i, c := range cols {
		typs[i] = typeFor(c.Type)
		out[i] = wire.Column{Name: c.Name, Oid: typs[i].oid, Width: width(typs[i].oid), AttrNo: int16(i + 1)}
	}
	return out, typs
}

func width(oid uint32) int16 {
	switch oid {
	case 16:
		return 1
	case 21:
		return 2
	case 23, 700, 1082:
		return 4
	case 20, 701, 1083, 1114, 1184:
		return 8
	case 2950, 1186:
		return 16
	}
	return -1
}

// stream sends the result's rows in batches and completes with the row
// count. One goroutine reads and converts rows while this one encodes and
// writes the previous batch, so DuckDB and the wire overlap.
// cancel stops the statement when the stream ends early (the client went
// away), so the reader is not left waiting on DuckDB.
func (s *Server) stream(ctx context.Context, cancel func(), w wire.DataWriter, res *Result, typs []pgType) (err error) {
	n := len(typs)
	size := max(s.BatchRows, 1)
	const buffers = 3
	free := make(chan [][]any, buffers)
	for range buffers {
		backing := make([]any, size*n)
		b := make([][]any, size)
		for i := range b {
			b[i] = backing[i*n : (i+1)*n : (i+1)*n]
		}
		free <- b
	}
	type batch struct {
		rows [][]any
		err  error
	}
	full := make(chan batch, buffers)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(full)
		s.produce(ctx, res, typs, free, stop, func(rows [][]any, err error) bool {
			select {
			case full <- batch{rows, err}:
				return true
			case <-stop:
				return false
			}
		})
	}()
	// Whatever ends the stream, the reader stops before res is closed.
	defer func() {
		close(stop)
		if err != nil {
			cancel()
		}
		<-done
	}()
	count := 0
	for b := range full {
		if b.err != nil {
			return b.err
		}
		if err := wire.WriteRows(w, b.rows); err != nil {
			return err
		}
		count += len(b.rows)
		free <- b.rows[:cap(b.rows)]
	}
	if err := ctx.Err(); err != nil {
		return s.statementError(ctx, err)
	}
	return w.Complete(fmt.Sprintf("SELECT %d", count))
}

// produce reads and converts res's rows into batches from free and hands
// each to send (false: stop); a failure is sent as an error.
func (s *Server) produce(ctx context.Context, res *Result, typs []pgType, free chan [][]any, stop chan struct{}, send func([][]any, error) bool) {
	rows := res.Rows
	vals := make([]any, len(typs))
	ptrs := make([]any, len(typs))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for {
		var b [][]any
		select {
		case b = <-free:
		case <-stop:
			return
		}
		k := 0
		for k < len(b) && rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				send(nil, s.statementError(ctx, err))
				return
			}
			row := b[k]
			for i, t := range typs {
				v, err := t.conv(vals[i])
				if err != nil {
					send(nil, refuse(stateInternal, fmt.Sprintf("column %d: %v", i+1, err), ""))
					return
				}
				row[i] = v
			}
			k++
		}
		if k > 0 && !send(b[:k], nil) {
			return
		}
		if k < len(b) { // the rows ended
			if err := rows.Err(); err != nil {
				send(nil, s.statementError(ctx, err))
			}
			return
		}
	}
}

// URL is the postgres:// URL of a listener's address.
func URL(addr net.Addr) string { return "postgres://" + addr.String() }
