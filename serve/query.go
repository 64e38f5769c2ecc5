package serve

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/access"
	"github.com/rhizome-mesh/rhizome/audit"
	"github.com/rhizome-mesh/rhizome/engine/duckdb"
	"github.com/rhizome-mesh/rhizome/table"
)

// Query runs one allowed statement as subj over the Postgres wire.
func (s *Service) Query(ctx context.Context, subj access.Subject, query string) (*Result, error) {
	return s.QueryVia(ctx, subj, query, access.ViaSQL)
}

// QueryVia runs one allowed statement as subj, deciding and auditing for
// the interface via (access.ViaSQL, access.ViaREST...).
func (s *Service) QueryVia(ctx context.Context, subj access.Subject, query, via string) (*Result, error) {
	if err := s.init(); err != nil {
		return nil, err
	}
	entry := audit.Entry{Actor: subj.ID, Action: ActionSQL, Via: via, Query: query}
	if subj.ID == "" {
		return nil, errNoSubject
	}
	st, err := s.check(ctx, query)
	if err != nil {
		s.deny(ctx, entry, err)
		return nil, err
	}
	views, err := s.viewsFor(ctx, subj, st, via)
	if err != nil {
		describeViews(&entry, views)
		s.deny(ctx, entry, err)
		return nil, err
	}
	describeViews(&entry, views)
	entry.Decision, entry.Rows = "allow", -1
	if err := s.record(ctx, entry); err != nil {
		return nil, err
	}
	run, limit := st.SQL, int64(0)
	switch {
	case isShowTables(st.SQL):
		// DuckDB's SHOW TABLES lists the schema "main", where no product
		// lives: list the products, qualified, instead.
		run = showTablesSQL
	case !st.Show && !st.Explain:
		// One row past the cap tells Stream the result is larger.
		limit = s.MaxRows
		run = fmt.Sprintf("SELECT * FROM (\n%s\n) AS rhizome_q LIMIT %d", trimStatement(st.SQL), s.MaxRows+1)
	}
	res, err := s.run(ctx, views, func(ctx context.Context, sess *duckdb.Session, scrub func(string) string) (*Result, error) {
		rows, err := sess.QueryServe(ctx, st, run, scrub)
		if err != nil {
			return nil, err
		}
		return resultOf(rows, 0)
	})
	if err != nil {
		return nil, err
	}
	res.Limit = limit
	res.done = s.completion(entry)
	return res, nil
}

// showTablesSQL answers SHOW TABLES: the visible products, as
// "domain.product" names (the session holds only the caller's views).
const showTablesSQL = `SELECT table_schema || '.' || table_name AS name FROM information_schema.tables
WHERE table_schema NOT IN ('information_schema', 'pg_catalog', 'main') ORDER BY 1`

// isShowTables reports whether query is SHOW TABLES (not SHOW ALL
// TABLES, which lists every schema already).
func isShowTables(query string) bool {
	f := strings.Fields(strings.TrimRight(strings.TrimSpace(query), "; \t\n"))
	return len(f) == 2 && strings.EqualFold(f[0], "SHOW") && strings.EqualFold(f[1], "TABLES")
}

// Describe returns the columns query would return, without running it.
func (s *Service) Describe(ctx context.Context, subj access.Subject, query string) ([]Column, error) {
	if err := s.init(); err != nil {
		return nil, err
	}
	entry := audit.Entry{Actor: subj.ID, Action: ActionSQL, Via: access.ViaSQL, Query: query}
	if subj.ID == "" {
		return nil, errNoSubject
	}
	st, err := s.check(ctx, query)
	if err != nil {
		s.deny(ctx, entry, err)
		return nil, err
	}
	views, err := s.viewsFor(ctx, subj, st, access.ViaSQL)
	if err != nil {
		describeViews(&entry, views)
		s.deny(ctx, entry, err)
		return nil, err
	}
	// DuckDB describes SHOW/DESCRIBE/SUMMARIZE as a subquery only.
	desc := st
	if isShowTables(st.SQL) {
		d := *st
		d.SQL = showTablesSQL
		desc = &d
	} else if st.Show {
		d := *st
		d.SQL = "SELECT * FROM (" + trimStatement(st.SQL) + "\n)"
		desc = &d
	}
	var out []Column
	_, err = s.run(ctx, views, func(ctx context.Context, sess *duckdb.Session, scrub func(string) string) (*Result, error) {
		cols, err := sess.DescribeServe(ctx, desc, scrub)
		for _, c := range cols {
			out = append(out, Column{Name: c.Name, Type: c.Type})
		}
		return nil, err
	})
	return out, err
}

