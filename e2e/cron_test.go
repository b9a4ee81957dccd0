package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCron: app.json's cron entries deploy with the code. A bad schedule
// fails the push naming app.json's line; cron:run runs an entry now as the
// app's user in the serving release with its config, streaming its output
// and returning its status; the scheduler fires an entry on its own (a
// seconds field, which only CONDUCTOR_TEST_CRON_SECONDS allows, makes it
// fire within a second), skips and records a run due while the previous
// one goes on, and `logs --process cron` shows the output.
func TestCron(t *testing.T) {
	t.Setenv("CONDUCTOR_TEST_CRON_SECONDS", "1")
	in := StartInstance(t)
	work := in.WorkTree("hello")
	const app = "cronapp"

	writeFile(t, filepath.Join(work, "app.json"), `{
  "cron": [
    {"command": "python manage.py clearsessions", "schedule": "@daily"},
    {"command": "echo never", "schedule": "61 * * * *"}
  ]
}
`)
	in.Commit(work, "bad schedule")
	r := in.Push(work, app, "main")
	if r.Code == 0 || !strings.Contains(r.Stderr, `app.json line 4: cron entry 2 (schedule "61 * * * *")`) || !strings.Contains(r.Stderr, "61") {
		t.Fatalf("a push with a bad schedule: %s", r)
	}

	writeFile(t, filepath.Join(work, "app.json"), `{
  "cron": [
    {"name": "env", "command": "echo \"user=$(id -un) release=$CONDUCTOR_RELEASE greeting=$GREETING dir=$(pwd)\"", "schedule": "CRON_TZ=Europe/Paris 0 3 * * *"},
    {"name": "fail", "command": "echo failing; exit 3", "schedule": "@monthly"},
    {"name": "slow", "command": "echo tick; sleep 2.5", "schedule": "* * * * * *", "timeout": "1m"},
    {"name": "hang", "command": "echo hanging; (sleep 60 &); sleep 60", "schedule": "@yearly", "timeout": 1}
  ]
}
`)
	in.Commit(work, "cron entries")
	if r := in.Push(work, app, "main"); r.Code != 0 {
		t.Fatalf("push: %s", r)
	}
	if r := in.SSH(in.AdminKey, "config:set "+app+" GREETING=hi-cron"); r.Code != 0 {
		t.Fatalf("config:set: %s", r)
	}
	var releases []struct {
		ID      string `json:"id"`
		Current bool   `json:"current"`
	}
	r = in.SSH(in.AdminKey, "releases "+app+" --json")
	if err := json.Unmarshal([]byte(r.Stdout), &releases); err != nil {
		t.Fatalf("releases: %v: %s", err, r)
	}
	var current string
	for _, rel := range releases {
		if rel.Current {
			current = rel.ID
		}
	}

	// cron:run streams the output of the serving release's entry.
	r = in.SSH(in.AdminKey, "cron:run "+app+" env")
	if r.Code != 0 || !strings.Contains(r.Stdout, "release="+current+" greeting=hi-cron dir=") {
		t.Fatalf("cron:run env (current release %s): %s", current, r)
	}
	if os.Geteuid() == 0 && !strings.Contains(r.Stdout, "user="+app+" ") {
		t.Fatalf("cron:run env did not run as the app's user: %s", r)
	}
	// config:set's release runs the pushed release's directory again.
	if !strings.Contains(r.Stdout, "dir="+filepath.Join(in.Data, "srv", "projects", app, "releases")+"/") {
		t.Fatalf("cron:run env did not run in a release's directory: %s", r)
	}
	r = in.SSH(in.AdminKey, "cron:run "+app+" fail")
	if r.Code != 3 || !strings.Contains(r.Stdout, "failing") {
		t.Fatalf("cron:run fail: want exit 3 and its output: %s", r)
	}
	// At its timeout a run is killed with what it started.
	began := time.Now()
	r = in.SSH(in.AdminKey, "cron:run "+app+" hang")
	if r.Code != 128+9 || !strings.Contains(r.Stdout, "hanging") || time.Since(began) > 20*time.Second {
		t.Fatalf("cron:run hang: want it killed at its 1 s timeout: %s", r)
	}
	if out, _ := exec.Command("pgrep", "-u", app, "-f", "sleep 60").Output(); os.Geteuid() == 0 && len(out) > 0 {
		t.Fatalf("the timed-out run left processes: %s", out)
	}
	if r := in.SSH(in.AdminKey, "cron:run "+app+" nope"); r.Code == 0 || !strings.Contains(r.Stderr, "no cron entry nope") {
		t.Fatalf("cron:run of a missing entry: %s", r)
	}

	type run struct {
		ID       int64  `json:"id"`
		Entry    string `json:"entry"`
		Release  string `json:"release"`
		Trigger  string `json:"trigger"`
		Status   string `json:"status"`
		ExitCode int    `json:"exit_code"`
		Duration int64  `json:"duration_ms"`
		Error    string `json:"error"`
	}
	var entries []struct {
		ID       string `json:"id"`
		Schedule string `json:"schedule"`
		Next     string `json:"next"`
		Last     *run   `json:"last"`
	}
	r = in.SSH(in.AdminKey, "cron "+app+" --json")
	if err := json.Unmarshal([]byte(r.Stdout), &entries); err != nil || len(entries) != 4 {
		t.Fatalf("cron --json: %v: %s", err, r)
	}
	if e := entries[1]; e.ID != "fail" || e.Last == nil || e.Last.Status != "failed" || e.Last.ExitCode != 3 || e.Next == "" {
		t.Fatalf("cron --json: the failed run is not recorded: %+v", e)
	}
	if !strings.HasSuffix(entries[0].Next, ":00:00Z") && !strings.HasSuffix(entries[0].Next, "T01:00:00Z") && !strings.HasSuffix(entries[0].Next, "T02:00:00Z") {
		t.Fatalf("cron --json: 03:00 Paris is 01:00 or 02:00 UTC: %+v", entries[0])
	}

	// The scheduler fires "slow" every second; a run lasts 2.5 s, so the
	// ones due meanwhile are skipped and recorded.
	var hang *run
	r = in.SSH(in.AdminKey, "cron "+app+" --json")
	_ = json.Unmarshal([]byte(r.Stdout), &entries)
	if hang = entries[3].Last; hang == nil || hang.Status != "timed out" {
		t.Fatalf("the timed-out run is not recorded as such: %s", r)
	}
	var runs []run
	waitFor(t, "a scheduled run of slow to succeed and one to be skipped", func() bool {
		r := in.SSH(in.AdminKey, "cron "+app+" --runs 100 --json")
		runs = nil
		if json.Unmarshal([]byte(r.Stdout), &runs) != nil {
			return false
		}
		var ok, skipped bool
		for _, x := range runs {
			if x.Entry != "slow" || x.Trigger != "schedule" {
				continue
			}
			ok = ok || (x.Status == "succeeded" && x.Release == current && x.Duration >= 2000)
			skipped = skipped || (x.Status == "skipped" && strings.Contains(x.Error, "was still going"))
		}
		return ok && skipped
	})
	for _, x := range runs {
		if x.Entry == "slow" && x.Status == "running" {
			for _, y := range runs {
				if y.Entry == "slow" && y.Status == "running" && y.ID != x.ID {
					t.Fatalf("two runs of slow at once: %+v", runs)
				}
			}
		}
	}

	r = in.SSH(in.AdminKey, "logs "+app+" --process cron -n 200")
	for _, want := range []string{": tick", ": failing", "greeting=hi-cron", "exited with status 3"} {
		if !strings.Contains(r.Stdout, want) {
			t.Fatalf("logs --process cron lacks %q: %s", want, r)
		}
	}
	if strings.Contains(r.Stdout, "web.1:") {
		t.Fatalf("logs --process cron shows other processes: %s", r)
	}
}

