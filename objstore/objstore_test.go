package objstore_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/connector"
	_ "github.com/rhizome-mesh/rhizome/connector/all"
	"github.com/rhizome-mesh/rhizome/internal/testenv"
	"github.com/rhizome-mesh/rhizome/objstore"
)

var ctx = context.Background()

// put uploads objects to the fake with the plain AWS SDK, as another
// system would.
func put(t *testing.T, endpoint, bucket string, objects map[string]string) {
	t.Helper()
	client := s3.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("rhizome", "rhizome-secret", "")},
		func(o *s3.Options) { o.BaseEndpoint = aws.String(endpoint); o.UsePathStyle = true })
	for k, v := range objects {
		if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: strings.NewReader(v)}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFetchAndStage(t *testing.T) {
	endpoint, bucket, props := testenv.S3(t)
	put(t, endpoint, bucket, map[string]string{
		"raw/orders-1.csv": "id,amount\n1,10\n",
		"raw/orders-2.csv": "id,amount\n2,20\n3,30\n",
		"raw/other.txt":    "not csv",
	})
	st := objstore.New(props)
	dir := t.TempDir()
	files, err := st.Fetch(ctx, "s3://"+bucket+"/raw/orders-*.csv", dir)
	if err != nil || len(files) != 2 {
		t.Fatalf("fetch: %v %v", files, err)
	}
	b, _ := os.ReadFile(files[1])
	if string(b) != "id,amount\n2,20\n3,30\n" {
		t.Fatalf("second file: %q", b)
	}
	if _, err := st.Fetch(ctx, "s3://"+bucket+"/raw/nope-*.csv", dir); rhizome.Code(err) != rhizome.ENotFound {
		t.Fatalf("no match: %v", err)
	}

	// The csv connector reads s3:// paths through it.
	c, err := connector.Open("csv", map[string]any{"path": "s3://" + bucket + "/raw/orders-*.csv"})
	if err != nil {
		t.Fatal(err)
	}
	stage := t.TempDir()
	staged, err := c.Stage(ctx, connector.Env{StageDir: stage, BaseDir: t.TempDir(), Objects: st})
	if err != nil || len(staged.Files) != 2 || staged.Bytes == 0 {
		t.Fatalf("stage: %+v %v", staged, err)
	}
	if _, err := os.Stat(filepath.Join(stage, staged.Files[0])); err != nil {
		t.Fatal(err)
	}
	// Without object storage, an s3:// path is a clear error.
	if _, err := c.Stage(ctx, connector.Env{StageDir: t.TempDir(), BaseDir: t.TempDir()}); rhizome.Code(err) != rhizome.EInvalid || !strings.Contains(err.Error(), "no object storage") {
		t.Fatalf("without object storage: %v", err)
	}
}
