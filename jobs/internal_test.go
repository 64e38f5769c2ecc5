package jobs

import (
	"strings"
	"testing"
	"time"
)

func TestTimeoutMessage(t *testing.T) {
	if got := (timeoutError{4 * time.Hour}).Error(); got != "timed out after 4h0m0s" {
		t.Errorf("timeout message %q", got)
	}
}

func TestBackoff(t *testing.T) {
	b := backoff{base: 10 * time.Second}
	for attempt, want := range map[int]time.Duration{1: 10 * time.Second, 2: 20 * time.Second, 3: 40 * time.Second, 20: time.Hour} {
		got := b.delay(attempt)
		if got < want || got > want+want/10 {
			t.Errorf("attempt %d: delay %s, want %s plus at most 10%%", attempt, got, want)
		}
	}
}

func TestRunIDs(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a, b := newRunID(t0), newRunID(t0.Add(time.Millisecond))
	if len(a) != 30 || !strings.HasPrefix(a, "run_") || a >= b {
		t.Errorf("ids %s, %s: want run_ and 26 characters, sorting by time", a, b)
	}
	if newRunID(t0) == a {
		t.Errorf("two ids in one millisecond are equal")
	}
	k := keyedRunID("dp.a", "batch-1")
	if k != keyedRunID("dp.a", "batch-1") || k == keyedRunID("dp.b", "batch-1") || len(k) != 30 {
		t.Errorf("keyed ids: %s", k)
	}
}
