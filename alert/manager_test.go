package alert_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/alert"
	"github.com/rhizome-mesh/rhizome/internal/testenv"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/metastore/postgres"
	"github.com/rhizome-mesh/rhizome/metastore/sqlite"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, false)) }

// onPostgres makes newFixture use a Postgres metastore (TestPostgres).
var onPostgres bool

// TestPostgres runs the state-keeping tests on the Postgres metastore,
// whose serializable transactions the claims must survive.
func TestPostgres(t *testing.T) {
	onPostgres = true
	defer func() { onPostgres = false }()
	t.Run("GroupsDeduplicatesAndResolves", TestWebhookGroupsDeduplicatesAndResolves)
	t.Run("Escalation", TestEscalationAlongThePath)
	t.Run("Ack", TestAckStopsEscalationAndRepeats)
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// receiver is a real HTTP webhook endpoint recording what it gets; status
// answers the requests in order (200 once they run out).
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []map[string]any
	status []int
}

func newReceiver(t *testing.T, status ...int) *receiver {
	r := &receiver{status: status}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil || req.Header.Get("Content-Type") != "application/json" {
			t.Errorf("receiver got %q (%s)", b, req.Header.Get("Content-Type"))
		}
		r.mu.Lock()
		r.bodies = append(r.bodies, m)
		code := 200
		if len(r.status) > 0 {
			code, r.status = r.status[0], r.status[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) got() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]any(nil), r.bodies...)
}

type fixture struct {
	t     *testing.T
	store metastore.Store
	clk   *clock
	m     *alert.Manager
	ctx   context.Context
}

