package duckdb

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	duckdbdriver "github.com/duckdb/duckdb-go/v2"

	"github.com/rhizome-mesh/rhizome"
)

// Model is one named SELECT of a transform (dbt-style). File and Line say
// where SQL starts in the manifest (Line is the line of the SQL's first
// line) so that errors point into the manifest.
type Model struct {
	Name string
	SQL  string
	File string
	Line int
	// View creates the model as a view instead of a table: it is not
	// materialised, and whatever reads it (a later model, ExportParquet)
	// computes it. Use it for a model read once, such as the output model
	// that is exported: the export is then the only pass over the data.
	// Its SQL is checked and bound by RunModels as usual, but errors that
	// only show when rows are computed (a failing cast, a malformed input
	// row) surface when it is read; ExportParquet reports them as the
	// model's, positioned in the manifest.
	View bool
}

// viewModel is a model RunModels created as a view, for the errors of
// its readers.
type viewModel struct {
	m    Model
	path string
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// RunModels runs the models in order, each as CREATE TABLE <name> AS <sql>
// (CREATE VIEW for a Model with View set),
// after checking that its SQL is one SELECT reading only the allowed inputs
// and earlier models. Errors are EInvalid with a Problem positioned in the
// manifest at path pipeline.models[i].sql.
func (s *Session) RunModels(ctx context.Context, models []Model, allowed []string) error {
	later := map[string]int{}
	inputs := map[string]bool{}
	for _, a := range allowed {
		inputs[strings.ToLower(a)] = true
	}
	var probs []rhizome.Problem
	for i, m := range models {
		p := rhizome.Problem{Pos: rhizome.Pos{File: m.File, Line: m.Line}, Path: fmt.Sprintf("pipeline.models[%d].name", i)}
		key := strings.ToLower(m.Name)
		switch _, dup := later[key]; {
		case !identRE.MatchString(m.Name):
			p.Message = fmt.Sprintf("model name %q is not a plain SQL name", m.Name)
			p.Hint = "use letters, digits and underscores, starting with a letter"
		case dup:
			p.Message = fmt.Sprintf("model %s is defined twice", m.Name)
		case inputs[key]:
			p.Message = fmt.Sprintf("model %s has the name of an input", m.Name)
			p.Hint = "rename the model"
		default:
			later[key] = i
			continue
		}
		probs = append(probs, p)
	}
	if len(probs) > 0 {
		return rhizome.Invalid("invalid models", probs...)
	}
	visible := append([]string(nil), allowed...)
	for i, m := range models {
		delete(later, strings.ToLower(m.Name))
		path := fmt.Sprintf("pipeline.models[%d].sql", i)
		fs, err := s.check(ctx, m.SQL, visible, later)
		if err != nil {
			return err
		}
		if len(fs) > 0 {
			probs := make([]rhizome.Problem, len(fs))
			for j, f := range fs {
				probs[j] = m.problem(path, f.off, f.msg, f.hint)
			}
			return rhizome.Invalid(fmt.Sprintf("model %s refused", m.Name), probs...)
		}
		// The SQL goes on its own line so DuckDB's "LINE n" is n-1 in the SQL.
		kind := "TABLE"
		if m.View {
			kind = "VIEW"
		}
		if _, err := s.conn.ExecContext(ctx, "CREATE "+kind+" "+quoteIdent(m.Name)+" AS\n"+m.SQL); err != nil {
			return m.execError(ctx, path, err)
		}
		if m.View {
			s.mu.Lock()
			if s.views == nil {
				s.views = map[string]viewModel{}
			}
			s.views[strings.ToLower(m.Name)] = viewModel{m, path}
			s.mu.Unlock()
		}
		visible = append(visible, m.Name)
		// Lineage is a by-product: a query it cannot follow still runs.
		if lin, err := s.ColumnLineage(ctx, m.SQL); err == nil {
			s.mu.Lock()
			if s.models == nil {
				s.models = map[string]map[string][]ColumnRef{}
			}
			s.models[strings.ToLower(m.Name)] = lin
			s.mu.Unlock()
		}
	}
	return nil
}

// problem positions a finding at byte offset off of the model's SQL.
func (m Model) problem(path string, off int, msg, hint string) rhizome.Problem {
	line, col := lineCol(m.SQL, off)
	return m.problemAt(path, line, col, msg, hint)
}

func (m Model) problemAt(path string, line, col int, msg, hint string) rhizome.Problem {
	p := rhizome.Problem{Pos: rhizome.Pos{File: m.File}, Path: path, Message: msg, Hint: hint}
	if line > 0 {
		if m.Line > 0 {
			p.Line = m.Line + line - 1
		} else {
			p.Line = line
		}
		p.Col = col
	} else {
		p.Line = m.Line // the model, at least
	}
	return p
}

// execError turns a DuckDB error from running model m into an *rhizome.Error.
func (m Model) execError(ctx context.Context, path string, err error) error {
	if ctx.Err() != nil {
		return rhizome.Wrap(ctx.Err(), "running model %s", m.Name)
	}
	msg, line, col := splitDuckError(err.Error(), m.SQL, 1)
	code, hint := rhizome.EInvalid, ""
	var de *duckdbdriver.Error
	if errors.As(err, &de) {
		switch de.Type {
		case duckdbdriver.ErrorTypeOutOfMemory:
			code, hint = rhizome.ETooLarge, "reduce the data the model holds at once, or raise the engine's memory limit"
		case duckdbdriver.ErrorTypeBinder, duckdbdriver.ErrorTypeCatalog:
			hint = "check table and column names against the inputs' schemas"
		case duckdbdriver.ErrorTypeConversion:
			hint = "cast explicitly, e.g. TRY_CAST(x AS INTEGER), or fix the data"
		case duckdbdriver.ErrorTypeParser:
			hint = "fix the SQL syntax"
		}
	}
	return &rhizome.Error{Code: code, Message: fmt.Sprintf("model %s failed", m.Name),
		Problems: []rhizome.Problem{m.problemAt(path, line, col, msg, hint)}, Err: err}
}

var lineRE = regexp.MustCompile(`^LINE (\d+): ?(.*)$`)

// splitDuckError separates DuckDB's message from the "LINE n: ..." excerpt
// and caret it appends, and maps that excerpt back to a line and column of
// sql; skip is how many lines of the executed statement precede sql. DuckDB
// shortens long lines around the error with "...", so the column comes from
// finding the excerpt in the original line.
func splitDuckError(full, sql string, skip int) (msg string, line, col int) {
	lines := strings.Split(full, "\n")
	var keep []string
	for i := 0; i < len(lines); i++ {
		mm := lineRE.FindStringSubmatch(lines[i])
		if mm == nil {
			keep = append(keep, lines[i])
			continue
		}
		n, _ := strconv.Atoi(mm[1])
		excerpt := mm[2]
		caret := -1
		if i+1 < len(lines) {
			if j := strings.IndexByte(lines[i+1], '^'); j >= 0 {
				caret = j - (len(lines[i]) - len(excerpt))
				i++
			}
		}
		line = n - skip
		srcLines := strings.Split(sql, "\n")
		if line < 1 || line > len(srcLines) {
			line = 0
			continue
		}
		col = 0
		if caret >= 0 {
			src := srcLines[line-1]
			trimmed := strings.TrimPrefix(excerpt, "...")
			shift := len(excerpt) - len(trimmed)
			trimmed = strings.TrimSuffix(trimmed, "...")
			if k := strings.Index(src, trimmed); k >= 0 && caret-shift >= 0 {
				col = 1 + len([]rune(src[:min(len(src), k+caret-shift)]))
			}
		}
	}
	msg = strings.TrimSpace(strings.Join(keep, "\n"))
	return msg, line, col
}
