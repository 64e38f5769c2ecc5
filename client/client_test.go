package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/client"
)

// seen is what the fake server received.
type seen struct {
	method, path, query  string
	auth, ifMatch, ctype string
	body                 string
}

// fake serves one canned response and records the request.
func fake(t *testing.T, status int, resp string) (*client.Client, *seen) {
	t.Helper()
	var s seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s = seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("Authorization"),
			r.Header.Get("If-Match"), r.Header.Get("Content-Type"), string(b)}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, resp)
	}))
	t.Cleanup(srv.Close)
	return client.New(srv.URL+"/", "tok", srv.Client()), &s
}

func TestRoutes(t *testing.T) {
	ctx := context.Background()
	applyResult := `{"apply_id":"ap_1","dry_run":true,"summary":{"create":1},"changes":[{"action":"create","kind":"Domain","id":"sales","base_revision":0}]}`
	object := `{"kind":"DataProduct","id":"dp.sales.orders","revision":3,"manifest":{"id":"dp.sales.orders"},"labels":{"domain":"sales"}}`
	tests := []struct {
		name      string
		resp      string
		call      func(c *client.Client) (any, error)
		method    string
		path      string
		query     string
		ifMatch   string
		ctype     string
		body      string
		wantValue any
	}{
		{
			name: "apply", resp: applyResult,
			call: func(c *client.Client) (any, error) {
				res, err := c.Apply(ctx, rhizome.ApplyRequest{
					Files:    []rhizome.SourceFile{{Name: "a.yaml", Content: "kind: Domain\n"}},
					DryRun:   true,
					Expected: map[string]int64{"Domain/sales": 0},
				})
				if err != nil {
					return nil, err
				}
				return res.Changes[0].Key(), nil
			},
			method: "POST", path: "/api/v1/apply", ctype: "application/json",
			body:      `{"files":[{"name":"a.yaml","content":"kind: Domain\n"}],"dry_run":true,"expected":{"Domain/sales":0}}`,
			wantValue: "Domain/sales",
		},
		{
			name: "list", resp: `{"items":[` + object + `],"next":"dp.sales.orders"}`,
			call: func(c *client.Client) (any, error) {
				p, err := c.List(ctx, rhizome.KindDataProduct, client.ListOptions{Domain: "sales", Tag: "a b", OwnerTeam: "t", Sensitivity: "internal", Limit: 5, After: "x"})
				if err != nil {
					return nil, err
				}
				return p.Next, nil
			},
			method: "GET", path: "/api/v1/products",
			query:     "after=x&domain=sales&limit=5&owner_team=t&sensitivity=internal&tag=a+b",
			wantValue: "dp.sales.orders",
		},
		{
			name: "get", resp: object,
			call: func(c *client.Client) (any, error) {
				o, err := c.Get(ctx, rhizome.KindDataProduct, "dp.sales.orders")
				if err != nil {
					return nil, err
				}
				return o.Revision, nil
			},
			method: "GET", path: "/api/v1/products/dp.sales.orders", wantValue: int64(3),
		},
		{
			name: "put yaml with If-Match", resp: applyResult,
			call: func(c *client.Client) (any, error) {
				_, err := c.Put(ctx, rhizome.KindDomain, "sales", []byte("kind: Domain\n"), 3)
				return nil, err
			},
			method: "PUT", path: "/api/v1/domains/sales", ifMatch: `"3"`, ctype: "application/yaml", body: "kind: Domain\n",
		},
		{
			name: "put json unconditional", resp: applyResult,
			call: func(c *client.Client) (any, error) {
				_, err := c.Put(ctx, rhizome.KindDomain, "sales", []byte(` {"kind":"Domain"}`), 0)
				return nil, err
			},
			method: "PUT", path: "/api/v1/domains/sales", ctype: "application/json", body: ` {"kind":"Domain"}`,
		},
		{
			name: "delete", resp: applyResult,
			call: func(c *client.Client) (any, error) {
				_, err := c.Delete(ctx, rhizome.KindTeam, "sales team", 2)
				return nil, err
			},
			method: "DELETE", path: "/api/v1/teams/sales%20team", ifMatch: `"2"`,
		},
		{
			name: "history", resp: `{"items":[{"kind":"Domain","id":"sales","revision":1,"op":"create","actor":"admin","apply_id":"ap_1"}]}`,
			call: func(c *client.Client) (any, error) {
				h, err := c.History(ctx, rhizome.KindDomain, "sales")
				if err != nil {
					return nil, err
				}
				return h[0].Op, nil
			},
			method: "GET", path: "/api/v1/domains/sales/history", wantValue: rhizome.OpCreate,
		},
		{
			name: "versions", resp: `{"items":[{"product_id":"dp.a.b","version":"2.0.0","current":true}]}`,
			call: func(c *client.Client) (any, error) {
				v, err := c.Versions(ctx, "dp.a.b")
				if err != nil {
					return nil, err
				}
				return v[0].Version, nil
			},
			method: "GET", path: "/api/v1/products/dp.a.b/versions", wantValue: "2.0.0",
		},
		{
			name: "version", resp: `{"product_id":"dp.a.b","version":"1.0.0"}`,
			call: func(c *client.Client) (any, error) {
				v, err := c.Version(ctx, "dp.a.b", "1.0.0")
				if err != nil {
					return nil, err
				}
				return v.Version, nil
			},
			method: "GET", path: "/api/v1/products/dp.a.b/versions/1.0.0", wantValue: "1.0.0",
		},
		{
			name: "schemas", resp: `{"items":["Domain","Team"]}`,
			call:   func(c *client.Client) (any, error) { return c.Schemas(ctx) },
			method: "GET", path: "/api/v1/schemas", wantValue: []rhizome.Kind{"Domain", "Team"},
		},
		{
			name: "schema", resp: `{"type":"object"}`,
			call: func(c *client.Client) (any, error) {
				s, err := c.Schema(ctx, rhizome.KindInfrastructure)
				return string(s), err
			},
			method: "GET", path: "/api/v1/schemas/infrastructure", wantValue: `{"type":"object"}`,
		},
		{
			name: "whoami", resp: `{"id":"alice","kind":"user","admin":true,"teams":["t1"]}`,
			call: func(c *client.Client) (any, error) {
				p, err := c.WhoAmI(ctx)
				if err != nil {
					return nil, err
				}
				return p.Teams, nil
			},
			method: "GET", path: "/api/v1/whoami", wantValue: []string{"t1"},
		},
		{
			name: "create token", resp: `{"token":{"id":"tok_1","principal":"bob"},"secret":"rhz_s"}`,
			call: func(c *client.Client) (any, error) {
				nt, err := c.CreateToken(ctx, client.TokenRequest{Principal: "bob", Kind: rhizome.PrincipalUser, Name: "laptop", ExpiresIn: "720h"})
				if err != nil {
					return nil, err
				}
				return nt.Token.ID + " " + nt.Secret, nil
			},
			method: "POST", path: "/api/v1/tokens", ctype: "application/json",
			body:      `{"principal":"bob","kind":"user","name":"laptop","expires_in":"720h"}`,
			wantValue: "tok_1 rhz_s",
		},
		{
			name: "list tokens", resp: `{"items":[{"id":"tok_1","principal":"bob"}]}`,
			call: func(c *client.Client) (any, error) {
				ts, err := c.ListTokens(ctx)
				if err != nil {
					return nil, err
				}
				return ts[0].PrincipalID, nil
			},
			method: "GET", path: "/api/v1/tokens", wantValue: "bob",
		},
		{
			name: "revoke token", resp: ``,
			call:   func(c *client.Client) (any, error) { return nil, c.RevokeToken(ctx, "tok_1") },
			method: "DELETE", path: "/api/v1/tokens/tok_1",
		},
		{
			name: "principals", resp: `{"items":[{"id":"bob","kind":"user"}]}`,
			call: func(c *client.Client) (any, error) {
				ps, err := c.Principals(ctx)
				if err != nil {
					return nil, err
				}
				return ps[0].ID, nil
			},
			method: "GET", path: "/api/v1/principals", wantValue: "bob",
		},
		{
			name: "server version object", resp: `{"version":"v1.2.3","go":"go1.26"}`,
			call:   func(c *client.Client) (any, error) { return c.ServerVersion(ctx) },
			method: "GET", path: "/api/v1/version", wantValue: "v1.2.3",
		},
		{
			name: "server version string", resp: `"v1.2.3"`,
			call:   func(c *client.Client) (any, error) { return c.ServerVersion(ctx) },
			method: "GET", path: "/api/v1/version", wantValue: "v1.2.3",
		},
		{
			name: "ready", resp: `ok`,
			call:   func(c *client.Client) (any, error) { return nil, c.Ready(ctx) },
			method: "GET", path: "/readyz",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, s := fake(t, http.StatusOK, tt.resp)
			got, err := tt.call(c)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantValue != nil && !reflect.DeepEqual(got, tt.wantValue) {
				t.Errorf("value = %#v, want %#v", got, tt.wantValue)
			}
			want := seen{tt.method, tt.path, tt.query, "Bearer tok", tt.ifMatch, tt.ctype, tt.body}
			if *s != want {
				t.Errorf("request:\n got %+v\nwant %+v", *s, want)
			}
		})
	}
}

