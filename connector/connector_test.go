package connector

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rhizome-mesh/rhizome"
)

type nopConn struct{ cfg map[string]any }

func (nopConn) Stage(context.Context, Env) (*Staged, error) { return &Staged{}, nil }

var testSpec = Spec{
	Name:    "test-registry",
	Summary: "A connector for the registry tests.",
	Fields: []Field{
		{Name: "path", Type: TypeString, Required: true, Doc: "Where the data is."},
		{Name: "header", Type: TypeBool, Default: true},
		{Name: "retries", Type: TypeInt, Default: 3},
		{Name: "timeout", Type: TypeDuration, Default: "30s"},
		{Name: "columns", Type: TypeList},
		{Name: "headers", Type: TypeMap},
		{Name: "dsn_secret", Type: TypeSecret},
	},
	New: func(cfg map[string]any) (Connector, error) { return nopConn{cfg}, nil },
}

func init() { Register(testSpec) }

func TestRegisterDuplicatePanics(t *testing.T) {
	defer func() {
		r := recover()
		if r == nil || !strings.Contains(r.(string), "twice") || !strings.Contains(r.(string), "test-registry") {
			t.Fatalf("recover() = %v, want a panic naming the duplicate", r)
		}
	}()
	Register(testSpec)
}

func TestRegisterIncompletePanics(t *testing.T) {
	for _, s := range []Spec{
		{Name: "", New: testSpec.New},
		{Name: "no-new"},
		{Name: "bad-type", New: testSpec.New, Fields: []Field{{Name: "x", Type: "float"}}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Register(%q) did not panic", s.Name)
				}
			}()
			Register(s)
		}()
	}
}