func newFixture(t *testing.T, channel string, path []string, opt alert.Options) *fixture {
	t.Helper()
	ctx := context.Background()
	clk := &clock{t: t0}
	var st metastore.Store
	var err error
	if onPostgres {
		st, err = postgres.Open(ctx, testenv.NewDatabase(t), metastore.Options{Clock: clk})
	} else {
		st, err = sqlite.Open(ctx, filepath.Join(t.TempDir(), "m.db"), metastore.Options{Clock: clk})
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	team, _ := json.Marshal(rhizome.Team{APIVersion: rhizome.APIVersion, Kind: "Team", Name: "sales-team",
		CommunicationChannel: channel, EscalationPath: path})
	dp, _ := json.Marshal(rhizome.DataProduct{APIVersion: rhizome.APIVersion, Kind: "DataProduct", ID: "dp.sales.orders", OwnerTeam: "sales-team", Domain: "sales"})
	err = st.Update(ctx, func(tx metastore.Tx) error {
		if _, err := tx.Put(ctx, &rhizome.Object{Kind: rhizome.KindTeam, ID: "sales-team", Body: team}, 0, "test", "a1"); err != nil {
			return err
		}
		_, err := tx.Put(ctx, &rhizome.Object{Kind: rhizome.KindDataProduct, ID: "dp.sales.orders", Body: dp}, 0, "test", "a1")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	opt.Store, opt.Clock = st, clk
	if opt.RetryBackoff == 0 {
		opt.RetryBackoff = 5 * time.Millisecond
	}
	m := alert.New(opt)
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return &fixture{t: t, store: st, clk: clk, m: m, ctx: ctx}
}

// at moves the clock to t0+d and ticks, waiting for the deliveries.
func (f *fixture) at(d time.Duration) {
	f.t.Helper()
	f.clk.Set(t0.Add(d))
	if err := f.m.Tick(f.ctx); err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
	defer cancel()
	if err := f.m.Flush(ctx); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) fire(key, summary string, firing bool) {
	f.m.Observe(f.ctx, alert.Condition{Key: key, Kind: alert.KindRunFailed, ProductID: "dp.sales.orders",
		Severity: "critical", Summary: summary, Firing: firing})
}

func (f *fixture) history(key string) []string {
	f.t.Helper()
	evs, err := f.m.History(f.ctx, key)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		s := e.Type
		if e.Type == alert.EventNotify {
			s += ":" + e.Notice + ":" + e.Outcome
		}
		if e.Type == alert.EventEscalate {
			s += ":" + e.Channel
		}
		out = append(out, s)
	}
	return out
}

func keysOf(body map[string]any) []string {
	var out []string
	for _, a := range body["alerts"].([]any) {
		out = append(out, a.(map[string]any)["key"].(string))
	}
	return out
}

func TestWebhookGroupsDeduplicatesAndResolves(t *testing.T) {
	rcv := newReceiver(t)
	f := newFixture(t, rcv.URL, nil, alert.Options{GroupWait: 30 * time.Second})
	f.fire("run_failed/dp.sales.orders", "run failed", true)
	f.clk.Set(t0.Add(10 * time.Second))
	f.m.Observe(f.ctx, alert.Condition{Key: "stale/dp.sales.orders", Kind: alert.KindStale, ProductID: "dp.sales.orders", Summary: "data is 3h old", Firing: true})
	f.fire("run_failed/dp.sales.orders", "run failed again", true) // the same key: one alert

	f.at(20 * time.Second)
	if got := rcv.got(); len(got) != 0 {
		t.Fatalf("sent before the group wait: %v", got)
	}
	f.at(30 * time.Second)
	got := rcv.got()
	if len(got) != 1 {
		t.Fatalf("want one grouped notice, got %d: %v", len(got), got)
	}
	if got[0]["status"] != "firing" || got[0]["team"] != "sales-team" || strings.Join(keysOf(got[0]), ",") != "run_failed/dp.sales.orders,stale/dp.sales.orders" {
		t.Errorf("notice = %v", got[0])
	}

	// Still firing: no new notice (until the repeat interval).
	f.fire("run_failed/dp.sales.orders", "run failed", true)
	f.at(5 * time.Minute)
	if n := len(rcv.got()); n != 1 {
		t.Fatalf("a firing key notified again: %d notices", n)
	}

	f.fire("run_failed/dp.sales.orders", "", false)
	f.at(5*time.Minute + 30*time.Second)
	got = rcv.got()
	if len(got) != 2 || got[1]["status"] != "resolved" || strings.Join(keysOf(got[1]), ",") != "run_failed/dp.sales.orders" {
		t.Fatalf("resolved notice: %v", got)
	}
	a, err := f.m.Get(f.ctx, "run_failed/dp.sales.orders")
	if err != nil || a.State != alert.StateResolved || a.Notifications != 2 || a.Summary != "run failed" {
		t.Errorf("alert = %+v, %v", a, err)
	}
	want := "fire,notify:firing:delivered,resolve,notify:resolved:delivered"
	if h := strings.Join(f.history("run_failed/dp.sales.orders"), ","); h != want {
		t.Errorf("history = %s, want %s", h, want)
	}
	firing, _ := f.m.List(f.ctx, alert.Filter{State: alert.StateFiring})
	if len(firing) != 1 || firing[0].Key != "stale/dp.sales.orders" {
		t.Errorf("firing = %+v", firing)
	}

	// Fired again later: a new episode, notified again.
	f.clk.Set(t0.Add(time.Hour))
	f.fire("run_failed/dp.sales.orders", "run failed", true)
	f.at(time.Hour + 30*time.Second)
	if got := rcv.got(); len(got) != 3 || got[2]["status"] != "firing" {
		t.Errorf("a new episode: %v", got)
	}
}

func TestResolvedWithinGroupWaitSaysNothing(t *testing.T) {
	rcv := newReceiver(t)
	f := newFixture(t, rcv.URL, nil, alert.Options{GroupWait: 30 * time.Second})
	f.fire("k1", "flap", true)
	f.clk.Set(t0.Add(5 * time.Second))
	f.fire("k1", "", false)
	f.at(time.Minute)
	if got := rcv.got(); len(got) != 0 {
		t.Errorf("a flap was notified: %v", got)
	}
}

func TestSlackPayload(t *testing.T) {
	rcv := newReceiver(t)
	f := newFixture(t, "slack:"+rcv.URL, nil, alert.Options{GroupWait: time.Second})
	f.fire("run_failed/dp.sales.orders", "run failed: bad SQL", true)
	f.at(time.Second)
	got := rcv.got()
	if len(got) != 1 {
		t.Fatalf("got %v", got)
	}
	text, _ := got[0]["text"].(string)
	blocks, _ := got[0]["blocks"].([]any)
	if !strings.HasPrefix(text, "[FIRING] 1 alert for sales-team") || !strings.Contains(text, "run failed: bad SQL") || len(blocks) != 2 {
		t.Errorf("slack body = %v", got[0])
	}
}

func TestSlackChannelNameUsesDeploymentWebhook(t *testing.T) {
	rcv := newReceiver(t)
	f := newFixture(t, "slack:#sales-data", nil, alert.Options{GroupWait: time.Second, SlackWebhook: rcv.URL})
	f.fire("k", "x", true)
	f.at(time.Second)
	if got := rcv.got(); len(got) != 1 || got[0]["channel"] != "#sales-data" {
		t.Errorf("got %v", got)
	}
}

func TestUndeliverableChannelIsRecorded(t *testing.T) {
	f := newFixture(t, "#sales-data", nil, alert.Options{GroupWait: time.Second})
	f.fire("k", "x", true)
	f.at(time.Second)
	evs, _ := f.m.History(f.ctx, "k")
	last := evs[len(evs)-1]
	if last.Outcome != "undeliverable" || !strings.Contains(last.Error, "RHIZOME_SLACK_WEBHOOK") {
		t.Errorf("last event = %+v", last)
	}
}

func TestRetryOn5xxThenDelivered(t *testing.T) {
	rcv := newReceiver(t, 503, 502)
	f := newFixture(t, rcv.URL, nil, alert.Options{GroupWait: time.Second})
	f.fire("k", "x", true)
	f.at(time.Second)
	if n := len(rcv.got()); n != 3 {
		t.Fatalf("%d requests, want 3 (two 5xx, then 200)", n)
	}
	evs, _ := f.m.History(f.ctx, "k")
	last := evs[len(evs)-1]
	if last.Outcome != "delivered" || last.Attempts != 3 {
		t.Errorf("last event = %+v", last)
	}
}

func TestNoRetryOn4xx(t *testing.T) {
	rcv := newReceiver(t, 400, 400)
	f := newFixture(t, rcv.URL, nil, alert.Options{GroupWait: time.Second})
	f.fire("k", "x", true)
	f.at(time.Second)
	if n := len(rcv.got()); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
	evs, _ := f.m.History(f.ctx, "k")
	last := evs[len(evs)-1]
	if last.Outcome != "failed" || last.Attempts != 1 || !strings.Contains(last.Error, "400") {
		t.Errorf("last event = %+v", last)
	}
}

func TestRetriesAreBounded(t *testing.T) {
	rcv := newReceiver(t, 500, 500, 500, 500, 500)
	f := newFixture(t, rcv.URL, nil, alert.Options{GroupWait: time.Second, MaxAttempts: 3})
	f.fire("k", "x", true)
	f.at(time.Second)
	if n := len(rcv.got()); n != 3 {
		t.Fatalf("%d requests, want 3", n)
	}
}

func TestEscalationAlongThePath(t *testing.T) {
	team, lead, head := newReceiver(t), newReceiver(t), newReceiver(t)
	f := newFixture(t, team.URL, []string{lead.URL, head.URL}, alert.Options{GroupWait: 30 * time.Second, EscalationDelay: 30 * time.Minute})
	f.fire("k", "x", true)
	f.at(30 * time.Second) // first notice
	f.at(30*time.Minute + 29*time.Second)
	if len(lead.got()) != 0 {
		t.Fatal("escalated before the delay")
	}
	f.at(30*time.Minute + 30*time.Second)
	if got := lead.got(); len(got) != 1 || got[0]["notice"] != "escalation" || got[0]["escalation_level"] != float64(1) {
		t.Fatalf("lead got %v", got)
	}
	if len(head.got()) != 0 {
		t.Fatal("skipped a level")
	}
	f.at(time.Hour + 30*time.Second)
	if got := head.got(); len(got) != 1 || got[0]["escalation_level"] != float64(2) {
		t.Fatalf("head got %v", got)
	}
	f.at(3 * time.Hour) // the path is exhausted
	if len(lead.got()) != 1 || len(head.got()) != 1 {
		t.Error("escalated past the path")
	}
	a, _ := f.m.Get(f.ctx, "k")
	if a.EscalationLevel != 2 || len(a.EscalatedTo) != 2 {
		t.Errorf("alert = %+v", a)
	}
	// Resolved: the team hears of it.
	f.fire("k", "", false)
	f.at(3*time.Hour + 30*time.Second)
	if got := team.got(); got[len(got)-1]["status"] != "resolved" {
		t.Errorf("team got %v", got)
	}
}

func TestAckStopsEscalationAndRepeats(t *testing.T) {
	team, lead := newReceiver(t), newReceiver(t)
	f := newFixture(t, team.URL, []string{lead.URL}, alert.Options{GroupWait: 30 * time.Second, EscalationDelay: 30 * time.Minute, RepeatInterval: time.Hour})
	f.fire("k", "x", true)
	f.at(30 * time.Second)
	f.clk.Set(t0.Add(10 * time.Minute))
	a, err := f.m.Ack(f.ctx, "k", "bob@example.com", "looking")
	if err != nil || a.State != alert.StateAcknowledged || a.AckBy != "bob@example.com" {
		t.Fatalf("ack = %+v, %v", a, err)
	}
	f.at(5 * time.Hour)
	if len(lead.got()) != 0 || len(team.got()) != 1 {
		t.Errorf("after ack: lead %d, team %d notices", len(lead.got()), len(team.got()))
	}
	// Acknowledged alerts still resolve, with a notice.
	f.fire("k", "", false)
	f.at(6 * time.Hour)
	if got := team.got(); len(got) != 2 || got[1]["status"] != "resolved" {
		t.Errorf("team got %v", got)
	}
	if _, err := f.m.Ack(f.ctx, "k", "bob@example.com", ""); rhizome.Code(err) != rhizome.EConflict {
		t.Errorf("ack of a resolved alert: %v", err)
	}
	if _, err := f.m.Ack(f.ctx, "nope", "bob@example.com", ""); rhizome.Code(err) != rhizome.ENotFound {
		t.Errorf("ack of no alert: %v", err)
	}
	want := "fire,notify:firing:delivered,ack,resolve,notify:resolved:delivered"
	if h := strings.Join(f.history("k"), ","); h != want {
		t.Errorf("history = %s, want %s", h, want)
	}
}

func TestRepeatInterval(t *testing.T) {
	rcv := newReceiver(t)
	f := newFixture(t, rcv.URL, nil, alert.Options{GroupWait: time.Second, RepeatInterval: time.Hour})
	f.fire("k", "x", true)
	f.at(time.Second)
	f.at(time.Hour)
	f.at(time.Hour + time.Second)
	if got := rcv.got(); len(got) != 2 || got[1]["notice"] != "repeat" {
		t.Errorf("got %v", got)
	}
}

// smtpServer is a minimal SMTP server (RFC 5321 subset) that records one
// message per DATA.
type smtpServer struct {
	ln   net.Listener
	mu   sync.Mutex
	rcpt []string
	msgs []string
}

func newSMTPServer(t *testing.T) *smtpServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *smtpServer) serve(c net.Conn) {
	defer c.Close()
	tp := textproto.NewConn(c)
	_ = tp.PrintfLine("220 localhost ESMTP test")
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
		switch cmd {
		case "EHLO", "HELO":
			_ = tp.PrintfLine("250 localhost")
		case "MAIL":
			_ = tp.PrintfLine("250 ok")
		case "RCPT":
			s.mu.Lock()
			s.rcpt = append(s.rcpt, line)
			s.mu.Unlock()
			_ = tp.PrintfLine("250 ok")
		case "DATA":
			_ = tp.PrintfLine("354 go ahead")
			b, err := io.ReadAll(tp.DotReader())
			if err != nil {
				return
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, string(b))
			s.mu.Unlock()
			_ = tp.PrintfLine("250 queued")
		case "QUIT":
			_ = tp.PrintfLine("221 bye")
			return
		default:
			_ = tp.PrintfLine("250 ok")
		}
	}
}

