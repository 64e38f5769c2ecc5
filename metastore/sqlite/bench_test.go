package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/metastore/metastoretest"
)

// BenchmarkPut10k puts 10,000 new products in one Update into an empty
// database (target: more than 2,000 objects/s on 2 cores).
func BenchmarkPut10k(b *testing.B) {
	metastoretest.BenchmarkPut(b, func(b *testing.B) metastore.Store {
		return open(b, filepath.Join(b.TempDir(), "metastore.db"), metastore.Options{})
	}, 10000)
}

// BenchmarkListFilter100k lists filtered pages of 100 from 100,000
// products (target: p99 under 20ms).
func BenchmarkListFilter100k(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "metastore.db"), metastore.Options{})
	defer s.Close()
	metastoretest.BenchmarkList(b, s, 100000)
}
