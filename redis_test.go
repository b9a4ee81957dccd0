package conductor_test

import (
	"strings"
	"testing"

	"github.com/hasadna/conductor"
)

func TestParseRedisMaxMemory(t *testing.T) {
	for in, want := range map[string]string{
		"64mb": "64mb", "64MB": "64mb", "64M": "64mb", "1gb": "1gb", "2G": "2gb", "1024kb": "1024kb", " 128mb ": "128mb", "64gb": "64gb",
	} {
		got, err := conductor.ParseRedisMaxMemory(in)
		if err != nil || got != want {
			t.Errorf("ParseRedisMaxMemory(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0mb", "64", "64mb\nrequirepass x", "1kb", "65gb", "-1mb", "64 mb", "64tb", "1e3mb", "064mb", "12345678mb"} {
		if got, err := conductor.ParseRedisMaxMemory(in); conductor.ErrorCode(err) != conductor.EINVALID {
			t.Errorf("ParseRedisMaxMemory(%q) = %q, %v; want invalid", in, got, err)
		}
	}
}

func TestValidateRedisPolicy(t *testing.T) {
	for _, p := range conductor.RedisPolicies {
		if err := conductor.ValidateRedisPolicy(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	for _, p := range []string{"", "LRU", "allkeys-lru\nsave", "allkeys-lru "} {
		if err := conductor.ValidateRedisPolicy(p); conductor.ErrorCode(err) != conductor.EINVALID {
			t.Errorf("ValidateRedisPolicy(%q) = %v, want invalid", p, err)
		}
	}
}

func TestRedisURLAndString(t *testing.T) {
	r := &conductor.Redis{Port: 9100, Password: "s3cret", MaxMemory: "64mb", Policy: "noeviction"}
	if got, want := r.URL(), "redis://:s3cret@127.0.0.1:9100/0"; got != want {
		t.Errorf("URL = %q, want %q", got, want)
	}
	if s := r.String(); strings.Contains(s, "s3cret") || !strings.Contains(s, "9100") {
		t.Errorf("String = %q: want the port and no password", s)
	}
}
