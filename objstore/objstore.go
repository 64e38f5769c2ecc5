// Package objstore reads input files from S3-compatible object storage for
// the file connectors: it resolves an s3://bucket/prefix/glob-*.csv pattern
// to objects and downloads them into a run's staging directory. It uses
// gocloud.dev's s3blob over the AWS SDK, configured from the same s3.*
// properties as the table layer (endpoint, region, keys, path style).
package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"
	"gocloud.dev/blob/s3blob"

	"github.com/rhizome-mesh/rhizome"
)

// Store opens buckets with one AWS configuration.
type Store struct {
	cfg       aws.Config
	endpoint  string
	pathStyle bool
}

// New returns a Store from s3.* properties: s3.endpoint, s3.region,
// s3.access-key-id, s3.secret-access-key, s3.force-virtual-addressing.
func New(props map[string]string) *Store {
	cfg := aws.Config{Region: props["s3.region"]}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if k, s := props["s3.access-key-id"], props["s3.secret-access-key"]; k != "" && s != "" {
		cfg.Credentials = credentials.NewStaticCredentialsProvider(k, s, props["s3.session-token"])
	}
	st := &Store{cfg: cfg, endpoint: props["s3.endpoint"]}
	st.pathStyle = st.endpoint != "" && props["s3.force-virtual-addressing"] != "true"
	return st
}

func (st *Store) bucket(ctx context.Context, name string) (*blob.Bucket, error) {
	client := s3.NewFromConfig(st.cfg, func(o *s3.Options) {
		if st.endpoint != "" {
			o.BaseEndpoint = aws.String(st.endpoint)
		}
		o.UsePathStyle = st.pathStyle
	})
	b, err := s3blob.OpenBucketV2(ctx, client, name, nil)
	if err != nil {
		return nil, rhizome.Errorf(rhizome.EUnavailable, "opening bucket %s: %v", name, err)
	}
	return b, nil
}

// Fetch downloads the objects that pattern names (s3://bucket/key, where
// the key's last part may be a path.Match glob) into dir, and returns the
// local files in key order. Nothing matching is ENotFound.
func (st *Store) Fetch(ctx context.Context, pattern, dir string) ([]string, error) {
	u, err := url.Parse(pattern)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return nil, rhizome.Errorf(rhizome.EInvalid, "path %s is not an s3://bucket/key URL", pattern)
	}
	key := strings.TrimPrefix(u.Path, "/")
	b, err := st.bucket(ctx, u.Host)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	prefix := key
	if i := strings.IndexAny(key, "*?["); i >= 0 {
		prefix = key[:i]
	}
	var keys []string
	it := b.List(&blob.ListOptions{Prefix: prefix})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, rhizome.Errorf(rhizome.EUnavailable, "listing %s: %v", pattern, err)
		}
		if obj.IsDir {
			continue
		}
		if ok, _ := path.Match(key, obj.Key); ok || obj.Key == key {
			keys = append(keys, obj.Key)
		}
	}
	if len(keys) == 0 {
		return nil, rhizome.Errorf(rhizome.ENotFound, "path %s: no object matches", pattern).
			WithHint("check the bucket and prefix; globs match the last part of the key")
	}
	sort.Strings(keys)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, rhizome.Wrap(err, "creating %s", dir)
	}
	var out []string
	for i, k := range keys {
		dst := filepath.Join(dir, fmt.Sprintf("%04d-%s", i, path.Base(k)))
		if err := download(ctx, b, k, dst); err != nil {
			return nil, err
		}
		out = append(out, dst)
	}
	return out, nil
}

func download(ctx context.Context, b *blob.Bucket, key, dst string) error {
	r, err := b.NewReader(ctx, key, nil)
	if err != nil {
		return rhizome.Errorf(rhizome.EUnavailable, "reading s3 object %s: %v", key, err)
	}
	defer r.Close()
	tmp := dst + ".part"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return rhizome.Wrap(err, "writing %s", tmp)
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		os.Remove(tmp)
		return rhizome.Errorf(rhizome.EUnavailable, "downloading s3 object %s: %v", key, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return rhizome.Wrap(err, "writing %s", tmp)
	}
	return rhizome.Wrap(os.Rename(tmp, dst), "writing %s", dst)
}
