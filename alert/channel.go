package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"net/smtp"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Channel types (the channel_type label of rhizome_alert_notifications_total).
const (
	ChannelWebhook = "webhook"
	ChannelSlack   = "slack"
	ChannelEmail   = "email"
	ChannelNone    = "none"
)

// Target is one place a notice goes, read from a team's
// communication_channel or an escalation_path entry.
type Target struct {
	Raw  string `json:"raw"`
	Type string `json:"type"` // webhook, slack, email, none
	// URL is where a webhook or Slack notice is posted.
	URL string `json:"url,omitempty"`
	// SlackChannel is a "#name" the deployment's Slack webhook posts to.
	SlackChannel string `json:"slack_channel,omitempty"`
	// Address is an email recipient.
	Address string `json:"address,omitempty"`
	// Problem says why a "none" target cannot be delivered, and how to fix it.
	Problem string `json:"problem,omitempty"`
}

// ParseTargets reads a communication_channel or an escalation_path entry:
// one or more forms separated by commas.
//
//	https://example.com/hook              generic JSON webhook
//	webhook:https://example.com/hook      the same, explicitly
//	https://hooks.slack.com/services/...  Slack-compatible webhook
//	slack:https://chat.example.com/hook   Slack-compatible payload to any URL
//	slack:#sales-data, #sales-data        a Slack channel, through the
//	                                      deployment's RHIZOME_SLACK_WEBHOOK
//	mailto:team@example.com, bob@example.com, email:bob@example.com
//	                                      SMTP email (RHIZOME_SMTP_ADDR)
//
// Anything else (pagerduty:..., a bare name) is a "none" target: logged and
// recorded as undeliverable, with a hint.
func ParseTargets(s string, slackWebhook string, smtpOn bool) []Target {
	var out []Target
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		out = append(out, parseTarget(part, slackWebhook, smtpOn))
	}
	if len(out) == 0 {
		out = append(out, Target{Raw: s, Type: ChannelNone, Problem: "the team has no communication_channel; set it to a webhook URL, slack:<url or #channel> or mailto:<address>"})
	}
	return out
}

func parseTarget(s, slackWebhook string, smtpOn bool) Target {
	t := Target{Raw: s}
	lower := strings.ToLower(s)
	isURL := func(u string) bool {
		p, err := url.Parse(u)
		return err == nil && (p.Scheme == "http" || p.Scheme == "https") && p.Host != ""
	}
	slackChannel := func(name string) Target {
		name = strings.TrimSpace(name)
		if !strings.HasPrefix(name, "#") && !strings.HasPrefix(name, "@") {
			name = "#" + name
		}
		t.SlackChannel = name
		if slackWebhook == "" {
			t.Type = ChannelNone
			t.Problem = fmt.Sprintf("Slack channel %s has no webhook: set RHIZOME_SLACK_WEBHOOK on the server, or write the channel as slack:https://hooks.slack.com/services/...", name)
			return t
		}
		t.Type, t.URL = ChannelSlack, slackWebhook
		return t
	}
	email := func(addr string) Target {
		a, err := mail.ParseAddress(addr)
		if err != nil {
			t.Type, t.Problem = ChannelNone, fmt.Sprintf("%q is not an email address", addr)
			return t
		}
		t.Address = a.Address
		if !smtpOn {
			t.Type = ChannelNone
			t.Problem = fmt.Sprintf("email to %s needs an SMTP server: set RHIZOME_SMTP_ADDR (and RHIZOME_SMTP_FROM) on the server", a.Address)
			return t
		}
		t.Type = ChannelEmail
		return t
	}
	switch {
	case strings.HasPrefix(lower, "slack:"):
		rest := strings.TrimSpace(s[len("slack:"):])
		if isURL(rest) {
			t.Type, t.URL = ChannelSlack, rest
			return t
		}
		return slackChannel(rest)
	case strings.HasPrefix(lower, "webhook:"):
		rest := strings.TrimSpace(s[len("webhook:"):])
		if !isURL(rest) {
			t.Type, t.Problem = ChannelNone, fmt.Sprintf("%q is not an http(s) URL", rest)
			return t
		}
		t.Type, t.URL = ChannelWebhook, rest
		return t
	case strings.HasPrefix(lower, "mailto:"):
		return email(s[len("mailto:"):])
	case strings.HasPrefix(lower, "email:"):
		return email(s[len("email:"):])
	case isURL(s):
		t.URL = s
		t.Type = ChannelWebhook
		if u, _ := url.Parse(s); strings.EqualFold(u.Hostname(), "hooks.slack.com") {
			t.Type = ChannelSlack
		}
		return t
	case strings.HasPrefix(s, "#"):
		return slackChannel(s)
	case strings.Contains(s, "@") && !strings.Contains(s, ":"):
		return email(s)
	}
	t.Type = ChannelNone
	t.Problem = fmt.Sprintf("cannot deliver to %q: use an http(s) webhook URL, slack:<url or #channel>, or mailto:<address>", s)
	return t
}

// Notification is one message: some alerts of one team, with one notice.
type Notification struct {
	Team   string  `json:"team"`
	Notice string  `json:"notice"` // firing, repeat, escalation, resolved
	Level  int     `json:"escalation_level,omitempty"`
	Alerts []Alert `json:"alerts"`
	At     time.Time
}

// Status is "resolved" for a resolved notice, else "firing".
func (n Notification) Status() string {
	if n.Notice == NoticeResolved {
		return "resolved"
	}
	return "firing"
}

