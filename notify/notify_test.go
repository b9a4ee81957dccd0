package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestSignMatchesAReceiversHMAC(t *testing.T) {
	body := []byte(`{"event":"deploy.succeeded"}`)
	got := Sign("s3cret", 1700000000, body)
	// What a receiver computes, written out without Sign.
	m := hmac.New(sha256.New, []byte("s3cret"))
	m.Write([]byte("1700000000." + string(body)))
	if want := "sha256=" + hex.EncodeToString(m.Sum(nil)); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	now := time.Unix(1700000010, 0)
	if err := Verify("s3cret", "1700000000", got, body, now, 5*time.Minute); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	for name, check := range map[string]error{
		"other secret": Verify("other", "1700000000", got, body, now, 5*time.Minute),
		"other body":   Verify("s3cret", "1700000000", got, []byte(`{"event":"deploy.failed"}`), now, 5*time.Minute),
		"other time":   Verify("s3cret", "1700000001", got, body, now, 5*time.Minute),
		"replayed":     Verify("s3cret", "1700000000", got, body, now.Add(time.Hour), 5*time.Minute),
		"bad header":   Verify("s3cret", "x", got, body, now, 5*time.Minute),
	} {
		if check == nil {
			t.Errorf("%s: verified", name)
		}
	}
}

func TestSlackShape(t *testing.T) {
	ev := &Event{Event: DeployFailed, App: "blog", Commit: "0123456789abcdef", Pusher: "alice",
		Error: "pip failed: <@channel> & co", Log: "logs blog --build j1"}
	ev.Message = DeployMessage(ev)
	b, err := Body(FormatSlack, ev)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 {
		t.Fatalf("Slack body has keys other than text: %s", b)
	}
	want := "blog: deploy of 0123456789ab by alice failed: pip failed: &lt;@channel&gt; &amp; co (build log: logs blog --build j1)"
	if m["text"] != want {
		t.Fatalf("text = %q, want %q", m["text"], want)
	}
	b, err = Body(FormatJSON, ev)
	if err != nil {
		t.Fatal(err)
	}
	var back Event
	if err := json.Unmarshal(b, &back); err != nil || back.Error != ev.Error || back.App != "blog" {
		t.Fatalf("JSON body %s: %v", b, err)
	}
}

func TestValidateURL(t *testing.T) {
	for _, ok := range []string{"https://hooks.example.com/services/T0/B0/x", "http://10.0.0.1:8080/hook?token=a"} {
		if _, err := ValidateURL(ok); err != nil {
			t.Errorf("ValidateURL(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "ftp://example.com/", "https:///path", "https://user:pw@example.com/",
		"https://example.com/#x", "https://example.com:0/", "https://example.com:99999/", "https://exa mple.com/",
		"file:///etc/passwd", "https://example.com/" + strings.Repeat("a", 2100), "example.com/hook"} {
		if _, err := ValidateURL(bad); err == nil {
			t.Errorf("ValidateURL(%q) accepted it", bad)
		}
	}
}

func TestIsPublic(t *testing.T) {
	for _, a := range []string{"127.0.0.1", "10.1.2.3", "192.168.1.1", "172.16.0.1", "169.254.169.254", "::1",
		"fd00::1", "fe80::1", "0.0.0.0", "100.64.0.1", "::ffff:127.0.0.1", "224.0.0.1", "64:ff9b::a00:1"} {
		if IsPublic(netip.MustParseAddr(a)) {
			t.Errorf("%s counted public", a)
		}
	}
	for _, a := range []string{"8.8.8.8", "2001:4860:4860::8888", "93.184.216.34"} {
		if !IsPublic(netip.MustParseAddr(a)) {
			t.Errorf("%s counted not public", a)
		}
	}
}

func TestParseEventsAndWants(t *testing.T) {
	all, err := ParseEvents("")
	if err != nil || len(all) != len(Events) {
		t.Fatalf("ParseEvents(\"\") = %v, %v", all, err)
	}
	if _, err := ParseEvents("deploy.failed,nope"); err == nil {
		t.Fatal("an unknown event was accepted")
	}
	evs, _ := ParseEvents("deploy.failed, deploy.failed")
	s := &Subscription{AppID: 3, App: "blog", Events: evs}
	for i, c := range []struct {
		ev   Event
		want bool
	}{
		{Event{Event: DeployFailed, App: "blog"}, true},
		{Event{Event: DeployFailed, App: "shop"}, false},
		{Event{Event: DeploySucceeded, App: "blog"}, false},
		{Event{Event: Test, App: "blog"}, true},
	} {
		if got := s.Wants(&c.ev); got != c.want {
			t.Errorf("case %d: Wants = %v", i, got)
		}
	}
	platform := &Subscription{Events: []string{DeployFailed}}
	if !platform.Wants(&Event{Event: DeployFailed, App: "shop"}) {
		t.Error("a platform-wide subscription missed an app's event")
	}
}
