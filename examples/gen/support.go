package main

import (
	"fmt"
	"slices"
	"time"
)

// The support domain's source: support_tickets.csv.

var subjects = map[string][]string{
	"shipping": {"Where is my order?", "Package arrived damaged", "Delivery address change", "Tracking number not working"},
	"product":  {"Item not as described", "How do I set this up?", "Missing part", "Size exchange"},
	"billing":  {"Charged twice", "Invoice request", "Refund not received", "Promo code did not apply"},
	"returns":  {"Return label request", "Return status", "Wrong item received"},
	"account":  {"Cannot log in", "Update email address", "Delete my account", "Unsubscribe from emails"},
}

// resolveHours bounds the hours to close a ticket by priority.
var resolveHours = map[string][2]int{"urgent": {1, 12}, "high": {2, 36}, "normal": {4, 96}, "low": {8, 240}}

func (d *dataset) genTickets() {
	r := d.r
	last := asOf.Add(dayEnd)
	for len(d.tickets) < numTickets {
		t := ticket{order: -1}
		if chance(r, 700) {
			oi := r.IntN(len(d.orders))
			o := d.orders[oi]
			if o.status == "pending" {
				continue
			}
			t.order, t.customer = oi, o.customer
			t.opened = o.date.AddDate(0, 0, 1+r.IntN(30)).Add(time.Duration(r.IntN(86400)) * time.Second)
			t.category = weighted(r, []choice{{"shipping", 40}, {"product", 30}, {"billing", 20}, {"returns", 10}})
		} else {
			t.customer = r.IntN(len(d.customers))
			from := d.customers[t.customer].signup
			if from.Before(dataStart) {
				from = dataStart
			}
			t.opened = between(r, from, last)
			t.category = weighted(r, []choice{{"account", 60}, {"billing", 25}, {"product", 15}})
		}
		if t.opened.After(last) {
			continue
		}
		t.subject = pick(r, subjects[t.category])
		t.priority = weighted(r, []choice{{"low", 30}, {"normal", 50}, {"high", 15}, {"urgent", 5}})
		t.channel = weighted(r, []choice{{"email", 45}, {"chat", 35}, {"phone", 20}})
		age := last.Sub(t.opened)
		switch {
		case age < 48*time.Hour:
			t.status = weighted(r, []choice{{"open", 70}, {"pending", 30}})
		case age < 7*24*time.Hour && chance(r, 300):
			t.status = "pending"
		default:
			t.status = weighted(r, []choice{{"solved", 20}, {"closed", 80}})
		}
		if t.status == "solved" || t.status == "closed" {
			h := resolveHours[t.priority]
			t.closed = t.opened.Add(time.Duration(h[0]*3600+r.IntN((h[1]-h[0])*3600)) * time.Second)
			if t.closed.After(last) {
				t.closed = last
			}
			if chance(r, 600) {
				t.csat = []int{5, 5, 5, 5, 5, 5, 5, 5, 5, 4, 4, 4, 4, 4, 4, 3, 3, 2, 2, 1}[r.IntN(20)]
			}
		}
		d.tickets = append(d.tickets, t)
	}
	slices.SortStableFunc(d.tickets, func(a, b ticket) int { return a.opened.Compare(b.opened) })
	for i := range d.tickets {
		d.tickets[i].id = fmt.Sprintf("TKT-%05d", i+1)
	}
}
