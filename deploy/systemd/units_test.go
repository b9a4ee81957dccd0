package systemd

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestShippedUnits(t *testing.T) {
	want := map[string][]string{
		Conductor: {"/usr/local/bin/conductor", "serve", "--system"},
		Circusd:   {"/opt/conductor/circus/bin/circusd", "--log-level", "info", "/etc/conductor/circus.ini"},
	}
	names := map[string]bool{}
	for _, u := range Units() {
		names[u.Name] = true
		if !strings.Contains(u.Text, "Installed by `conductor install`") {
			t.Errorf("%s lacks the marker install and uninstall recognize it by", u.Name)
		}
		if Directive(u.Text, "Install", "WantedBy") != "multi-user.target" {
			t.Errorf("%s is not wanted by multi-user.target", u.Name)
		}
		if !strings.HasPrefix(AppendOutput(u.Text), "/var/log/conductor/") {
			t.Errorf("%s does not log under /var/log/conductor: %q", u.Name, AppendOutput(u.Text))
		}
		argv, err := ExecStart(u.Text)
		if w, ok := want[u.Name]; ok {
			if err != nil || !reflect.DeepEqual(argv, w) {
				t.Errorf("%s ExecStart = %q (%v), want %q", u.Name, argv, err, w)
			}
		}
	}
	for _, n := range []string{Conductor, Circusd, Worker} {
		if !names[n] {
			t.Errorf("unit %s is not shipped", n)
		}
	}
	// Upgrades restart conductor alone: it must not take circusd with it.
	c, _ := Find(Conductor)
	for _, key := range []string{"Requires", "BindsTo", "PartOf"} {
		if v := Directive(c.Text, "Unit", key); strings.Contains(v, Circusd) {
			t.Errorf("conductor.service %s=%s would tie circusd's life to it", key, v)
		}
	}
	// The worker template needs systemd to expand its instance name.
	w, _ := Find(Worker)
	if _, err := ExecStart(w.Text); err == nil {
		t.Error("ExecStart of the worker template parsed without its instance name")
	}
}

func TestInstance(t *testing.T) {
	u, err := Instance(Worker, "web2")
	if err != nil {
		t.Fatal(err)
	}
	if u.Name != "conductor-worker@web2.service" {
		t.Errorf("name = %q", u.Name)
	}
	argv, err := ExecStart(u.Text)
	if want := []string{"/usr/local/bin/conductor", "worker", "--system", "--host", "web2"}; err != nil || !reflect.DeepEqual(argv, want) {
		t.Errorf("ExecStart = %q (%v), want %q", argv, err, want)
	}
	if got := AppendOutput(u.Text); got != "/var/log/conductor/worker-web2.log" {
		t.Errorf("log = %q", got)
	}
	if _, err := Instance(Conductor, "web2"); err == nil {
		t.Error("a plain unit made an instance")
	}
}

func TestExecStartQuoting(t *testing.T) {
	unit := "[Unit]\nExecStart=/bin/false\n[Service]\nType=forking\nExecStart=-/usr/sbin/nginx -g 'daemon on; master_process on;'\n"
	argv, err := ExecStart(unit)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/usr/sbin/nginx", "-g", "daemon on; master_process on;"}; !reflect.DeepEqual(argv, want) {
		t.Errorf("argv = %q, want %q", argv, want)
	}
	if _, err := ExecStart("[Service]\nType=simple\n"); err == nil {
		t.Error("a unit without ExecStart parsed")
	}
	// Debian's own nginx unit, which the e2e test starts nginx from.
	if raw, err := os.ReadFile("/lib/systemd/system/nginx.service"); err == nil {
		if argv, err := ExecStart(string(raw)); err != nil || argv[0] != "/usr/sbin/nginx" {
			t.Errorf("Debian's nginx.service: %q, %v", argv, err)
		}
	}
}
