package testenv

import (
	"fmt"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

var bucketSeq atomic.Int64

// S3 starts an in-memory S3-compatible server (gofakes3) on loopback for
// tb, with one empty bucket, and stops it when tb ends. props are the
// Iceberg FileIO properties that reach it (s3.endpoint, s3.region, static
// keys; path-style addressing follows from the endpoint).
func S3(tb testing.TB) (endpoint, bucket string, props map[string]string) {
	tb.Helper()
	backend := s3mem.New()
	bucket = fmt.Sprintf("rhizome-test-%d", bucketSeq.Add(1))
	if err := backend.CreateBucket(bucket); err != nil {
		tb.Fatalf("testenv: create bucket %s: %v", bucket, err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	tb.Cleanup(srv.Close)
	endpoint = srv.URL
	props = map[string]string{
		"s3.endpoint":                 endpoint,
		"s3.region":                   "us-east-1",
		"s3.access-key-id":            "rhizome",
		"s3.secret-access-key":        "rhizome-secret",
		"s3.force-virtual-addressing": "false",
	}
	return endpoint, bucket, props
}
