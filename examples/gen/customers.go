package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// The customer domain's source: customers.csv.

type country struct {
	code, region, currency, dial string
	weight                       int
	cities                       []string
}

var countries = []*country{
	{"US", "NA", "USD", "+1", 32, []string{"New York", "Chicago", "Austin", "Seattle", "Denver", "Atlanta"}},
	{"CA", "NA", "CAD", "+1", 6, []string{"Toronto", "Vancouver", "Montreal"}},
	{"MX", "LATAM", "USD", "+52", 4, []string{"Mexico City", "Guadalajara", "Monterrey"}},
	{"BR", "LATAM", "USD", "+55", 5, []string{"Sao Paulo", "Rio de Janeiro", "Curitiba"}},
	{"AR", "LATAM", "USD", "+54", 2, []string{"Buenos Aires", "Cordoba"}},
	{"GB", "EMEA", "GBP", "+44", 10, []string{"London", "Manchester", "Edinburgh", "Bristol"}},
	{"DE", "EMEA", "EUR", "+49", 9, []string{"Berlin", "Munich", "Hamburg", "Cologne"}},
	{"FR", "EMEA", "EUR", "+33", 7, []string{"Paris", "Lyon", "Toulouse"}},
	{"ES", "EMEA", "EUR", "+34", 4, []string{"Madrid", "Barcelona", "Valencia"}},
	{"IT", "EMEA", "EUR", "+39", 3, []string{"Milan", "Rome", "Turin"}},
	{"NL", "EMEA", "EUR", "+31", 3, []string{"Amsterdam", "Rotterdam", "Utrecht"}},
	{"SE", "EMEA", "EUR", "+46", 2, []string{"Stockholm", "Gothenburg"}},
	{"IN", "APAC", "USD", "+91", 5, []string{"Bengaluru", "Mumbai", "Pune"}},
	{"JP", "APAC", "USD", "+81", 4, []string{"Tokyo", "Osaka", "Fukuoka"}},
	{"AU", "APAC", "USD", "+61", 4, []string{"Sydney", "Melbourne", "Brisbane"}},
	{"SG", "APAC", "USD", "+65", 2, []string{"Singapore"}},
}

// usdTo converts USD cents to a currency at the fixed rates the sales
// domain's daily-revenue transform converts back with (permille).
var usdTo = map[string]int64{"USD": 1000, "EUR": 920, "GBP": 790, "CAD": 1360}

var firstNames = []string{
	"Olivia", "Liam", "Emma", "Noah", "Amelia", "Oliver", "Sophia", "Elijah", "Mia", "Lucas",
	"Harper", "Mateo", "Aisha", "Arjun", "Yuki", "Hana", "Chloe", "Leon", "Lena", "Jonas",
	"Camille", "Hugo", "Lucia", "Pablo", "Giulia", "Marco", "Freya", "Erik", "Priya", "Rohan",
	"Mei", "Kenji", "Zoe", "Ethan", "Ava", "Daniel", "Sara", "Tomas", "Nina", "Felix",
	"Grace", "Samuel", "Isla", "Adam", "Layla", "Omar", "Ingrid", "Diego", "Ana", "Wei",
}

var lastNames = []string{
	"Smith", "Johnson", "Garcia", "Miller", "Brown", "Davis", "Martinez", "Lopez", "Wilson", "Anderson",
	"Taylor", "Thomas", "Moore", "Martin", "Lee", "Walker", "Hall", "Young", "King", "Wright",
	"Muller", "Schmidt", "Schneider", "Fischer", "Dubois", "Laurent", "Bernard", "Rossi", "Russo", "Bianchi",
	"Fernandez", "Gonzalez", "Silva", "Santos", "Pereira", "Patel", "Sharma", "Singh", "Tanaka", "Suzuki",
	"Sato", "Kim", "Park", "Chen", "Wang", "Nguyen", "Jensen", "Nilsson", "Jansen", "Okafor",
}

var emailDomains = []string{"example.com", "example.net", "example.org"}

func (d *dataset) genCustomers() {
	r := d.r
	cw := make([]int, len(countries))
	for i, c := range countries {
		cw[i] = c.weight
	}
	pickCountry := newCumulative(cw)
	signupDays := int(signupEnd.Sub(signupStart) / (24 * time.Hour))
	for range numCustomers {
		c := customer{
			first:   pick(r, firstNames),
			last:    pick(r, lastNames),
			country: countries[pickCountry.sample(r)],
			segment: weighted(r, []choice{{"consumer", 70}, {"smb", 22}, {"enterprise", 8}}),
			acquisition: weighted(r, []choice{
				{"organic", 35}, {"paid_search", 20}, {"social", 15}, {"referral", 12},
				{"email", 8}, {"affiliate", 5}, {"events", 5},
			}),
			optIn: chance(r, 620),
		}
		// The later of two uniform days: signups grow over time.
		c.signup = signupStart.AddDate(0, 0, max(r.IntN(signupDays+1), r.IntN(signupDays+1)))
		if !chance(r, 180) {
			c.phone = fmt.Sprintf("%s 555 %03d %04d", c.country.dial, r.IntN(1000), r.IntN(10000))
		}
		if !chance(r, 10) {
			c.city = pick(r, c.country.cities)
		}
		if !chance(r, 250) {
			c.birthYear = 1950 + r.IntN(55)
		}
		// How active the customer is: most order a few times, a few often.
		c.weight = []int{1, 1, 1, 1, 2, 2, 3, 4, 6, 10}[r.IntN(10)]
		if c.segment == "enterprise" {
			c.weight *= 2
		}
		d.customers = append(d.customers, c)
	}
	// IDs ascend with signup date, as a source system would assign them.
	slices.SortStableFunc(d.customers, func(a, b customer) int { return a.signup.Compare(b.signup) })
	for i := range d.customers {
		c := &d.customers[i]
		c.id = fmt.Sprintf("CUST-%05d", i+1)
		if !chance(r, 4) {
			c.email = fmt.Sprintf("%s.%s%d@%s", strings.ToLower(c.first), strings.ToLower(c.last), i+1, pick(r, emailDomains))
		}
	}
}