func TestErrorBody(t *testing.T) {
	body := `{"error":{"code":"invalid","message":"2 problems in the input","hint":"fix them",
		"problems":[{"file":"p.yaml","line":14,"col":5,"path":"spec.x","message":"bad","hint":"want y"}]}}`
	c, _ := fake(t, http.StatusUnprocessableEntity, body)
	_, err := c.Apply(context.Background(), rhizome.ApplyRequest{})
	var e *rhizome.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %T %v, want *rhizome.Error", err, err)
	}
	want := &rhizome.Error{Code: rhizome.EInvalid, Message: "2 problems in the input", Hint: "fix them",
		Problems: []rhizome.Problem{{Pos: rhizome.Pos{File: "p.yaml", Line: 14, Col: 5}, Path: "spec.x", Message: "bad", Hint: "want y"}}}
	if !reflect.DeepEqual(e, want) {
		t.Errorf("got %+v\nwant %+v", e, want)
	}
}

func TestStatusWithoutErrorBody(t *testing.T) {
	tests := []struct {
		status int
		code   rhizome.ErrorCode
	}{
		{400, rhizome.EInvalid}, {401, rhizome.EUnauthorized}, {403, rhizome.EForbidden},
		{404, rhizome.ENotFound}, {409, rhizome.EConflict}, {412, rhizome.EConflict},
		{413, rhizome.ETooLarge}, {502, rhizome.EUnavailable}, {503, rhizome.EUnavailable},
		{500, rhizome.EInternal}, {418, rhizome.EInternal},
	}
	for _, tt := range tests {
		c, _ := fake(t, tt.status, "plain text\nmore")
		_, err := c.Get(context.Background(), rhizome.KindDomain, "x")
		if got := rhizome.Code(err); got != tt.code {
			t.Errorf("status %d: code %q, want %q (%v)", tt.status, got, tt.code, err)
		}
		if !strings.Contains(err.Error(), "plain text") || strings.Contains(err.Error(), "more") {
			t.Errorf("status %d: message %q should hold the body's first line", tt.status, err)
		}
	}
}

func TestConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	c := client.New("http://"+addr, "", nil)
	err = c.Ready(context.Background())
	var e *rhizome.Error
	if !errors.As(err, &e) || e.Code != rhizome.EUnavailable {
		t.Fatalf("err = %v, want EUnavailable", err)
	}
	if !strings.Contains(e.Message, "connection refused") || !strings.Contains(e.Message, addr) {
		t.Errorf("message %q should say connection refused at %s", e.Message, addr)
	}
	if e.Hint != client.UnavailableHint {
		t.Errorf("hint %q", e.Hint)
	}
}

func TestCanceledContextIsNotUnavailable(t *testing.T) {
	c, _ := fake(t, 200, `{}`)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Ready(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestListAllFollowsCursors(t *testing.T) {
	pages := map[string]string{
		"":  `{"items":[{"kind":"Domain","id":"a"},{"kind":"Domain","id":"b"}],"next":"b"}`,
		"b": `{"items":[{"kind":"Domain","id":"c"}]}`,
	}
	var afters []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		after := r.URL.Query().Get("after")
		afters = append(afters, after)
		io.WriteString(w, pages[after])
	}))
	defer srv.Close()
	objs, err := client.New(srv.URL, "", nil).ListAll(context.Background(), rhizome.KindDomain, client.ListOptions{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, o := range objs {
		ids = append(ids, o.ID)
	}
	if strings.Join(ids, ",") != "a,b,c" || strings.Join(afters, ",") != ",b" {
		t.Errorf("ids %v, cursors %q", ids, afters)
	}
}

func TestNoTokenNoAuthorization(t *testing.T) {
	var auth []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Values("Authorization")
		json.NewEncoder(w).Encode(map[string]string{"version": "dev"})
	}))
	defer srv.Close()
	if _, err := client.New(srv.URL, "", nil).ServerVersion(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(auth) != 0 {
		t.Errorf("Authorization sent without a token: %q", auth)
	}
}
