package alert

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/metastore"
)

// Options configure a Manager. Zero fields take the defaults named.
type Options struct {
	Store  metastore.Store
	Clock  rhizome.Clock // nil: rhizome.SystemClock
	Logger *slog.Logger  // nil discards
	// Registry, if set, receives rhizome_alerts_firing and
	// rhizome_alert_notifications_total.
	Registry *prometheus.Registry

	// GroupWait is how long a new alert waits for others of its team to
	// go out in one notification (default 30s); resolved notices wait as
	// long.
	GroupWait time.Duration
	// RepeatInterval is how often a firing, unacknowledged alert is sent
	// again (default 4h).
	RepeatInterval time.Duration
	// EscalationDelay is how long an unacknowledged alert waits before
	// the next entry of the team's escalation_path is notified
	// (default 30m), after the first notice and after each escalation.
	EscalationDelay time.Duration

	// MaxAttempts bounds the tries of one delivery (default 5); the wait
	// before a retry starts at RetryBackoff (default 1s) and doubles, at
	// most 1 minute. 4xx answers other than 408 and 429 are not retried.
	MaxAttempts  int
	RetryBackoff time.Duration
	HTTPClient   *http.Client  // default: a client of its own
	HTTPTimeout  time.Duration // per attempt, default 10s

	// SlackWebhook is the deployment's Slack incoming webhook, used for
	// channels written as "#name" or "slack:#name".
	SlackWebhook string
	// SMTP, if set, sends email targets.
	SMTP *SMTP
}

func (o Options) withDefaults() Options {
	if o.Clock == nil {
		o.Clock = rhizome.SystemClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.GroupWait <= 0 {
		o.GroupWait = 30 * time.Second
	}
	if o.RepeatInterval <= 0 {
		o.RepeatInterval = 4 * time.Hour
	}
	if o.EscalationDelay <= 0 {
		o.EscalationDelay = 30 * time.Minute
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = time.Second
	}
	if o.HTTPClient == nil {
		// Its own transport, so that Close can drop its idle connections.
		o.HTTPClient = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	if o.HTTPTimeout <= 0 {
		o.HTTPTimeout = 10 * time.Second
	}
	return o
}

// Manager keeps alert state in the metastore and delivers notices. Observe
// records conditions; Tick (called periodically, or by Start's loop) sends
// what is due: grouped first notices, repeats, escalations and resolved
// notices. Decisions are made from the stored records, claimed in a
// transaction, so several processes sharing a metastore do not send twice.
type Manager struct {
	opt   Options
	store metastore.Store
	log   *slog.Logger

	queue   chan job
	pending sync.WaitGroup
	mu      sync.Mutex
	closed  bool
	workers sync.WaitGroup
	stop    context.CancelFunc
	runCtx  context.Context
	loop    sync.WaitGroup

	firing        *prometheus.GaugeVec
	notifications *prometheus.CounterVec
}

type job struct {
	target Target
	n      Notification
}

// New returns a Manager with its delivery worker running; Close stops it.
func New(opt Options) *Manager {
	opt = opt.withDefaults()
	m := &Manager{opt: opt, store: opt.Store, log: opt.Logger, queue: make(chan job, 1024),
		firing: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "rhizome_alerts_firing",
			Help: "Alerts whose condition holds (firing or acknowledged), by team and kind."}, []string{"team", "kind"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rhizome_alert_notifications_total",
			Help: "Alert notifications by channel type and outcome (delivered, failed, undeliverable)."}, []string{"channel_type", "outcome"}),
	}
	if opt.Registry != nil {
		opt.Registry.MustRegister(m.firing, m.notifications)
	}
	m.runCtx, m.stop = context.WithCancel(context.Background())
	m.workers.Add(1)
	go m.worker()
	return m
}

// Start calls Tick every interval until Close.
func (m *Manager) Start(every time.Duration) {
	m.loop.Add(1)
	go func() {
		defer m.loop.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-m.runCtx.Done():
				return
			case <-t.C:
				if err := m.Tick(m.runCtx); err != nil && m.runCtx.Err() == nil {
					m.log.Warn("alerts: tick", "err", err)
				}
			}
		}
	}()
}

// Close stops ticking and drains the delivery queue, waiting at most until
// ctx is done (then the deliveries in flight are abandoned).
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.mu.Unlock()
	done := make(chan struct{})
	go func() {
		m.pending.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	m.stop()
	m.loop.Wait()
	close(m.queue)
	m.workers.Wait()
	m.opt.HTTPClient.CloseIdleConnections()
	return err
}

