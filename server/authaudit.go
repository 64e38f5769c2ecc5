package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/audit"
)

// Failed authentications (a missing, malformed, unknown, expired or
// revoked token, on REST or on the SQL endpoint) are audited as
// "auth.failed" deny entries. Unauthenticated clients must not be able to
// flood the audit log: each source (a REST client's IP, or the SQL
// endpoint) gets at most authFailBurst entries a minute, and the first
// refusal past that writes one "auth.failed.suppressed" entry for the
// rest of the minute.

const authFailBurst = 20

type authAuditor struct {
	rec   audit.Recorder
	clock rhizome.Clock

	mu     sync.Mutex
	window time.Time
	counts map[string]int
}

func newAuthAuditor(rec audit.Recorder, clock rhizome.Clock) *authAuditor {
	if rec == nil {
		return nil
	}
	return &authAuditor{rec: rec, clock: clock, counts: map[string]int{}}
}

// failed records one failed authentication from source over via.
func (a *authAuditor) failed(ctx context.Context, source, via string, cause error) {
	if a == nil {
		return
	}
	now := a.clock.Now()
	a.mu.Lock()
	if w := now.Truncate(time.Minute); !w.Equal(a.window) {
		a.window, a.counts = w, map[string]int{}
	}
	a.counts[source]++
	n := a.counts[source]
	a.mu.Unlock()
	action := "auth.failed"
	switch {
	case n == authFailBurst+1:
		action = "auth.failed.suppressed"
	case n > authFailBurst:
		return
	}
	e := audit.Entry{At: now, Actor: "anonymous", Action: action, Via: via, Decision: audit.Deny,
		Reason: messageOf(cause), Details: map[string]any{"source": source}}
	if action == "auth.failed.suppressed" {
		e.Reason = "more failed authentications from this source this minute are not recorded"
	}
	_ = a.rec.Record(context.WithoutCancel(ctx), e)
}

// messageOf is an error's message without its hint.
func messageOf(err error) string {
	var re *rhizome.Error
	if errors.As(err, &re) {
		return re.Message
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

// remoteIP is the client address of a request, without its port.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
