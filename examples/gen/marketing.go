package main

import (
	"fmt"
	"slices"
	"time"
)

// The marketing domain's sources: campaigns.csv, campaign_touches.csv.

var campaignThemes = map[string][]string{
	"acquisition": {"New Arrivals", "Launch", "First Order Offer", "Brand Awareness"},
	"engagement":  {"Sale", "Style Guide", "Weekend Deals", "Product Spotlight"},
	"retention":   {"Loyalty Boost", "Win-back", "Replenish", "VIP Preview"},
}

var channelLabels = map[string]string{
	"email": "Email", "paid_search": "Search", "social": "Social",
	"display": "Display", "affiliate": "Affiliates", "events": "Events",
}

func season(m time.Month) string {
	switch m {
	case time.December, time.January, time.February:
		return "Winter"
	case time.March, time.April, time.May:
		return "Spring"
	case time.June, time.July, time.August:
		return "Summer"
	}
	return "Autumn"
}

func (d *dataset) genCampaigns() {
	r := d.r
	lastStart := day(2024, 11, 30)
	span := int(lastStart.Sub(dataStart) / (24 * time.Hour))
	for i := range numCampaigns {
		c := campaign{
			id:      fmt.Sprintf("CMP-%03d", i+1),
			channel: weighted(r, []choice{{"email", 30}, {"paid_search", 20}, {"social", 20}, {"display", 12}, {"affiliate", 10}, {"events", 8}}),
		}
		// Spread the starts over the period, with some jitter.
		offset := span*i/numCampaigns + r.IntN(span/numCampaigns)
		c.start = dataStart.AddDate(0, 0, offset)
		c.end = c.start.AddDate(0, 0, 14+r.IntN(47))
		if c.channel == "email" {
			c.objective = weighted(r, []choice{{"engagement", 55}, {"retention", 45}})
		} else {
			c.objective = weighted(r, []choice{{"acquisition", 70}, {"engagement", 20}, {"retention", 10}})
		}
		for try := 0; c.name == "" || slices.ContainsFunc(d.campaigns, func(o campaign) bool { return o.name == c.name }); try++ {
			c.name = fmt.Sprintf("%s %s %d - %s", season(c.start.Month()), pick(r, campaignThemes[c.objective]), c.start.Year(), channelLabels[c.channel])
			if try > 10 {
				c.name += " " + c.id
			}
		}
		budget := map[string][2]int64{
			"email": {2_000, 8_000}, "paid_search": {15_000, 80_000}, "social": {10_000, 60_000},
			"display": {8_000, 40_000}, "affiliate": {5_000, 30_000}, "events": {20_000, 90_000},
		}[c.channel]
		c.budgetCents = (budget[0] + r.Int64N(budget[1]-budget[0]+1)/500*500) * 100
		switch {
		case c.end.Before(asOf):
			c.status = "completed"
		case c.start.After(asOf):
			c.status = "planned"
		default:
			c.status = "active"
		}
		d.campaigns = append(d.campaigns, c)
	}
}

var interactions = map[string][]choice{
	"email":       {{"open", 70}, {"click", 30}},
	"paid_search": {{"click", 100}},
	"social":      {{"impression", 60}, {"click", 40}},
	"display":     {{"impression", 80}, {"click", 20}},
	"affiliate":   {{"click", 100}},
	"events":      {{"attend", 100}},
}

// costRange is the cost of one touch by channel, in 1/10000 USD.
var costRange = map[string][2]int64{
	"email": {10, 80}, "paid_search": {4_000, 35_000}, "social": {1_500, 15_000},
	"display": {200, 6_000}, "affiliate": {8_000, 50_000}, "events": {20_000, 150_000},
}

func (d *dataset) genTouches() {
	r := d.r
	// Touches per campaign: budget over what a touch costs on its channel.
	volume := map[string]int{"email": 120, "display": 20, "social": 20, "paid_search": 10, "affiliate": 8, "events": 3}
	bw := make([]int, len(d.campaigns))
	for i, c := range d.campaigns {
		bw[i] = int(c.budgetCents/100_000) * volume[c.channel]
	}
	pickCampaign := newCumulative(bw)
	last := asOf.Add(dayEnd)

	for len(d.touches) < numTouches {
		var t touch
		if chance(r, 400) {
			// A touch in the two weeks before an order: what attribution
			// looks for.
			o := d.orders[r.IntN(len(d.orders))]
			at := o.date.AddDate(0, 0, -1-r.IntN(14)).Add(time.Duration(r.IntN(86400)) * time.Second)
			var live []int
			for i, c := range d.campaigns {
				if !at.Before(c.start) && !at.After(c.end.Add(dayEnd)) {
					live = append(live, i)
				}
			}
			cu := d.customers[o.customer]
			if len(live) == 0 || at.Before(cu.signup) {
				continue
			}
			t = touch{customer: o.customer, campaign: pick(r, live), at: at}
			if d.campaigns[t.campaign].channel == "email" && !cu.optIn {
				continue
			}
		} else {
			ci := pickCampaign.sample(r)
			c := d.campaigns[ci]
			cu := r.IntN(len(d.customers))
			if c.channel == "email" && !d.customers[cu].optIn {
				continue
			}
			from, to := c.start, c.end.Add(dayEnd)
			if s := d.customers[cu].signup; s.After(from) {
				from = s
			}
			if to.After(last) {
				to = last
			}
			if !from.Before(to) {
				continue
			}
			t = touch{customer: cu, campaign: ci, at: between(r, from, to)}
		}
		ch := d.campaigns[t.campaign].channel
		t.interaction = weighted(r, interactions[ch])
		if chance(r, 10) {
			t.cost = -1 // missing from the ad platform's export
		} else {
			cr := costRange[ch]
			t.cost = cr[0] + r.Int64N(cr[1]-cr[0]+1)
		}
		d.touches = append(d.touches, t)
	}
	slices.SortStableFunc(d.touches, func(a, b touch) int { return a.at.Compare(b.at) })
	for i := range d.touches {
		d.touches[i].id = fmt.Sprintf("TCH-%06d", i+1)
	}
}