// Flush waits until every queued delivery has ended (delivered or given
// up), or ctx is done.
func (m *Manager) Flush(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		m.pending.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Observe records a condition: a firing condition whose key is not active
// starts an alert (notified after GroupWait); one already active changes
// nothing (de-duplication); a cleared condition resolves its alert. Errors
// are logged, never returned: the caller's work goes on.
func (m *Manager) Observe(ctx context.Context, c Condition) {
	if err := m.observe(ctx, c); err != nil {
		m.log.Warn("alerts: recording a condition", "key", c.Key, "err", err)
	}
}

func (m *Manager) observe(ctx context.Context, c Condition) error {
	if c.Key == "" {
		return rhizome.Errorf(rhizome.EInvalid, "a condition needs a key")
	}
	ctx = context.WithoutCancel(ctx)
	now := m.opt.Clock.Now()
	at := c.At
	if at.IsZero() {
		at = now
	}
	cur, err := m.store.GetRecord(ctx, CollectionAlert, c.Key)
	if err != nil && rhizome.Code(err) != rhizome.ENotFound {
		return err
	}
	active := cur != nil && (cur.State == StateFiring || cur.State == StateAcknowledged)
	if c.Firing == active {
		return nil // already firing, or nothing to resolve
	}
	team := ""
	if c.ProductID != "" {
		team = m.ownerTeam(ctx, c.ProductID)
	}
	return m.store.Update(ctx, func(tx metastore.Tx) error {
		rec, err := tx.GetRecord(ctx, CollectionAlert, c.Key)
		if err != nil && rhizome.Code(err) != rhizome.ENotFound {
			return err
		}
		var a Alert
		if rec != nil {
			_ = json.Unmarshal(rec.Body, &a)
		}
		isActive := rec != nil && (a.State == StateFiring || a.State == StateAcknowledged)
		if c.Firing == isActive {
			return nil
		}
		ev := Event{Key: c.Key, At: now, ProductID: c.ProductID}
		if c.Firing {
			a = Alert{Key: c.Key, Kind: c.Kind, ProductID: c.ProductID, Team: team, Severity: c.Severity,
				Summary: c.Summary, Details: c.Details, State: StateFiring, FiredAt: at}
			ev.Type = EventFire
		} else {
			a.State = StateResolved
			a.ResolvedAt = &at
			ev.Type = EventResolve
		}
		ev.Team = a.Team
		if ev.ProductID == "" {
			ev.ProductID = a.ProductID
		}
		if err := putAlert(ctx, tx, &a, now); err != nil {
			return err
		}
		return insertEvent(ctx, tx, ev)
	})
}

// Ack acknowledges a firing alert: no more repeats or escalations. EConflict
// when it is resolved; acknowledging twice keeps the first.
func (m *Manager) Ack(ctx context.Context, key, by, note string) (*Alert, error) {
	now := m.opt.Clock.Now()
	var out Alert
	err := m.store.Update(ctx, func(tx metastore.Tx) error {
		rec, err := tx.GetRecord(ctx, CollectionAlert, key)
		if err != nil {
			if rhizome.Code(err) == rhizome.ENotFound {
				return rhizome.Errorf(rhizome.ENotFound, "no alert %q", key).WithHint("list them with: rhizome alerts")
			}
			return err
		}
		if err := json.Unmarshal(rec.Body, &out); err != nil {
			return rhizome.Wrap(err, "reading alert %s", key)
		}
		switch out.State {
		case StateResolved:
			return rhizome.Errorf(rhizome.EConflict, "alert %q is resolved; nothing to acknowledge", key)
		case StateAcknowledged:
			return nil
		}
		out.State, out.AckBy, out.AckAt, out.AckNote = StateAcknowledged, by, &now, note
		if err := putAlert(ctx, tx, &out, now); err != nil {
			return err
		}
		return insertEvent(ctx, tx, Event{Key: key, Type: EventAck, At: now, ProductID: out.ProductID, Team: out.Team, By: by, Note: note})
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Get returns one alert, or ENotFound.
func (m *Manager) Get(ctx context.Context, key string) (*Alert, error) {
	rec, err := m.store.GetRecord(ctx, CollectionAlert, key)
	if err != nil {
		if rhizome.Code(err) == rhizome.ENotFound {
			return nil, rhizome.Errorf(rhizome.ENotFound, "no alert %q", key).WithHint("list them with: rhizome alerts")
		}
		return nil, err
	}
	var a Alert
	if err := json.Unmarshal(rec.Body, &a); err != nil {
		return nil, rhizome.Wrap(err, "reading alert %s", key)
	}
	return &a, nil
}

// Filter selects alerts; empty fields do not filter.
type Filter struct {
	State, ProductID, Team string
	Limit                  int // default 100, at most 10000
}

// List returns alerts, most recently changed first.
func (m *Manager) List(ctx context.Context, f Filter) ([]Alert, error) {
	recs, err := m.store.ListRecords(ctx, metastore.RecordQuery{Collection: CollectionAlert, State: f.State,
		ProductID: f.ProductID, Subject: f.Team, Desc: true, Limit: f.Limit})
	if err != nil {
		return nil, err
	}
	out := make([]Alert, 0, len(recs))
	for _, r := range recs {
		var a Alert
		if json.Unmarshal(r.Body, &a) == nil {
			out = append(out, a)
		}
	}
	return out, nil
}

// History returns an alert's events, oldest first.
func (m *Manager) History(ctx context.Context, key string) ([]Event, error) {
	var out []Event
	var after int64
	for {
		recs, err := m.store.ListRecords(ctx, metastore.RecordQuery{Collection: CollectionEvent, Subject: key, AfterSeq: after, Limit: 1000})
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			var e Event
			if json.Unmarshal(r.Body, &e) == nil {
				out = append(out, e)
			}
			after = r.Seq
		}
		if len(recs) < 1000 {
			break
		}
	}
	if out == nil {
		if _, err := m.Get(ctx, key); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func putAlert(ctx context.Context, tx metastore.Tx, a *Alert, now time.Time) error {
	body, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return tx.PutRecord(ctx, &metastore.Record{Collection: CollectionAlert, ID: a.Key, ProductID: a.ProductID,
		Subject: a.Team, State: a.State, At: now, Body: body})
}

func insertEvent(ctx context.Context, tx metastore.Tx, e Event) error {
	e.ID = newEventID(e.At)
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return tx.InsertRecord(ctx, &metastore.Record{Collection: CollectionEvent, ID: e.ID, ProductID: e.ProductID,
		Subject: e.Key, State: e.Type, At: e.At, Body: body})
}

func newEventID(at time.Time) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("ae_%016x%s", at.UnixNano(), hex.EncodeToString(b[:]))
}

// ownerTeam is a product's owner_team ("" when the product is unknown).
func (m *Manager) ownerTeam(ctx context.Context, productID string) string {
	o, err := m.store.Get(ctx, rhizome.KindDataProduct, productID)
	if err != nil {
		return ""
	}
	var dp rhizome.DataProduct
	_ = json.Unmarshal(o.Body, &dp)
	return dp.OwnerTeam
}

func (m *Manager) team(ctx context.Context, name string) *rhizome.Team {
	if name == "" {
		return &rhizome.Team{}
	}
	o, err := m.store.Get(ctx, rhizome.KindTeam, name)
	if err != nil {
		return &rhizome.Team{Name: name}
	}
	var t rhizome.Team
	_ = json.Unmarshal(o.Body, &t)
	return &t
}

// Targets are where a team's notices go.
func (m *Manager) Targets(channel string) []Target {
	return ParseTargets(channel, m.opt.SlackWebhook, m.opt.SMTP != nil && m.opt.SMTP.Addr != "")
}

type listed struct {
	rec metastore.Record
	a   Alert
}

// Tick sends what is due at the clock's now: per team, one notice with the
// alerts that fired GroupWait ago or earlier (and every other new alert of
// the team) plus repeats; one resolved notice likewise; and escalations
// of unacknowledged alerts along the team's escalation_path. It also
// refreshes rhizome_alerts_firing.
func (m *Manager) Tick(ctx context.Context) error {
	now := m.opt.Clock.Now()
	var all []listed
	for _, q := range []metastore.RecordQuery{
		{Collection: CollectionAlert, State: StateFiring, Limit: 10000},
		{Collection: CollectionAlert, State: StateAcknowledged, Limit: 10000},
		{Collection: CollectionAlert, State: StateResolved, Since: now.Add(-24 * time.Hour), Limit: 10000},
	} {
		recs, err := m.store.ListRecords(ctx, q)
		if err != nil {
			return err
		}
		for _, r := range recs {
			var a Alert
			if json.Unmarshal(r.Body, &a) == nil {
				all = append(all, listed{r, a})
			}
		}
	}
	m.firing.Reset()
	for _, l := range all {
		if l.a.State != StateResolved {
			m.firing.WithLabelValues(l.a.Team, l.a.Kind).Inc()
		}
	}

	byTeam := map[string][]listed{}
	for _, l := range all {
		byTeam[l.a.Team] = append(byTeam[l.a.Team], l)
	}
	teams := make([]string, 0, len(byTeam))
	for t := range byTeam {
		teams = append(teams, t)
	}
	sort.Strings(teams)
	var errs []error
	for _, team := range teams {
		if err := m.tickTeam(ctx, now, team, byTeam[team]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m *Manager) tickTeam(ctx context.Context, now time.Time, teamName string, ls []listed) error {
	due := func(t time.Time, d time.Duration) bool { return !now.Before(t.Add(d)) }
	var (
		firstDue             bool
		fresh, repeat, clear []listed
		silent               []listed // resolved before any notice: nothing to say
	)
	for _, l := range ls {
		a := l.a
		switch {
		case a.State == StateFiring && a.Notifications == 0:
			fresh = append(fresh, l)
			firstDue = firstDue || due(a.FiredAt, m.opt.GroupWait)
		case a.State == StateFiring && a.LastNotifiedAt != nil && due(*a.LastNotifiedAt, m.opt.RepeatInterval):
			repeat = append(repeat, l)
		case a.State == StateResolved && !a.ResolveNotified && a.ResolvedAt != nil && due(*a.ResolvedAt, m.opt.GroupWait):
			if a.Notifications == 0 {
				silent = append(silent, l)
			} else {
				clear = append(clear, l)
			}
		}
	}
	if !firstDue {
		fresh = nil
	}
	team := m.team(ctx, teamName)
	var errs []error
	send := func(sel []listed, notice string, mark func(*Alert)) {
		if len(sel) == 0 {
			return
		}
		claimed, err := m.claim(ctx, now, sel, mark, nil)
		if err != nil {
			errs = append(errs, err)
			return
		}
		if len(claimed) == 0 {
			return
		}
		n := Notification{Team: teamName, Notice: notice, Alerts: claimed, At: now}
		for _, t := range m.Targets(team.CommunicationChannel) {
			m.enqueue(t, n)
		}
	}
	notified := func(a *Alert) {
		a.Notifications++
		if a.FirstNotifiedAt == nil {
			a.FirstNotifiedAt = &now
		}
		a.LastNotifiedAt = &now
	}
	// First notices and repeats go out together, as one "firing" notice
	// when anything is new.
	if len(fresh) > 0 {
		send(append(fresh, repeat...), NoticeFiring, notified)
	} else {
		send(repeat, NoticeRepeat, notified)
	}
	send(clear, NoticeResolved, func(a *Alert) { notified(a); a.ResolveNotified = true })
	if len(silent) > 0 {
		if _, err := m.claim(ctx, now, silent, func(a *Alert) { a.ResolveNotified = true }, nil); err != nil {
			errs = append(errs, err)
		}
	}

	// Escalations: per level, the alerts waiting at it go to that entry.
	byLevel := map[int][]listed{}
	for _, l := range ls {
		a := l.a
		if a.State != StateFiring || a.FirstNotifiedAt == nil || a.EscalationLevel >= len(team.EscalationPath) {
			continue
		}
		since := *a.FirstNotifiedAt
		if a.EscalatedAt != nil {
			since = *a.EscalatedAt
		}
		if due(since, m.opt.EscalationDelay) {
			byLevel[a.EscalationLevel] = append(byLevel[a.EscalationLevel], l)
		}
	}
	levels := make([]int, 0, len(byLevel))
	for l := range byLevel {
		levels = append(levels, l)
	}
	sort.Ints(levels)
	for _, lvl := range levels {
		entry := team.EscalationPath[lvl]
		claimed, err := m.claim(ctx, now, byLevel[lvl], func(a *Alert) {
			notified(a)
			a.EscalationLevel = lvl + 1
			a.EscalatedAt = &now
			a.EscalatedTo = append(a.EscalatedTo, entry)
		}, func(a *Alert) Event {
			return Event{Type: EventEscalate, Level: lvl + 1, Channel: entry}
		})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(claimed) == 0 {
			continue
		}
		n := Notification{Team: teamName, Notice: NoticeEscalation, Level: lvl + 1, Alerts: claimed, At: now}
		for _, t := range m.Targets(entry) {
			m.enqueue(t, n)
		}
	}
	return errors.Join(errs...)
}

// claim applies mark to each listed alert whose record is unchanged since
// it was listed (same Seq: no other process or Observe got there first),
// records event (if given) for each, and returns the alerts it changed.
func (m *Manager) claim(ctx context.Context, now time.Time, sel []listed, mark func(*Alert), event func(*Alert) Event) ([]Alert, error) {
	var out []Alert
	err := m.store.Update(ctx, func(tx metastore.Tx) error {
		out = nil
		for _, l := range sel {
			rec, err := tx.GetRecord(ctx, CollectionAlert, l.rec.ID)
			if err != nil {
				if rhizome.Code(err) == rhizome.ENotFound {
					continue
				}
				return err
			}
			if rec.Seq != l.rec.Seq {
				continue
			}
			a := l.a
			mark(&a)
			// Keep the record's At: it is the time of the last state change.
			body, err := json.Marshal(&a)
			if err != nil {
				return err
			}
			r := *rec
			r.Body = body
			if err := tx.PutRecord(ctx, &r); err != nil {
				return err
			}
			if event != nil {
				e := event(&a)
				e.Key, e.At, e.ProductID, e.Team = a.Key, now, a.ProductID, a.Team
				if err := insertEvent(ctx, tx, e); err != nil {
					return err
				}
			}
			out = append(out, a)
		}
		return nil
	})
	return out, err
}

func (m *Manager) enqueue(t Target, n Notification) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		m.log.Warn("alerts: a notice after close is dropped", "team", n.Team, "notice", n.Notice)
		return
	}
	m.pending.Add(1)
	select {
	case m.queue <- job{t, n}:
	default:
		m.pending.Done()
		m.record(t, n, "failed", 0, fmt.Errorf("the delivery queue is full"))
	}
}

func (m *Manager) worker() {
	defer m.workers.Done()
	for j := range m.queue {
		m.deliver(j)
		m.pending.Done()
	}
}

// deliver tries a job until it succeeds, fails for good, or attempts run out.
func (m *Manager) deliver(j job) {
	if j.target.Type == ChannelNone {
		m.log.Warn("alerts: undeliverable notice", "team", j.n.Team, "channel", j.target.Raw, "hint", j.target.Problem)
		m.record(j.target, j.n, "undeliverable", 0, fmt.Errorf("%s", j.target.Problem))
		return
	}
	ctx := m.runCtx
	wait := m.opt.RetryBackoff
	var err error
	attempt := 0
	for attempt < m.opt.MaxAttempts {
		attempt++
		if err = m.send(ctx, j.target, j.n); err == nil {
			m.record(j.target, j.n, "delivered", attempt, nil)
			return
		}
		var se *sendError
		if !errors.As(err, &se) || !se.retry || attempt == m.opt.MaxAttempts {
			break
		}
		m.log.Info("alerts: delivery failed; retrying", "team", j.n.Team, "channel_type", j.target.Type, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			m.record(j.target, j.n, "failed", attempt, fmt.Errorf("stopped before retrying: %w", err))
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, time.Minute)
	}
	m.log.Warn("alerts: delivery failed", "team", j.n.Team, "channel_type", j.target.Type, "attempts", attempt, "err", err)
	m.record(j.target, j.n, "failed", attempt, err)
}

// record writes a notify event per alert of the notice and counts it.
func (m *Manager) record(t Target, n Notification, outcome string, attempts int, err error) {
	m.notifications.WithLabelValues(t.Type, outcome).Inc()
	now := m.opt.Clock.Now()
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	werr := m.store.Update(context.Background(), func(tx metastore.Tx) error {
		for _, a := range n.Alerts {
			e := Event{Key: a.Key, Type: EventNotify, At: now, ProductID: a.ProductID, Team: n.Team, Notice: n.Notice,
				Channel: t.display(), ChannelType: t.Type, Outcome: outcome, Attempts: attempts, Error: msg, Level: n.Level}
			if err := insertEvent(context.Background(), tx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if werr != nil {
		m.log.Warn("alerts: recording a delivery", "err", werr)
	}
}

// display names a target without the secret path of a webhook URL.
func (t Target) display() string {
	switch {
	case t.SlackChannel != "":
		return "slack:" + t.SlackChannel
	case t.Address != "":
		return "mailto:" + t.Address
	case t.URL != "":
		return t.Type + ":" + redactURL(t.URL)
	}
	return t.Raw
}
