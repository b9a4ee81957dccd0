// Package offsite keeps off-host copies of per-app database backups in an
// S3-compatible bucket (AWS S3, MinIO, versitygw, SeaweedFS, …), set by the
// admin with --backup-s3-url and --backup-s3-credentials on serve and on
// every worker. Each host uploads the backups it takes: the files are there.
//
// Object names are Conductor's own: <prefix>/<app>/<file>, where the prefix
// is the admin's (checked when the URL is parsed), the app a validated app
// name and the file a backup file name the SSH server made (id, alias and
// time). Nothing a pushed repository or a user wrote goes into a name.
package offsite

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"syscall"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"golang.org/x/sys/unix"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/internal/lazyre"
)

// Target is an S3-compatible bucket and a prefix in it.
type Target struct {
	Bucket   string
	Prefix   string // "" or segments joined by "/", no leading or trailing "/"
	Endpoint string // host[:port]
	Secure   bool   // https
	Region   string

	client *minio.Client
}

// Config is what serve and worker are given.
type Config struct {
	URL         string // s3://bucket/prefix?endpoint=http://host:port&region=r
	Credentials string // path of the credentials file
}

// DefaultEndpoint is used when the URL names none.
const DefaultEndpoint = "https://s3.amazonaws.com"

var (
	bucketRE  = lazyre.New(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	segmentRE = lazyre.New(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$`)
	regionRE  = lazyre.New(`^[a-z0-9-]{1,40}$`)
)

// ParseURL parses s3://bucket[/prefix][?endpoint=URL][&region=NAME].
func ParseURL(raw string) (*Target, error) {
	bad := func(format string, a ...any) (*Target, error) {
		return nil, fmt.Errorf("--backup-s3-url %q: %s (the shape is s3://bucket/prefix?endpoint=https://host:port&region=us-east-1)", raw, fmt.Sprintf(format, a...))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("%v", err)
	}
	if u.Scheme != "s3" {
		return bad("the scheme must be s3")
	}
	if u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return bad("no user, fragment or opaque part")
	}
	t := &Target{Bucket: u.Host, Region: "us-east-1"}
	if !bucketRE.MatchString(t.Bucket) || strings.Contains(t.Bucket, "..") {
		return bad("bad bucket name %q", t.Bucket)
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		for _, seg := range strings.Split(p, "/") {
			if !segmentRE.MatchString(seg) || seg == "." || seg == ".." {
				return bad("bad prefix segment %q (letters, digits, '.', '_' and '-')", seg)
			}
		}
		t.Prefix = p
	}
	q := u.Query()
	for k := range q {
		if k != "endpoint" && k != "region" {
			return bad("unknown parameter %q (endpoint and region are known)", k)
		}
	}
	if r := q.Get("region"); r != "" {
		if !regionRE.MatchString(r) {
			return bad("bad region %q", r)
		}
		t.Region = r
	}
	ep := q.Get("endpoint")
	if ep == "" {
		ep = DefaultEndpoint
	}
	e, err := url.Parse(ep)
	if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" || (e.Path != "" && e.Path != "/") || e.RawQuery != "" || e.User != nil {
		return bad("endpoint %q must be http(s)://host[:port]", ep)
	}
	t.Endpoint, t.Secure = e.Host, e.Scheme == "https"
	return t, nil
}

// String is the target as the admin gave it, without credentials.
func (t *Target) String() string {
	s := "s3://" + t.Bucket
	if t.Prefix != "" {
		s += "/" + t.Prefix
	}
	return s
}

// Open parses c.URL, reads the credentials file (which must be a regular
// file of root's, or of this user's when not root, readable by no one
// else) and makes the client. It makes no request.
func Open(c Config) (*Target, error) {
	if c.URL == "" {
		if c.Credentials != "" {
			return nil, errors.New("--backup-s3-credentials without --backup-s3-url")
		}
		return nil, nil
	}
	t, err := ParseURL(c.URL)
	if err != nil {
		return nil, err
	}
	if c.Credentials == "" {
		return nil, errors.New("--backup-s3-url needs --backup-s3-credentials FILE (a 0600 file with access_key_id and secret_access_key)")
	}
	id, secret, err := ReadCredentials(c.Credentials)
	if err != nil {
		return nil, fmt.Errorf("--backup-s3-credentials: %w", err)
	}
	t.client, err = minio.New(t.Endpoint, &minio.Options{
		Creds: credentials.NewStaticV4(id, secret, ""), Secure: t.Secure, Region: t.Region,
		BucketLookup: minio.BucketLookupPath,
		// A target that is down fails the upload in seconds, not minutes:
		// the next backup tries again.
		MaxRetries: 3,
	})
	if err != nil {
		return nil, fmt.Errorf("S3 client for %s: %w", t, err)
	}
	return t, nil
}

// ReadCredentials reads a credentials file:
//
//	access_key_id = AKIA...
//	secret_access_key = ...
//
// (AWS_ACCESS_KEY_ID= and AWS_SECRET_ACCESS_KEY= are accepted too; blank
// lines and lines starting with # are skipped). The file must be a regular
// file, not a link, owned by root (by this user when not root), with no
// permission for group or others.
func ReadCredentials(path string) (id, secret string, err error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return "", "", err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return "", "", fmt.Errorf("%s is not a regular file", path)
	}
	if int(st.Uid) != os.Geteuid() {
		return "", "", fmt.Errorf("%s is owned by uid %d, not by uid %d (root): chown it", path, st.Uid, os.Geteuid())
	}
	if st.Mode&0o077 != 0 {
		return "", "", fmt.Errorf("%s has mode %04o: it holds a secret key, chmod 600 it", path, st.Mode&0o7777)
	}
	sc := bufio.NewScanner(io.LimitReader(f, 64<<10))
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return "", "", fmt.Errorf("%s:%d: not key = value", path, n)
		}
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		switch k {
		case "access_key_id", "aws_access_key_id":
			id = v
		case "secret_access_key", "aws_secret_access_key":
			secret = v
		default:
			return "", "", fmt.Errorf("%s:%d: unknown key %q (access_key_id and secret_access_key are known)", path, n, k)
		}
	}
	if err := sc.Err(); err != nil {
		return "", "", err
	}
	if id == "" || secret == "" {
		return "", "", fmt.Errorf("%s needs both access_key_id and secret_access_key", path)
	}
	return id, secret, nil
}

// checkName accepts an app name and a backup file name of Conductor's.
func checkName(app, file string) error {
	if err := conductor.ValidateAppName(app); err != nil {
		return err
	}
	if file != "" && (!segmentRE.MatchString(file) || strings.HasPrefix(file, ".")) {
		return conductor.Errorf(conductor.EINVALID, "bad backup file name %q", file)
	}
	return nil
}

// Key is the object name of an app's backup file.
func (t *Target) Key(app, file string) (string, error) {
	if err := checkName(app, file); err != nil {
		return "", err
	}
	return t.appPrefix(app) + file, nil
}

// url names an object in messages.
func (t *Target) url(key string) string {
	return "s3://" + t.Bucket + "/" + key
}

func (t *Target) appPrefix(app string) string {
	if t.Prefix == "" {
		return app + "/"
	}
	return t.Prefix + "/" + app + "/"
}

// Upload copies the file f (size bytes, of SHA-256 sum) to the app's
// object of that name and returns its key.
func (t *Target) Upload(ctx context.Context, app, file string, f *os.File, size int64, sum string) (string, error) {
	key, err := t.Key(app, file)
	if err != nil {
		return "", err
	}
	info, err := t.client.PutObject(ctx, t.Bucket, key, f, size, minio.PutObjectOptions{
		ContentType:  "application/octet-stream",
		UserMetadata: map[string]string{"Sha256": sum},
	})
	if err != nil {
		return "", fmt.Errorf("upload to %s: %w", t.url(key), err)
	}
	if info.Size != size {
		return "", fmt.Errorf("upload to %s: %d bytes stored of %d", t.url(key), info.Size, size)
	}
	return key, nil
}

// Download writes the object key into w, checking that it is size bytes
// of SHA-256 sum before it returns nil.
func (t *Target) Download(ctx context.Context, app, key string, w io.Writer, size int64, sum string) error {
	if !strings.HasPrefix(key, t.appPrefix(app)) {
		return conductor.Errorf(conductor.EINVALID, "object %q is not one of %s's", key, app)
	}
	if err := checkName(app, strings.TrimPrefix(key, t.appPrefix(app))); err != nil {
		return err
	}
	obj, err := t.client.GetObject(ctx, t.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return fmt.Errorf("download %s: %w", t.url(key), err)
	}
	defer obj.Close()
	h := sha256.New()
	// One byte more than expected tells a longer object.
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(obj, size+1))
	if err != nil {
		return fmt.Errorf("download %s: %w", t.url(key), err)
	}
	if n != size {
		return fmt.Errorf("download %s: %d bytes, the backup had %d", t.url(key), n, size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		return fmt.Errorf("download %s: SHA-256 %s, the backup had %s", t.url(key), got, sum)
	}
	return nil
}

// Object is one of an app's objects.
type Object struct {
	Key  string `json:"key"`
	File string `json:"file"`
	Size int64  `json:"size"`
}

// List lists an app's objects.
func (t *Target) List(ctx context.Context, app string) ([]Object, error) {
	if err := checkName(app, ""); err != nil {
		return nil, err
	}
	prefix := t.appPrefix(app)
	out := []Object{}
	for o := range t.client.ListObjects(ctx, t.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, fmt.Errorf("list %s: %w", t.url(prefix), o.Err)
		}
		out = append(out, Object{Key: o.Key, File: strings.TrimPrefix(o.Key, prefix), Size: o.Size})
	}
	return out, nil
}

// Remove deletes an app's object (none is no error).
func (t *Target) Remove(ctx context.Context, app, key string) error {
	if !strings.HasPrefix(key, t.appPrefix(app)) {
		return conductor.Errorf(conductor.EINVALID, "object %q is not one of %s's", key, app)
	}
	if err := t.client.RemoveObject(ctx, t.Bucket, key, minio.RemoveObjectOptions{}); err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil
		}
		return fmt.Errorf("remove %s: %w", t.url(key), err)
	}
	return nil
}