// Title is the one-line summary of a notification.
func (n Notification) Title() string {
	what := plural(len(n.Alerts), "alert")
	switch n.Notice {
	case NoticeResolved:
		return fmt.Sprintf("[RESOLVED] %s for %s", what, n.Team)
	case NoticeEscalation:
		return fmt.Sprintf("[ESCALATION %d] %s for %s not acknowledged", n.Level, what, n.Team)
	case NoticeRepeat:
		return fmt.Sprintf("[FIRING, still] %s for %s", what, n.Team)
	}
	return fmt.Sprintf("[FIRING] %s for %s", what, n.Team)
}

func plural(n int, w string) string {
	if n == 1 {
		return "1 " + w
	}
	return fmt.Sprintf("%d %ss", n, w)
}

// Lines are the alerts, one line each.
func (n Notification) Lines() []string {
	var out []string
	for _, a := range n.Alerts {
		sev := a.Severity
		if sev == "" {
			sev = "warning"
		}
		l := fmt.Sprintf("%s %s: %s (key %s)", sev, a.ProductID, a.Summary, a.Key)
		if n.Notice == NoticeResolved && a.ResolvedAt != nil {
			l += ", resolved at " + a.ResolvedAt.UTC().Format(time.RFC3339)
		} else {
			l += ", since " + a.FiredAt.UTC().Format(time.RFC3339)
		}
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

// webhookPayload is the generic JSON webhook body.
type webhookPayload struct {
	Version string  `json:"version"`
	Status  string  `json:"status"`
	Notice  string  `json:"notice"`
	Team    string  `json:"team"`
	Level   int     `json:"escalation_level,omitempty"`
	Title   string  `json:"title"`
	Alerts  []Alert `json:"alerts"`
	SentAt  string  `json:"sent_at"`
}

func (n Notification) webhookBody() []byte {
	b, _ := json.Marshal(webhookPayload{Version: "1", Status: n.Status(), Notice: n.Notice, Team: n.Team, Level: n.Level,
		Title: n.Title(), Alerts: n.Alerts, SentAt: n.At.UTC().Format(time.RFC3339)})
	return b
}

// slackBody is a Slack incoming-webhook message: text (the fallback) and
// blocks; channel when the target names one.
func (n Notification) slackBody(channel string) []byte {
	lines := n.Lines()
	var text strings.Builder
	text.WriteString(n.Title())
	for _, l := range lines {
		text.WriteString("\n• " + l)
	}
	blocks := []map[string]any{
		{"type": "header", "text": map[string]any{"type": "plain_text", "text": n.Title()}},
	}
	// Slack takes at most 50 blocks, 3000 characters of text each.
	for i, l := range lines {
		if i == 40 {
			blocks = append(blocks, map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": fmt.Sprintf("… and %d more: rhizome alerts --team %s", len(lines)-40, n.Team)}})
			break
		}
		if r := []rune(l); len(r) > 2900 {
			l = string(r[:2900]) + "…"
		}
		blocks = append(blocks, map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": l}})
	}
	msg := map[string]any{"text": text.String(), "blocks": blocks}
	if channel != "" {
		msg["channel"] = channel
	}
	b, _ := json.Marshal(msg)
	return b
}

func (n Notification) emailBody(from, to string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: [Rhizome] %s\r\nDate: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
		from, to, n.Title(), n.At.UTC().Format(time.RFC1123Z))
	b.WriteString(n.Title() + "\r\n\r\n")
	for _, l := range n.Lines() {
		b.WriteString("- " + l + "\r\n")
	}
	b.WriteString("\r\nAcknowledge with: rhizome alerts ack KEY\r\n")
	return b.Bytes()
}

// SMTP is the mail server email targets go through.
type SMTP struct {
	Addr     string // host:port
	From     string
	Username string // PLAIN auth when set (the server must offer TLS unless it is local)
	Password string
}

// sendError is a failed attempt; retry says whether another may succeed.
type sendError struct {
	err   error
	retry bool
}

func (e *sendError) Error() string { return e.err.Error() }

// send makes one delivery attempt.
func (m *Manager) send(ctx context.Context, t Target, n Notification) error {
	switch t.Type {
	case ChannelWebhook, ChannelSlack:
		body := n.webhookBody()
		if t.Type == ChannelSlack {
			body = n.slackBody(t.SlackChannel)
		}
		ctx, cancel := context.WithTimeout(ctx, m.opt.HTTPTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(body))
		if err != nil {
			return &sendError{err: err}
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "rhizome-alerts/1")
		resp, err := m.opt.HTTPClient.Do(req)
		if err != nil {
			return &sendError{err: err, retry: true}
		}
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return nil
		}
		retry := resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout
		return &sendError{err: fmt.Errorf("%s answered %s: %s", redactURL(t.URL), resp.Status, strings.TrimSpace(string(snippet))), retry: retry}
	case ChannelEmail:
		s := m.opt.SMTP
		var auth smtp.Auth
		if s.Username != "" {
			host := s.Addr
			if i := strings.LastIndex(host, ":"); i >= 0 {
				host = host[:i]
			}
			auth = smtp.PlainAuth("", s.Username, s.Password, host)
		}
		if err := smtp.SendMail(s.Addr, auth, s.From, []string{t.Address}, n.emailBody(s.From, t.Address)); err != nil {
			// 5xx SMTP replies are permanent; the rest (4xx, network) may pass later.
			retry := !strings.HasPrefix(err.Error(), "5")
			return &sendError{err: fmt.Errorf("mail to %s: %w", t.Address, err), retry: retry}
		}
		return nil
	}
	return &sendError{err: fmt.Errorf("%s", t.Problem)}
}

// redactURL keeps a webhook URL's host: the path of a Slack webhook is its
// secret.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "the webhook"
	}
	return u.Scheme + "://" + u.Host
}