func TestEmailOverSMTP(t *testing.T) {
	srv := newSMTPServer(t)
	f := newFixture(t, "mailto:sales@example.com", nil, alert.Options{GroupWait: time.Second,
		SMTP: &alert.SMTP{Addr: srv.ln.Addr().String(), From: "rhizome@example.com"}})
	f.fire("run_failed/dp.sales.orders", "run failed", true)
	f.at(time.Second)
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.msgs) != 1 || len(srv.rcpt) != 1 || !strings.Contains(srv.rcpt[0], "sales@example.com") {
		t.Fatalf("msgs %q, rcpt %q", srv.msgs, srv.rcpt)
	}
	if !strings.Contains(srv.msgs[0], "Subject: [Rhizome] [FIRING] 1 alert for sales-team") || !strings.Contains(srv.msgs[0], "run failed") {
		t.Errorf("mail = %s", srv.msgs[0])
	}
}

func TestParseTargets(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		smtp     bool
		slack    string
	}{
		{"https://example.com/h", "webhook https://example.com/h", false, ""},
		{"webhook:https://example.com/h", "webhook https://example.com/h", false, ""},
		{"https://hooks.slack.com/services/T/B/X", "slack https://hooks.slack.com/services/T/B/X", false, ""},
		{"slack:https://chat.example.com/h", "slack https://chat.example.com/h", false, ""},
		{"slack:#sales-data", "none #sales-data", false, ""},
		{"slack:#sales-data", "slack https://hooks.slack.com/x #sales-data", false, "https://hooks.slack.com/x"},
		{"#sales-data", "slack https://hooks.slack.com/x #sales-data", false, "https://hooks.slack.com/x"},
		{"mailto:team@example.com", "email team@example.com", true, ""},
		{"bob@example.com", "email bob@example.com", true, ""},
		{"bob@example.com", "none bob@example.com", false, ""},
		{"pagerduty:sales", "none", true, ""},
		{"", "none", true, ""},
		{"https://a.example.com/h, mailto:x@example.com", "webhook https://a.example.com/h|email x@example.com", true, ""},
	} {
		var got []string
		for _, tg := range alert.ParseTargets(tc.in, tc.slack, tc.smtp) {
			s := tg.Type
			for _, p := range []string{tg.URL, tg.Address, tg.SlackChannel} {
				if p != "" {
					s += " " + p
				}
			}
			if tg.Type == alert.ChannelNone && tg.Problem == "" {
				t.Errorf("%q: none without a problem", tc.in)
			}
			got = append(got, s)
		}
		if g := strings.Join(got, "|"); g != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, g, tc.want)
		}
	}
}

// TestTwoManagersNotifyOnce: two processes sharing a metastore claim each
// notice in a transaction, so the team hears once.
func TestTwoManagersNotifyOnce(t *testing.T) {
	rcv := newReceiver(t)
	f := newFixture(t, rcv.URL, nil, alert.Options{GroupWait: time.Second})
	other := alert.New(alert.Options{Store: f.store, Clock: f.clk, GroupWait: time.Second})
	f.fire("k", "x", true)
	f.clk.Set(t0.Add(time.Second))
	var wg sync.WaitGroup
	for _, m := range []*alert.Manager{f.m, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.Tick(f.ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// Close drains: the notice is delivered before it returns.
	if err := other.Close(f.ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.m.Close(f.ctx); err != nil {
		t.Fatal(err)
	}
	if got := rcv.got(); len(got) != 1 {
		t.Errorf("%d notices, want 1", len(got))
	}
}
