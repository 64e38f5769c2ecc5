package jobs

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/rhizome-mesh/rhizome"
)

// Schedule runs a product on a cron schedule.
type Schedule struct {
	// Cron is a standard 5-field expression ("0 * * * *"), or a
	// descriptor such as "@hourly", in UTC.
	Cron string
	// Timeout bounds each scheduled run; 0 means Options.DefaultTimeout.
	Timeout time.Duration
}

type scheduleEntry struct {
	Schedule
	cron cron.Schedule
	next time.Time
}

type schedules struct {
	mu      sync.Mutex
	entries map[string]*scheduleEntry // by product id
}

// SetSchedules replaces the schedules, keyed by product id. A product whose
// cron expression did not change keeps its next tick; a new one ticks next
// after the Clock's now. Invalid expressions are left out (and logged) and
// reported as one EInvalid error; the valid ones apply regardless.
func (s *Scheduler) SetSchedules(m map[string]Schedule) error {
	now := s.clock.Now().UTC()
	entries := make(map[string]*scheduleEntry, len(m))
	var problems []rhizome.Problem
	for id, sc := range m {
		c, err := cron.ParseStandard(sc.Cron)
		if err != nil {
			problems = append(problems, rhizome.Problem{Path: id, Message: "schedule " + sc.Cron + ": " + err.Error(),
				Hint: `want 5 fields (minute hour day-of-month month day-of-week), e.g. "0 6 * * *"`})
			continue
		}
		entries[id] = &scheduleEntry{Schedule: sc, cron: c, next: c.Next(now)}
	}
	s.sched.mu.Lock()
	for id, e := range entries {
		if old, ok := s.sched.entries[id]; ok && old.Cron == e.Cron {
			e.next = old.next
		}
	}
	s.sched.entries = entries
	s.sched.mu.Unlock()
	if len(problems) == 0 {
		return nil
	}
	sort.Slice(problems, func(i, j int) bool { return problems[i].Path < problems[j].Path })
	for _, p := range problems {
		s.log.Warn("jobs: product not scheduled", "product", p.Path, "err", p.Message)
	}
	return rhizome.Invalid("jobs: invalid schedules", problems...)
}

// Tick queues a TriggerSchedule run for every schedule due at now, and
// returns them. A schedule that missed several ticks runs once. Each tick's
// run is keyed by its time, so processes that share a queue queue it once.
// Start calls Tick every second with the Clock's time; tests call it.
func (s *Scheduler) Tick(ctx context.Context, now time.Time) ([]*rhizome.Run, error) {
	type due struct {
		product string
		at      time.Time
		timeout time.Duration
	}
	var dues []due
	s.sched.mu.Lock()
	for id, e := range s.sched.entries {
		if !e.next.After(now) {
			dues = append(dues, due{id, e.next, e.Timeout})
			e.next = e.cron.Next(now.UTC())
		}
	}
	s.sched.mu.Unlock()
	sort.Slice(dues, func(i, j int) bool { return dues[i].product < dues[j].product })
	var (
		runs []*rhizome.Run
		errs []error
	)
	for _, d := range dues {
		r, err := s.Enqueue(ctx, Request{ProductID: d.product, Trigger: rhizome.TriggerSchedule, Actor: "scheduler",
			Timeout: d.timeout, Key: "schedule/" + d.at.UTC().Format(time.RFC3339)})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		runs = append(runs, r)
	}
	return runs, errors.Join(errs...)
}

// scheduleLoop ticks the schedules every second and sweeps for dead runs
// every minute, until ctx is done.
func (s *Scheduler) scheduleLoop(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.Tick(ctx, s.clock.Now()); err != nil && ctx.Err() == nil {
				s.log.Error("jobs: queue scheduled runs", "err", err)
			}
			if n%60 == 0 {
				if err := s.recover(ctx, false); err != nil && ctx.Err() == nil {
					s.log.Error("jobs: recover dead runs", "err", err)
				}
			}
		}
	}
}
