package main

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"time"
)

// The CSV files: one table per file, in the shape a source system exports.

func fmtDate(t time.Time) string { return t.Format(time.DateOnly) }
func fmtTime(t time.Time) string { return t.Format("2006-01-02T15:04:05Z") }
func fmtCents(c int64) string    { return fmt.Sprintf("%d.%02d", c/100, c%100) }
func fmtBool(b bool) string      { return strconv.FormatBool(b) }

// birthDate places a customer's birthday in their birth year. The day comes
// from a hash of the customer id, not from the random stream, so that adding
// it left every other generated value as it was.
func birthDate(c customer) time.Time {
	h := fnv.New32a()
	h.Write([]byte(c.id))
	start := time.Date(c.birthYear, 1, 1, 0, 0, 0, 0, time.UTC)
	days := start.AddDate(1, 0, 0).Sub(start).Hours() / 24
	return start.AddDate(0, 0, int(h.Sum32()%uint32(days)))
}

func (d *dataset) tables() []table {
	customers := table{name: "customers.csv", header: []string{
		"customer_id", "email", "first_name", "last_name", "phone", "country", "region", "city",
		"signup_date", "segment", "acquisition_channel", "marketing_opt_in", "birth_date",
	}}
	for _, c := range d.customers {
		birth := ""
		if c.birthYear != 0 {
			birth = fmtDate(birthDate(c))
		}
		customers.rows = append(customers.rows, []string{
			c.id, c.email, c.first, c.last, c.phone, c.country.code, c.country.region, c.city,
			fmtDate(c.signup), c.segment, c.acquisition, fmtBool(c.optIn), birth,
		})
	}

	products := table{name: "products.csv", header: []string{
		"product_id", "sku", "name", "category", "list_price", "currency", "active", "launched_on",
	}}
	for _, p := range d.products {
		products.rows = append(products.rows, []string{
			p.id, p.sku, p.name, p.category, fmtCents(p.priceCents), "USD", fmtBool(p.active), fmtDate(p.launched),
		})
	}

	orders := table{name: "orders.csv", header: []string{
		"order_id", "customer_id", "order_date", "amount", "currency", "status", "channel",
	}}
	items := table{name: "order_items.csv", header: []string{
		"order_id", "line_number", "product_id", "quantity", "unit_price",
	}}
	for _, o := range d.orders {
		orders.rows = append(orders.rows, []string{
			o.id, d.customers[o.customer].id, fmtDate(o.date), fmtCents(o.amount), o.currency, o.status, o.channel,
		})
		for i, l := range o.lines {
			items.rows = append(items.rows, []string{
				o.id, strconv.Itoa(i + 1), d.products[l.product].id, strconv.FormatInt(l.qty, 10), fmtCents(l.unitCents),
			})
		}
	}

	campaigns := table{name: "campaigns.csv", header: []string{
		"campaign_id", "name", "channel", "objective", "start_date", "end_date", "budget", "currency", "status",
	}}
	for _, c := range d.campaigns {
		campaigns.rows = append(campaigns.rows, []string{
			c.id, c.name, c.channel, c.objective, fmtDate(c.start), fmtDate(c.end), fmtCents(c.budgetCents), "USD", c.status,
		})
	}

	touches := table{name: "campaign_touches.csv", header: []string{
		"touch_id", "customer_id", "campaign_id", "touched_at", "channel", "interaction", "cost",
	}}
	for _, t := range d.touches {
		cost := ""
		if t.cost >= 0 {
			cost = fmt.Sprintf("%d.%04d", t.cost/10000, t.cost%10000)
		}
		touches.rows = append(touches.rows, []string{
			t.id, d.customers[t.customer].id, d.campaigns[t.campaign].id, fmtTime(t.at),
			d.campaigns[t.campaign].channel, t.interaction, cost,
		})
	}

	tickets := table{name: "support_tickets.csv", header: []string{
		"ticket_id", "customer_id", "order_id", "opened_at", "closed_at", "status", "priority",
		"category", "channel", "subject", "csat_score",
	}}
	for _, t := range d.tickets {
		orderID, closed, csat := "", "", ""
		if t.order >= 0 {
			orderID = d.orders[t.order].id
		}
		if !t.closed.IsZero() {
			closed = fmtTime(t.closed)
		}
		if t.csat != 0 {
			csat = strconv.Itoa(t.csat)
		}
		tickets.rows = append(tickets.rows, []string{
			t.id, d.customers[t.customer].id, orderID, fmtTime(t.opened), closed, t.status, t.priority,
			t.category, t.channel, t.subject, csat,
		})
	}

	return []table{campaigns, touches, customers, items, orders, products, tickets}
}
