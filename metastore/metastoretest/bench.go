package metastoretest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/metastore"
)

// Product returns the i-th synthetic data product, for benchmarks and
// load tests: a manifest of about 1.5 KB,
// labels spread over 10 domains, 40 teams, 4 sensitivities and 20 tags.
func Product(i int) *rhizome.Object {
	domain := fmt.Sprintf("domain-%02d", i%10)
	team := fmt.Sprintf("team-%02d", i%40)
	level := rhizome.SensitivityLevels()[i%4]
	tags := []string{fmt.Sprintf("tag-%02d", i%20), fmt.Sprintf("tag-%02d", (i*7+3)%20)}
	id := fmt.Sprintf("dp.%s.product-%06d", domain, i)
	body := fmt.Sprintf(`{"apiVersion":"rhizome/v1","kind":"DataProduct","metadata":{"id":%q,"name":"Product %d",`+
		`"domain":%q,"owner_team":%q,"sensitivity":%q,"tags":[%q,%q],"description":"A benchmark product with a `+
		`description long enough to look like the real thing, which explains the business meaning of the data and who should use it."},`+
		`"spec":{"current_version":"1.%d.0","input_ports":[{"name":"orders","connector":"postgres","config":{"table":"public.orders","cursor":"updated_at"}}],`+
		`"output_ports":[{"name":"main","format":"iceberg","schema":[{"name":"id","type":"bigint","required":true},{"name":"customer_id","type":"bigint"},`+
		`{"name":"amount","type":"decimal(12,2)"},{"name":"currency","type":"string"},{"name":"created_at","type":"timestamp"},{"name":"status","type":"string"}]}],`+
		`"quality":{"checks":[{"type":"not_null","column":"id"},{"type":"unique","column":"id"},{"type":"freshness","column":"created_at","threshold":"< 24h"},`+
		`{"type":"row_count","threshold":"> 0"}]},"slo":{"availability":"99.9%%","freshness":"1h"}}}`,
		id, i, domain, team, level, tags[0], tags[1], i%7)
	return &rhizome.Object{Kind: rhizome.KindDataProduct, ID: id, Body: []byte(body),
		Labels: rhizome.Labels{Domain: domain, OwnerTeam: team, Sensitivity: level, Tags: tags}}
}

// Seed puts products from..to-1 (as Product makes them) in batches of
// 10,000 per Update.
func Seed(ctx context.Context, s metastore.Store, from, to int) error {
	for lo := from; lo < to; lo += 10000 {
		hi := min(lo+10000, to)
		err := s.Update(ctx, func(tx metastore.Tx) error {
			for i := lo; i < hi; i++ {
				if _, err := tx.Put(ctx, Product(i), 0, "bench", "apply-bench"); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkPut puts n new products in one Update into an empty store from
// newStore, and reports objects per second. Building the objects and
// opening the store are not timed.
func BenchmarkPut(b *testing.B, newStore func(b *testing.B) metastore.Store, n int) {
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		s := newStore(b)
		objs := make([]*rhizome.Object, n)
		for i := range objs {
			objs[i] = Product(i)
		}
		b.StartTimer()
		err := s.Update(ctx, func(tx metastore.Tx) error {
			for _, o := range objs {
				if _, err := tx.Put(ctx, o, 0, "bench", "apply-bench"); err != nil {
					return err
				}
			}
			return nil
		})
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "objects/s")
}

// BenchmarkList seeds s with n products, then lists pages of 100 with one
// filter (domain, owner team, sensitivity or tag, in turn) from a random
// cursor, and reports the latency percentiles p50-ms and p99-ms.
func BenchmarkList(b *testing.B, s metastore.Store, n int) {
	ctx := context.Background()
	start := time.Now()
	if err := Seed(ctx, s, 0, n); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d products in %v", n, time.Since(start).Round(time.Millisecond))

	rng := rand.New(rand.NewPCG(1, 2))
	var lat []time.Duration
	b.ResetTimer()
	for b.Loop() {
		p := Product(rng.IntN(n))
		opt := metastore.ListOptions{Kind: rhizome.KindDataProduct, After: p.ID}
		switch len(lat) % 4 {
		case 0:
			opt.Domain = p.Labels.Domain
		case 1:
			opt.OwnerTeam = p.Labels.OwnerTeam
		case 2:
			opt.Sensitivity = p.Labels.Sensitivity
		case 3:
			opt.Tag = p.Labels.Tags[0]
		}
		t0 := time.Now()
		_, err := s.List(ctx, opt)
		lat = append(lat, time.Since(t0))
		if err != nil {
			b.Fatal(err)
		}
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
