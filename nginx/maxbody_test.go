package nginx

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSiteMaxBody: every app server block (plain and HTTPS) carries the
// app's client_max_body_size, 100m unless set, and nginx loads it; a value
// that is not nginx's size syntax is refused before anything is written.
func TestSiteMaxBody(t *testing.T) {
	n := setup(t, t.TempDir())
	n.HTTPSListen = freePort(t)
	for _, tt := range []struct{ set, want string }{{"", "100m"}, {"250m", "250m"}, {"1g", "1g"}, {"524288", "524288"}, {"512K", "512K"}} {
		conf := renderSite(t, n, Site{App: "hello", Release: "r1", Hosts: []string{"hello.localhost"}, Port: 9000, StaticDir: "/srv/static", MaxBody: tt.set})
		if got := directiveValues(string(conf), "client_max_body_size"); len(got) != 1 || got[0] != tt.want {
			t.Errorf("MaxBody %q: client_max_body_size %q, want [%s]", tt.set, got, tt.want)
		}
		if err := os.WriteFile(filepath.Join(n.sitesDir(), "hello.conf"), conf, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(n.Bin, "-T", "-p", n.Dir, "-c", n.confPath()).CombinedOutput()
		if err != nil {
			t.Fatalf("nginx -T with MaxBody %q: %v\n%s", tt.set, err, out)
		}
		if !bytes.Contains(out, []byte("client_max_body_size "+tt.want+";")) {
			t.Errorf("nginx -T does not show client_max_body_size %s", tt.want)
		}
	}
	for _, bad := range []string{"1m; root /", "-1", "1t", "1 m", "m", "1mb", "1m\n", "9999999999999"} {
		if _, err := n.siteConf(Site{App: "hello", Release: "r1", Hosts: []string{"hello.localhost"}, Port: 9000, StaticDir: "/srv/static", MaxBody: bad}); err == nil {
			t.Errorf("MaxBody %q was rendered", bad)
		}
	}
}

// TestSiteMaxBodyInTLSBlock: the HTTPS server block gets the same limit.
func TestSiteMaxBodyInTLSBlock(t *testing.T) {
	n := &Nginx{Dir: "/data/nginx", Listen: "127.0.0.1:8080", HTTPSListen: "127.0.0.1:8443"}
	conf, err := n.siteConf(Site{App: "hello", Release: "r1", Hosts: []string{"hello.localhost", "secure.example.org"}, Port: 9000,
		StaticDir: "/srv/static", MaxBody: "250m", TLS: []TLSHost{{Host: "secure.example.org", Cert: "/c.pem", Key: "/c.pem"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(conf), "client_max_body_size 250m;"); got != 2 {
		t.Errorf("client_max_body_size 250m appears %d times, want 2 (plain and HTTPS blocks):\n%s", got, conf)
	}
}