// run gets an engine with views and a session of it, and calls fn under
// the statement timeout. A Result fn returns holds the session until it
// is closed; otherwise it is released on return.
func (s *Service) run(ctx context.Context, views []*view, fn func(context.Context, *duckdb.Session, func(string) string) (*Result, error)) (*Result, error) {
	e, err := s.engineFor(ctx, views)
	if err != nil {
		return nil, err
	}
	sess, err := e.acquire(ctx)
	if err != nil {
		e.release(nil, true)
		return nil, err
	}
	var files []string
	for _, v := range views {
		files = append(files, v.files...)
	}
	scrub := func(m string) string {
		m = scrubPaths(m, files)
		return strings.ReplaceAll(m, s.cacheDir, "<cache>")
	}
	qctx, cancel := context.WithTimeout(ctx, s.StatementTimeout)
	res, err := fn(qctx, sess, scrub)
	s.served(views, err)
	if err != nil || res == nil {
		timedOut := errors.Is(qctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
		cancel()
		e.release(sess, false)
		if err != nil && timedOut {
			err = &rhizome.Error{Code: rhizome.EUnavailable, Message: fmt.Sprintf("query canceled: it ran longer than the statement timeout (%s)", s.StatementTimeout),
				Hint: "narrow the query (filters, LIMIT)", Err: duckdb.ServeError{Kind: "canceled"}}
		}
		return res, err
	}
	res.mapErr = func(err error) error {
		var re *rhizome.Error
		if errors.As(err, &re) {
			return err
		}
		return duckdb.ServeErr(qctx, err, scrub)
	}
	res.close = func() error {
		err := res.Rows.Close()
		cancel()
		e.release(sess, false)
		return err
	}
	return res, nil
}

// served reports the outcome of a read to the Served hook.
func (s *Service) served(views []*view, err error) {
	if s.Served == nil {
		return
	}
	switch rhizome.Code(err) {
	case "", rhizome.EInternal:
	default:
		return // the caller's error, a refusal or a timeout
	}
	for _, v := range views {
		if v.productID != "" {
			s.Served(v.productID, err == nil)
		}
	}
}

// viewsFor decides every product st references and, for catalog queries,
// every product subj may read; it returns the views to expose. A
// reference to a relation that is no product, or to one subj may not
// read, is EForbidden (they are not told apart, so existence does not
// leak); the views decided so far come back for the audit entry.
func (s *Service) viewsFor(ctx context.Context, subj access.Subject, st *duckdb.ServeStatement, via string) ([]*view, error) {
	idx, err := s.products(ctx)
	if err != nil {
		return nil, err
	}
	var views []*view
	seen := map[string]bool{}
	for _, r := range st.Relations {
		t, ok := idx.rels[r]
		if !ok && idx.domains[r.Schema] {
			// A schema that is a product domain but no product of that
			// name: a typo. Product manifests (ids, domains, versions)
			// are readable by every principal, so saying it does not
			// exist leaks nothing. Other schemas (main, system, temp...)
			// stay refusals.
			return views, &rhizome.Error{Code: rhizome.ENotFound, Message: fmt.Sprintf("relation %s does not exist: domain %s has no such product or version", r, r.Schema),
				Hint: `name products as "domain"."product" (or "domain"."product_v1" for major version 1); SHOW TABLES or rhizome get products lists them`,
				Err:  duckdb.ServeError{Kind: "relation"}}
		}
		if !ok {
			return views, rhizome.Errorf(rhizome.EForbidden, "relation %s is not a product you may read", r).
				WithHint(`name products as "domain"."product" (or "domain"."product_v1" for major version 1); rhizome get products lists them`)
		}
		v, err := s.prepare(ctx, subj, t, table.AsOf{}, via)
		if err != nil {
			return views, err
		}
		views = append(views, v)
		if !v.decision.Allow {
			return views, v.decision.Err(t.productID)
		}
		seen[r.String()] = true
	}
	if st.Catalog {
		for _, t := range idx.all {
			if seen[t.rel.String()] {
				continue
			}
			v, err := s.prepare(ctx, subj, t, table.AsOf{}, via)
			if err != nil || !v.decision.Allow {
				continue // not visible, or nothing to show
			}
			v.materialize = false // listed, not read: load nothing
			views = append(views, v)
		}
	}
	return views, nil
}

// describeViews fills the products, masks and row filters of an entry.
func describeViews(e *audit.Entry, views []*view) {
	var filters []string
	for _, v := range views {
		if !slices.Contains(e.Products, v.productID) {
			e.Products = append(e.Products, v.productID)
		}
		if v.decision == nil {
			continue
		}
		e.PolicyIDs = append(e.PolicyIDs, v.decision.PolicyIDs...)
		for col, m := range v.decision.Masks() {
			if e.Masks == nil {
				e.Masks = map[string]string{}
			}
			key := col
			if len(views) > 1 {
				key = v.productID + "." + col
			}
			e.Masks[key] = m
		}
		if v.decision.RowFilter != "" {
			f := v.decision.RowFilter
			if len(views) > 1 {
				f = v.productID + ": " + f
			}
			filters = append(filters, f)
		}
	}
	if len(e.Products) == 1 && e.ProductID == "" {
		e.ProductID = e.Products[0]
	}
	e.RowFilter = strings.Join(filters, "; ")
	slices.Sort(e.PolicyIDs)
	e.PolicyIDs = slices.Compact(e.PolicyIDs)
}

// deny records a refusal; the refusal stands whether or not it is recorded.
func (s *Service) deny(ctx context.Context, e audit.Entry, err error) {
	e.Decision = "deny"
	e.Reason = err.Error()
	if e.Actor == "" {
		e.Actor = "anonymous"
	}
	if rerr := s.Audit.Record(context.WithoutCancel(ctx), e); rerr != nil {
		s.Logger.Error("audit: recording a denial failed", "err", rerr, "actor", e.Actor, "action", e.Action)
	}
}

// record records an allowed read; without the record there is no read.
func (s *Service) record(ctx context.Context, e audit.Entry) error {
	if err := s.Audit.Record(ctx, e); err != nil {
		return &rhizome.Error{Code: rhizome.EUnavailable, Message: "the audit log is unavailable; reads are refused until it is back", Err: err}
	}
	return nil
}

// trimStatement removes trailing semicolons (and the comments and blanks
// around them) so that the statement can be wrapped in a subquery.
func trimStatement(q string) string {
	for {
		end := lastToken(q)
		if end <= 0 || q[end-1] != ';' {
			return q
		}
		q = q[:end-1]
	}
}

// lastToken is the offset just past the last character of q that is not
// blank or in a comment.
func lastToken(q string) int {
	last := 0
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case strings.HasPrefix(q[i:], "--"):
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				return last
			}
			i += j + 1
		case strings.HasPrefix(q[i:], "/*"):
			j := strings.Index(q[i+2:], "*/")
			if j < 0 {
				return last
			}
			i += j + 4
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(q) {
				if q[j] == c {
					if j+1 < len(q) && q[j+1] == c {
						j += 2
						continue
					}
					break
				}
				j++
			}
			i = min(j+1, len(q))
			last = i
		default:
			i++
			last = i
		}
	}
	return last
}

