package main

import (
	"math/rand/v2"
	"slices"
	"time"
)

// The arithmetic below is integer only (cents, permille, seconds): floating
// point may be fused differently on other architectures, and the committed
// files must come out byte for byte the same everywhere.

const (
	seedHi = 0x5248495a4f4d4531 // "RHIZOME1"
	seedLo = 0x64656d6f2d6d6573 // "demo-mes"

	numCustomers = 5000
	numProducts  = 120
	numOrders    = 20000
	numCampaigns = 50
	numTouches   = 15000
	numTickets   = 2500
)

var (
	signupStart = day(2021, 1, 1)
	signupEnd   = day(2024, 10, 31)
	dataStart   = day(2022, 1, 1)   // first order, first campaign
	asOf        = day(2024, 12, 31) // the data's "today": nothing happens after it
	dayEnd      = 24*time.Hour - time.Second
)

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

type customer struct {
	id, email, first, last, phone string
	country                       *country
	city                          string
	signup                        time.Time
	segment, acquisition          string
	optIn                         bool
	birthYear                     int // 0: unknown
	weight                        int // how often the customer orders
}

type product struct {
	id, sku, name, category string
	priceCents              int64 // list price, USD
	active                  bool
	launched                time.Time
}

type order struct {
	id       string
	customer int
	date     time.Time
	currency string
	amount   int64 // cents, in currency
	status   string
	channel  string
	lines    []line
}

type line struct {
	product   int
	qty       int64
	unitCents int64 // in the order's currency, after discount
}

type campaign struct {
	id, name, channel, objective, status string
	start, end                           time.Time
	budgetCents                          int64
}

type touch struct {
	id          string
	customer    int
	campaign    int
	at          time.Time
	interaction string
	cost        int64 // 1/10000 USD; -1: unknown
}

type ticket struct {
	id                                  string
	customer                            int
	order                               int // -1: not about an order
	opened, closed                      time.Time
	priority, category, status, channel string
	subject                             string
	csat                                int // 0: no answer
}

type dataset struct {
	r         *rand.Rand
	customers []customer
	products  []product
	orders    []order
	campaigns []campaign
	touches   []touch
	tickets   []ticket
}

func newDataset() *dataset {
	d := &dataset{r: rand.New(rand.NewPCG(seedHi, seedLo))}
	d.genCustomers()
	d.genProducts()
	d.genOrders()
	d.genCampaigns()
	d.genTouches()
	d.genTickets()
	return d
}

// ---- random helpers --------------------------------------------------------

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// chance reports true with probability permille/1000.
func chance(r *rand.Rand, permille int) bool { return r.IntN(1000) < permille }

type choice struct {
	value  string
	weight int
}

func weighted(r *rand.Rand, cs []choice) string {
	ws := make([]int, len(cs))
	for i, c := range cs {
		ws[i] = c.weight
	}
	return cs[weightedIndex(r, ws...)].value
}

// weightedIndex returns i with probability weights[i]/sum(weights).
func weightedIndex(r *rand.Rand, weights ...int) int {
	total := 0
	for _, w := range weights {
		total += w
	}
	n := r.IntN(total)
	for i, w := range weights {
		if n < w {
			return i
		}
		n -= w
	}
	panic("unreachable")
}

// between returns a time in [a, b], to the second.
func between(r *rand.Rand, a, b time.Time) time.Time {
	span := int64(b.Sub(a) / time.Second)
	if span <= 0 {
		return a
	}
	return a.Add(time.Duration(r.Int64N(span+1)) * time.Second)
}

// dayBetween returns a midnight in [a, b] (both midnights).
func dayBetween(r *rand.Rand, a, b time.Time) time.Time {
	days := int(b.Sub(a) / (24 * time.Hour))
	if days <= 0 {
		return a
	}
	return a.AddDate(0, 0, r.IntN(days+1))
}

// cumulative samples an index in proportion to integer weights.
type cumulative []int

func newCumulative(weights []int) cumulative {
	c := make(cumulative, len(weights))
	sum := 0
	for i, w := range weights {
		sum += w
		c[i] = sum
	}
	return c
}

func (c cumulative) sample(r *rand.Rand) int {
	n := r.IntN(c[len(c)-1])
	i, _ := slices.BinarySearch(c, n+1)
	return i
}
