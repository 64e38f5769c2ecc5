package metastoretest

import (
	"fmt"
	"testing"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/metastore"
)

func (e *env) putVersion(v rhizome.ProductVersion) rhizome.ProductVersion {
	e.t.Helper()
	e.mustUpdate(func(tx metastore.Tx) error { return tx.PutVersion(e.ctx, &v) })
	return v
}

func testProductVersions(t *testing.T, e *env) {
	const dp = "dp.orders"
	at1 := e.now()
	v1 := e.putVersion(rhizome.ProductVersion{ProductID: dp, Version: "1.0.0", Current: true, Revision: 1, Body: []byte(`{"v":"1.0.0"}`)})
	wantTime(t, "PutVersion's CreatedAt", v1.CreatedAt, at1)
	at2 := e.tick()
	e.putVersion(rhizome.ProductVersion{ProductID: dp, Version: "2.0.0", Current: true, Revision: 3, Body: []byte(`{"v":"2.0.0"}`)})
	// Another product's versions are separate.
	e.putVersion(rhizome.ProductVersion{ProductID: "dp.other", Version: "1.0.0", Current: true, Revision: 1})

	check := func(when string, want ...rhizome.ProductVersion) {
		t.Helper()
		got, err := e.s.Versions(e.ctx, dp)
		if err != nil {
			t.Fatalf("%s: Versions: %v", when, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: Versions = %+v, want %d", when, got, len(want))
		}
		for i, w := range want {
			g := got[i]
			if g.ProductID != w.ProductID || g.Version != w.Version || g.Current != w.Current ||
				g.Revision != w.Revision || string(g.Body) != string(w.Body) {
				t.Errorf("%s: Versions[%d] = %+v (body %s), want %+v (body %s)", when, i, g, g.Body, w, w.Body)
			}
			wantTime(t, fmt.Sprintf("%s: Versions[%d].CreatedAt", when, i), g.CreatedAt, w.CreatedAt)
			one, err := e.s.Version(e.ctx, dp, w.Version)
			if err != nil || one.Current != w.Current || one.Revision != w.Revision {
				t.Errorf("%s: Version(%s) = %+v, %v", when, w.Version, one, err)
			}
		}
	}
	v1want := rhizome.ProductVersion{ProductID: dp, Version: "1.0.0", Revision: 1, Body: []byte(`{"v":"1.0.0"}`), CreatedAt: at1}
	v2want := rhizome.ProductVersion{ProductID: dp, Version: "2.0.0", Current: true, Revision: 3, Body: []byte(`{"v":"2.0.0"}`), CreatedAt: at2}
	check("after 2.0.0", v2want, v1want)

	// Re-declaring 1.0.0 as a previous version without a revision or body
	// keeps what was stored, and its CreatedAt.
	e.tick()
	e.putVersion(rhizome.ProductVersion{ProductID: dp, Version: "1.0.0"})
	check("after re-declaring 1.0.0", v2want, v1want)

	// Rolling back: 1.0.0 current again moves the flag.
	e.tick()
	back := e.putVersion(rhizome.ProductVersion{ProductID: dp, Version: "1.0.0", Current: true, Revision: 5})
	if back.Revision != 5 || string(back.Body) != `{"v":"1.0.0"}` {
		t.Errorf("PutVersion returned %+v", back)
	}
	v1want.Current, v1want.Revision = true, 5
	v2want.Current = false
	check("after rollback", v2want, v1want)

	if vs, err := e.s.Versions(e.ctx, "dp.other"); err != nil || len(vs) != 1 || !vs[0].Current {
		t.Errorf("other product's versions = %+v, %v", vs, err)
	}
	_, err := e.s.Version(e.ctx, dp, "9.9.9")
	wantCode(t, err, rhizome.ENotFound, "9.9.9")
	if vs, err := e.s.Versions(e.ctx, "dp.none"); err != nil || len(vs) != 0 {
		t.Errorf("Versions of an unknown product = %v, %v; want empty", vs, err)
	}
	err = e.update(func(tx metastore.Tx) error { return tx.PutVersion(e.ctx, &rhizome.ProductVersion{ProductID: dp}) })
	wantCode(t, err, rhizome.EInvalid)
}

func testPrincipals(t *testing.T, e *env) {
	at := e.now()
	e.mustUpdate(func(tx metastore.Tx) error {
		for _, p := range []rhizome.Principal{
			{ID: "svc-ingest", Kind: rhizome.PrincipalService},
			{ID: "alice@example.com", Kind: rhizome.PrincipalUser, Admin: true},
		} {
			if err := tx.PutPrincipal(e.ctx, &p); err != nil {
				return err
			}
			wantTime(t, "PutPrincipal's CreatedAt", p.CreatedAt, at)
		}
		return nil
	})
	e.tick()
	// Update keeps CreatedAt.
	e.mustUpdate(func(tx metastore.Tx) error {
		p := rhizome.Principal{ID: "svc-ingest", Kind: rhizome.PrincipalService, Admin: true}
		if err := tx.PutPrincipal(e.ctx, &p); err != nil {
			return err
		}
		wantTime(t, "CreatedAt after update", p.CreatedAt, at)
		return nil
	})
	p, err := e.s.GetPrincipal(e.ctx, "svc-ingest")
	if err != nil || p.Kind != rhizome.PrincipalService || !p.Admin {
		t.Fatalf("GetPrincipal = %+v, %v", p, err)
	}
	wantTime(t, "GetPrincipal CreatedAt", p.CreatedAt, at)
	ps, err := e.s.ListPrincipals(e.ctx)
	if err != nil || len(ps) != 2 || ps[0].ID != "alice@example.com" || ps[1].ID != "svc-ingest" || !ps[0].Admin {
		t.Errorf("ListPrincipals = %+v, %v", ps, err)
	}
	_, err = e.s.GetPrincipal(e.ctx, "nobody")
	wantCode(t, err, rhizome.ENotFound, "nobody")
	err = e.update(func(tx metastore.Tx) error {
		return tx.PutPrincipal(e.ctx, &rhizome.Principal{ID: "x", Kind: "robot"})
	})
	wantCode(t, err, rhizome.EInvalid, "robot")
}

func testTokens(t *testing.T, e *env) {
	e.mustUpdate(func(tx metastore.Tx) error {
		for _, id := range []string{"alice", "bob"} {
			if err := tx.PutPrincipal(e.ctx, &rhizome.Principal{ID: id, Kind: rhizome.PrincipalUser}); err != nil {
				return err
			}
		}
		return nil
	})
	create := func(tok rhizome.Token) error {
		return e.update(func(tx metastore.Tx) error { return tx.CreateToken(e.ctx, &tok) })
	}
	expires := time.Date(2026, 1, 2, 3, 4, 5, 999999999, time.FixedZone("X", -7200))
	at1 := e.tick()
	if err := create(rhizome.Token{ID: "tok_a1", PrincipalID: "alice", Name: "laptop", Hash: "h-a1", ExpiresAt: &expires}); err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	at2 := e.tick()
	for _, tok := range []rhizome.Token{
		{ID: "tok_a2", PrincipalID: "alice", Hash: "h-a2"},
		{ID: "tok_b1", PrincipalID: "bob", Hash: "h-b1"},
	} {
		if err := create(tok); err != nil {
			t.Fatalf("CreateToken %s: %v", tok.ID, err)
		}
	}

	tok, err := e.s.TokenByHash(e.ctx, "h-a1")
	if err != nil || tok.ID != "tok_a1" || tok.PrincipalID != "alice" || tok.Name != "laptop" || tok.Hash != "h-a1" || tok.RevokedAt != nil {
		t.Fatalf("TokenByHash = %+v, %v", tok, err)
	}
	wantTime(t, "token CreatedAt", tok.CreatedAt, at1)
	if tok.ExpiresAt == nil {
		t.Fatalf("token ExpiresAt is nil")
	}
	wantTime(t, "token ExpiresAt", *tok.ExpiresAt, Stored(expires))
	_, err = e.s.TokenByHash(e.ctx, "h-none")
	wantCode(t, err, rhizome.ENotFound)

	// Duplicates and unknown principals.
	wantCode(t, create(rhizome.Token{ID: "tok_a1", PrincipalID: "alice", Hash: "h-new"}), rhizome.EConflict, "tok_a1")
	wantCode(t, create(rhizome.Token{ID: "tok_new", PrincipalID: "bob", Hash: "h-a1"}), rhizome.EConflict, "hash")
	wantCode(t, create(rhizome.Token{ID: "tok_x", PrincipalID: "nobody", Hash: "h-x"}), rhizome.ENotFound, "nobody")
	wantCode(t, create(rhizome.Token{ID: "tok_y", PrincipalID: "alice"}), rhizome.EInvalid)

	list := func(principal string) []string {
		t.Helper()
		toks, err := e.s.ListTokens(e.ctx, principal)
		if err != nil {
			t.Fatalf("ListTokens(%q): %v", principal, err)
		}
		var out []string
		for _, tk := range toks {
			out = append(out, tk.ID)
			if tk.ID == "tok_a2" {
				wantTime(t, "tok_a2 CreatedAt", tk.CreatedAt, at2)
			}
		}
		return out
	}
	if got := list("alice"); !equalStrings(got, []string{"tok_a1", "tok_a2"}) {
		t.Errorf("ListTokens(alice) = %v", got)
	}
	if got := list("carol"); len(got) != 0 {
		t.Errorf("ListTokens(carol) = %v", got)
	}
	if got := list(""); !equalStrings(got, []string{"tok_a1", "tok_a2", "tok_b1"}) {
		t.Errorf("ListTokens(\"\") = %v", got)
	}

	// Revoke: the clock's time; a second revoke keeps the first time; the
	// token is still found by hash (the caller decides).
	revoked := e.tick()
	if err := e.update(func(tx metastore.Tx) error { return tx.RevokeToken(e.ctx, "tok_a1") }); err != nil {
		t.Fatalf("RevokeToken: %v", err)
	}
	e.tick()
	if err := e.update(func(tx metastore.Tx) error { return tx.RevokeToken(e.ctx, "tok_a1") }); err != nil {
		t.Fatalf("RevokeToken again: %v", err)
	}
	tok, err = e.s.TokenByHash(e.ctx, "h-a1")
	if err != nil || tok.RevokedAt == nil {
		t.Fatalf("revoked token = %+v, %v", tok, err)
	}
	wantTime(t, "RevokedAt", *tok.RevokedAt, revoked)
	wantCode(t, e.update(func(tx metastore.Tx) error { return tx.RevokeToken(e.ctx, "tok_none") }), rhizome.ENotFound, "tok_none")
}

func testTeamsOf(t *testing.T, e *env) {
	team := func(id string, members ...string) *rhizome.Object {
		return newObject(rhizome.KindTeam, id, rhizome.Labels{Members: members})
	}
	e.mustPut(team("team-b", "alice", "bob"), 0)
	e.mustPut(team("team-a", "alice"), 0)
	e.mustPut(team("team-c", "bob"), 0)
	// Members of another kind are not team membership.
	e.mustPut(newObject(rhizome.KindDomain, "dom", rhizome.Labels{Members: []string{"alice"}}), 0)

	teams := func(p string) []string {
		t.Helper()
		got, err := e.s.TeamsOf(e.ctx, p)
		if err != nil {
			t.Fatalf("TeamsOf(%s): %v", p, err)
		}
		return got
	}
	if got := teams("alice"); !equalStrings(got, []string{"team-a", "team-b"}) {
		t.Errorf("TeamsOf(alice) = %v", got)
	}
	if got := teams("nobody"); len(got) != 0 {
		t.Errorf("TeamsOf(nobody) = %#v, want empty", got)
	}
	// Membership follows updates and deletes.
	e.mustPut(team("team-b", "bob"), 1)
	if err := e.del(rhizome.KindTeam, "team-a", 1, "x", ""); err != nil {
		t.Fatal(err)
	}
	if got := teams("alice"); len(got) != 0 {
		t.Errorf("TeamsOf(alice) after removal = %v", got)
	}
	if got := teams("bob"); !equalStrings(got, []string{"team-b", "team-c"}) {
		t.Errorf("TeamsOf(bob) = %v", got)
	}
	// Inside a transaction, TeamsOf sees its writes.
	e.mustUpdate(func(tx metastore.Tx) error {
		if _, err := tx.Put(e.ctx, team("team-d", "alice"), 0, "x", ""); err != nil {
			return err
		}
		got, err := tx.TeamsOf(e.ctx, "alice")
		if err != nil || !equalStrings(got, []string{"team-d"}) {
			t.Errorf("TeamsOf in the transaction = %v, %v", got, err)
		}
		return nil
	})
}