// TestCronOnWorker: an app on a worker's host has its entries fired by
// that host's scheduler (its state over NATS), cron:run reaches it there,
// and its output is in that host's logs.
func TestCronOnWorker(t *testing.T) {
	t.Setenv("CONDUCTOR_TEST_CRON_SECONDS", "1")
	natsAddr := freeAddr(t)
	in := StartInstance(t, "--nats-addr", natsAddr)
	w := in.StartWorker(t, "nats://"+natsAddr, filepath.Join(in.Data, "nats.token"), filepath.Join(in.Data, "nats-tls", "ca.pem"), "w1")
	in.waitHosts(t, "local", "w1")
	must(t, "apps:create", in.SSH(in.AdminKey, "apps:create remote-cron --host w1"))
	work := in.WorkTree("hello")
	writeFile(t, filepath.Join(work, "app.json"), `{"cron": [
  {"name": "tick", "command": "echo tick-$CONDUCTOR_APP", "schedule": "*/2 * * * * *"},
  {"name": "host", "command": "echo on-$(hostname)-$PWD", "schedule": "@yearly"}
]}`)
	in.Commit(work, "cron")
	in.pushOK(work, "remote-cron")
	r := in.SSH(in.AdminKey, "cron:run remote-cron host")
	if r.Code != 0 || !strings.Contains(r.Stdout, "-"+w.Data) {
		t.Fatalf("cron:run on w1 (data %s): %s", w.Data, r)
	}
	waitFor(t, "a scheduled run of tick on w1", func() bool {
		var runs []struct {
			Entry   string `json:"entry"`
			Trigger string `json:"trigger"`
			Status  string `json:"status"`
		}
		r := in.SSH(in.AdminKey, "cron remote-cron --runs 20 --json")
		if json.Unmarshal([]byte(r.Stdout), &runs) != nil {
			return false
		}
		for _, x := range runs {
			if x.Entry == "tick" && x.Trigger == "schedule" && x.Status == "succeeded" {
				return true
			}
		}
		return false
	})
	if r := in.SSH(in.AdminKey, "logs remote-cron --process cron -n 50"); !strings.Contains(r.Stdout, ": tick-remote") {
		t.Fatalf("logs --process cron on w1: %s", r)
	}
}