func TestLookupAndSpecs(t *testing.T) {
	if s, ok := Lookup("test-registry"); !ok || s.Summary != testSpec.Summary {
		t.Fatalf("Lookup = %v, %v", s.Name, ok)
	}
	if _, ok := Lookup("nope"); ok {
		t.Fatal("Lookup(nope) found something")
	}
	names := Names()
	if !slices.IsSorted(names) || !slices.Contains(names, "test-registry") {
		t.Fatalf("Names() = %v, want sorted and containing test-registry", names)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  map[string]any
		want []rhizome.Problem // Path, Message, Hint
	}{
		{"ok", map[string]any{"path": "a.csv", "header": false, "retries": 2, "timeout": "5s",
			"columns": []any{}, "headers": map[string]any{"a": "b"}, "dsn_secret": "env:PG"}, nil},
		{"json numbers are ints", map[string]any{"path": "a", "retries": float64(4)}, nil},
		{"yaml uint64", map[string]any{"path": "a", "retries": uint64(4)}, nil},
		{"misspelt", map[string]any{"path": "a", "heder": true}, []rhizome.Problem{
			{Path: "config.heder", Message: "unknown field `heder` for connector test-registry", Hint: "did you mean `header`?"}}},
		{"unknown far off", map[string]any{"path": "a", "zzzzzz": 1}, []rhizome.Problem{
			{Path: "config.zzzzzz", Message: "unknown field `zzzzzz` for connector test-registry",
				Hint: "want one of: `path`, `header`, `retries`, `timeout`, `columns`, `headers`, `dsn_secret`"}}},
		{"missing required", map[string]any{}, []rhizome.Problem{
			{Path: "config.path", Message: "connector test-registry needs `path`", Hint: "Where the data is."}}},
		{"wrong types", map[string]any{"path": 3, "header": "yes", "retries": 1.5, "timeout": "soon",
			"columns": "a,b", "headers": []any{"x"}}, []rhizome.Problem{
			{Path: "config.columns", Message: `want a list, got "a,b"`},
			{Path: "config.header", Message: `want true or false, got "yes"`},
			{Path: "config.headers", Message: "want a map, got a list"},
			{Path: "config.path", Message: "want a string, got 3"},
			{Path: "config.retries", Message: "want a whole number, got 1.5"},
			{Path: "config.timeout", Message: `"soon" is not a duration`, Hint: `write e.g. "30s", "500ms" or "2m"`},
		}},
		{"secret written inline", map[string]any{"path": "a", "dsn_secret": "postgres://u:hunter2@db/x"}, []rhizome.Problem{
			{Path: "config.dsn_secret", Message: "not a secret reference", Hint: "write `env:NAME` or `file:/path`, not the secret itself"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := testSpec.Validate(tt.cfg)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Validate:\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	c, err := Open("test-registry", map[string]any{"path": "a"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := c.(nopConn).cfg
	if cfg["header"] != true || cfg["retries"] != 3 || cfg["timeout"] != "30s" || cfg["path"] != "a" {
		t.Errorf("defaults not applied: %v", cfg)
	}
	_, err = Open("test-registy", nil)
	if rhizome.Code(err) != rhizome.EInvalid || !strings.Contains(err.Error(), "did you mean `test-registry`?") {
		t.Errorf("Open(misspelt) = %v", err)
	}
	_, err = Open("test-registry", map[string]any{"path": "a", "retries": "x"})
	if ps := rhizome.ProblemsOf(err); len(ps) != 1 || ps[0].Path != "config.retries" {
		t.Errorf("Open(bad config) = %v", err)
	}
}

func TestColumns(t *testing.T) {
	cols, err := Config{"columns": []any{
		map[string]any{"name": "id", "type": "bigint", "required": true},
		map[string]any{"name": "note", "type": "VARCHAR"},
	}}.Columns("columns")
	if err != nil {
		t.Fatal(err)
	}
	want := []Column{{"id", "BIGINT", true}, {"note", "VARCHAR", false}}
	if !slices.Equal(cols, want) {
		t.Errorf("Columns = %v, want %v", cols, want)
	}
	_, err = Config{"columns": []any{
		map[string]any{"name": "id", "typ": "bigint"},
		"x",
		map[string]any{"name": "id", "type": "int", "required": "yes"},
	}}.Columns("columns")
	got := []string{}
	for _, p := range rhizome.ProblemsOf(err) {
		got = append(got, p.String())
	}
	want2 := []string{
		"config.columns[0].typ: unknown field `typ` (hint: did you mean `type`?)",
		"config.columns[0].type: a column needs a type (hint: a DuckDB type such as VARCHAR, BIGINT, DOUBLE, DECIMAL(18,2), BOOLEAN, DATE, TIMESTAMPTZ)",
		`config.columns[1]: want {name, type, required}, got "x"`,
		"config.columns[2].required: want true or false, got \"yes\"",
		"config.columns[2].name: column `id` is declared twice",
	}
	if !slices.Equal(got, want2) {
		t.Errorf("Columns problems:\n got %q\nwant %q", got, want2)
	}
}

func TestSecrets(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	file := filepath.Join(dir, "dsn")
	if err := os.WriteFile(file, []byte("postgres://u:hunter2@db/x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(outside, []byte("root:x:0:0"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	s := Secrets{Env: EnvSecrets{Getenv: func(k string) string {
		switch k {
		case "PG_DSN":
			return "from-env"
		case "HOME":
			return "/root"
		}
		return ""
	}}, File: FileSecrets{Dir: dir}}
	for _, tt := range []struct {
		ref, want string
		code      rhizome.ErrorCode
	}{
		{"env:PG_DSN", "from-env", ""},
		{"file:" + file, "postgres://u:hunter2@db/x", ""},
		{"env:MISSING", "", rhizome.EInvalid},
		{"file:" + filepath.Join(dir, "nope"), "", rhizome.EInvalid},
		{"vault:secret/x", "", rhizome.EInvalid},
		{"file:" + outside, "", rhizome.EForbidden},
		{"file:" + dir + "/../" + filepath.Base(filepath.Dir(outside)) + "/passwd", "", rhizome.EForbidden},
		{"file:" + filepath.Join(dir, "link"), "", rhizome.EForbidden},
		{"file:dsn", "", rhizome.EForbidden},
		{"hunter2", "", rhizome.EInvalid},
	} {
		got, err := s.Secret(ctx, tt.ref)
		if got != tt.want || rhizome.Code(err) != tt.code {
			t.Errorf("Secret(%q) = %q, %v; want %q, code %q", tt.ref, got, err, tt.want, tt.code)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Secret(%q) error shows the secret: %v", tt.ref, err)
		}
	}
	prefixed := EnvSecrets{Prefix: "RHIZOME_SECRET_", Getenv: func(k string) string { return "v-" + k }}
	if v, err := prefixed.Secret(ctx, "env:RHIZOME_SECRET_PG"); v != "v-RHIZOME_SECRET_PG" || err != nil {
		t.Errorf("prefixed: %q, %v", v, err)
	}
	if _, err := prefixed.Secret(ctx, "env:HOME"); rhizome.Code(err) != rhizome.EForbidden {
		t.Errorf("prefixed HOME: %v", err)
	}
	if _, err := (FileSecrets{}).Secret(ctx, "file:"+file); rhizome.Code(err) != rhizome.EForbidden {
		t.Errorf("FileSecrets without Dir: %v", err)
	}
	if _, err := ResolveSecret(ctx, Env{}, "env:X"); rhizome.Code(err) != rhizome.EInternal {
		t.Errorf("ResolveSecret without resolver = %v", err)
	}
}
