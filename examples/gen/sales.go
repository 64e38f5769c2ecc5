package main

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The sales domain's sources: products.csv, orders.csv, order_items.csv.

var categories = []struct {
	name     string
	nouns    []string
	min, max int64 // list price range, whole dollars
}{
	{"electronics", []string{"Wireless Earbuds", "Bluetooth Speaker", "USB-C Hub", "Smart Plug", "Fitness Tracker", "Power Bank", "Webcam", "Mechanical Keyboard"}, 19, 249},
	{"home", []string{"Mug Set", "Linen Throw", "Cast Iron Skillet", "Desk Lamp", "Scented Candle", "Storage Basket", "Chef Knife", "French Press"}, 12, 129},
	{"outdoor", []string{"Trail Backpack", "Insulated Bottle", "Camping Lantern", "Hammock", "Trekking Poles", "Rain Shell"}, 15, 199},
	{"apparel", []string{"Merino Tee", "Hoodie", "Running Socks", "Denim Jacket", "Beanie", "Chinos"}, 9, 149},
	{"beauty", []string{"Face Serum", "Lip Balm", "Shampoo Bar", "Sunscreen SPF 50", "Hand Cream"}, 6, 59},
	{"books", []string{"Cookbook", "Travel Guide", "Dot Grid Notebook", "Weekly Planner"}, 8, 39},
}

var productLines = []string{"Classic", "Everyday", "Pro", "Lite", "Eco", "Urban", "Nordic", "Summit", "Studio", "Essential"}

func (d *dataset) genProducts() {
	r := d.r
	type combo struct{ cat, noun, line int }
	var all []combo
	for ci, c := range categories {
		for ni := range c.nouns {
			for li := range productLines {
				all = append(all, combo{ci, ni, li})
			}
		}
	}
	r.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	all = all[:numProducts]
	slices.SortFunc(all, func(a, b combo) int {
		return cmp.Or(cmp.Compare(a.cat, b.cat), cmp.Compare(a.noun, b.noun), cmp.Compare(a.line, b.line))
	})
	for i, c := range all {
		cat := categories[c.cat]
		dollars := cat.min + r.Int64N(cat.max-cat.min+1)
		d.products = append(d.products, product{
			id:         fmt.Sprintf("PRD-%04d", i+1),
			sku:        fmt.Sprintf("SKU-%s-%04d", strings.ToUpper(cat.name[:3]), 1000+i*7),
			name:       productLines[c.line] + " " + cat.nouns[c.noun],
			category:   cat.name,
			priceCents: dollars*100 - 1, // $x.99
			active:     !chance(r, 80),
			launched:   dayBetween(r, day(2019, 1, 1), day(2023, 6, 30)),
		})
	}
}

// seasonPermille is how likely an order date is kept, by month: more in
// November and December.
var seasonPermille = [13]int{0, 600, 550, 600, 620, 650, 620, 600, 640, 650, 700, 950, 1000}

func (d *dataset) genOrders() {
	r := d.r
	// Customers are sorted by signup, so those who had signed up by a date
	// are a prefix, and a prefix of the cumulative weights samples them.
	ws := make([]int, len(d.customers))
	for i, c := range d.customers {
		ws[i] = c.weight
	}
	byWeight := newCumulative(ws)
	pw := make([]int, len(d.products))
	for i := range d.products {
		pw[i] = []int{1, 2, 3, 5, 8}[r.IntN(5)] // some products sell better
	}
	pickProduct := newCumulative(pw)
	days := int(asOf.Sub(dataStart) / (24 * time.Hour))

	for range numOrders {
		// A day, more likely later (the business grows) and in November
		// and December.
		var date time.Time
		for {
			n := r.IntN(days + 1)
			date = dataStart.AddDate(0, 0, n)
			if r.IntN(1000*1000) < seasonPermille[date.Month()]*(550+450*n/days) {
				break
			}
		}
		signedUp, _ := slices.BinarySearchFunc(d.customers, date, func(c customer, t time.Time) int {
			if c.signup.After(t) {
				return 1
			}
			return -1
		})
		ci := byWeight[:signedUp].sample(r)
		c := &d.customers[ci]
		o := order{customer: ci, date: date, currency: c.country.currency}
		n := 1 + weightedIndex(r, 55, 28, 12, 5) // lines
		for len(o.lines) < n {
			pi := pickProduct.sample(r)
			if d.products[pi].launched.After(date) || slices.ContainsFunc(o.lines, func(l line) bool { return l.product == pi }) {
				continue
			}
			qty := int64(1 + weightedIndex(r, 75, 18, 5, 2))
			discount := int64([]int{0, 0, 0, 0, 0, 0, 0, 10, 15, 25}[r.IntN(10)])
			unit := d.products[pi].priceCents * usdTo[o.currency] * (100 - discount) / 100_000
			o.lines = append(o.lines, line{product: pi, qty: qty, unitCents: unit})
			o.amount += qty * unit
		}
		age := int(asOf.Sub(date) / (24 * time.Hour))
		switch u := r.IntN(1000); {
		case u < 50:
			o.status = "cancelled"
		case u < 90 && age > 7:
			o.status = "refunded"
		case age <= 2:
			o.status = "pending"
		case age <= 10:
			o.status = "shipped"
		default:
			o.status = "completed"
		}
		if !chance(r, 3) {
			o.channel = weighted(r, []choice{{"web", 55}, {"mobile_app", 30}, {"marketplace", 10}, {"store", 5}})
		}
		d.orders = append(d.orders, o)
	}
	slices.SortStableFunc(d.orders, func(a, b order) int { return a.date.Compare(b.date) })
	for i := range d.orders {
		d.orders[i].id = fmt.Sprintf("ORD-%06d", i+1)
	}
}
