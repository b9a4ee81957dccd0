package e2e

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// s3Server is a real S3-compatible server for the test: versitygw with its
// posix backend, built by make setup from tools/s3server (not a mock: it
// checks SigV4 signatures and stores the objects as files).
type s3Server struct {
	Addr           string // 127.0.0.1:port
	Access, Secret string
	Dir            string // the posix backend's root: one directory per bucket
	Client         *minio.Client
	cmd            *exec.Cmd
	exited         chan struct{}
}

// s3ServerBin is where scripts/setup.sh builds versitygw.
func s3ServerBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("CONDUCTOR_S3SERVER")
	if bin == "" {
		bin = "/opt/conductor/s3server/versitygw"
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("the S3-compatible server of the tests is missing (make setup builds it): %v", err)
	}
	return bin
}

// startS3 starts the server on a free port in a temp dir, with a bucket
// made, and stops it when the test ends.
func startS3(t *testing.T, bucket string) *s3Server {
	t.Helper()
	s := &s3Server{Addr: freeAddr(t), Access: "conductor-test", Secret: "s3cr3t-for-the-e2e-test", Dir: t.TempDir()}
	s.start(t)
	t.Cleanup(s.stop)
	var err error
	s.Client, err = minio.New(s.Addr, &minio.Options{Creds: credentials.NewStaticV4(s.Access, s.Secret, ""), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Client.MakeBucket(context.Background(), bucket, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		t.Fatalf("make bucket %s: %v", bucket, err)
	}
	return s
}

func (s *s3Server) start(t *testing.T) {
	t.Helper()
	s.cmd = exec.Command(s3ServerBin(t), "--access", s.Access, "--secret", s.Secret, "--port", s.Addr, "--quiet",
		"posix", filepath.Join(s.Dir))
	s.cmd.Stdout, s.cmd.Stderr = os.Stderr, os.Stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.exited = make(chan struct{})
	go func() { s.cmd.Wait(); close(s.exited) }()
	// Ready once it accepts connections (or failed if it exited).
	deadline := time.Now().Add(30 * time.Second)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		if c, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
			c.Close()
			return
		}
		select {
		case <-s.exited:
			t.Fatalf("versitygw exited at start")
		case <-time.After(wait):
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw does not listen on %s after 30s", s.Addr)
		}
	}
}

// stop ends the server (and waits for it).
func (s *s3Server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	s.cmd.Process.Kill()
	<-s.exited
}

// objects lists the keys (and sizes) under prefix in bucket.
func (s *s3Server) objects(t *testing.T, bucket, prefix string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for o := range s.Client.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("list %s/%s: %v", bucket, prefix, o.Err)
		}
		out[o.Key] = o.Size
	}
	return out
}