// SQLState is the Postgres SQLSTATE of an error of the service: 42501 for
// refusals, 42601 syntax, 42703 unknown column, 42P01 unknown relation,
// 42883 unknown function, 22000 data errors, 57014 canceled (statement
// timeout), 54000 too large, 28000 unauthenticated, XX000 otherwise.
func SQLState(err error) string {
	if err == nil {
		return ""
	}
	var re *rhizome.Error
	if !errors.As(err, &re) {
		// An engine error straight from Rows.
		err = duckdb.ServeErr(context.Background(), err, nil)
	}
	var se duckdb.ServeError
	if errors.As(err, &se) {
		switch se.Kind {
		case "syntax":
			return "42601"
		case "column":
			return "42703"
		case "relation":
			return "42P01"
		case "function":
			return "42883"
		case "data":
			return "22000"
		case "canceled":
			return "57014"
		case "forbidden":
			return "42501"
		}
	}
	switch rhizome.Code(err) {
	case rhizome.EForbidden:
		return "42501"
	case rhizome.EUnauthorized:
		return "28000"
	case rhizome.EUnavailable:
		return "57014"
	case rhizome.ETooLarge:
		return "54000"
	case rhizome.ENotFound:
		return "42P01"
	case rhizome.EInvalid:
		return "22023"
	}
	return "XX000"
}
