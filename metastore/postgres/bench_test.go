package postgres_test

import (
	"testing"

	"github.com/rhizome-mesh/rhizome/internal/testenv"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/metastore/metastoretest"
)

// The same benchmarks as metastore/sqlite, for comparison. The test server
// runs with fsync off, so these measure the store and the round trips,
// not the disk.

func BenchmarkPut10k(b *testing.B) {
	metastoretest.BenchmarkPut(b, func(b *testing.B) metastore.Store {
		return open(b, testenv.NewDatabase(b), metastore.Options{})
	}, 10000)
}

func BenchmarkListFilter100k(b *testing.B) {
	s := open(b, testenv.NewDatabase(b), metastore.Options{})
	defer s.Close()
	metastoretest.BenchmarkList(b, s, 100000)
}
