package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// dbBackupsRemoteJSON is the off-host part of db:backups --json.
type dbBackupsRemoteJSON struct {
	Backups []struct {
		ID           int64  `json:"id"`
		File         string `json:"file"`
		Size         int64  `json:"size"`
		Status       string `json:"status"`
		Scheduled    bool   `json:"scheduled"`
		Remote       string `json:"remote"`
		RemoteStatus string `json:"remote_status"`
		RemoteError  string `json:"remote_error"`
		Location     string `json:"location"`
	} `json:"backups"`
	Problems []string `json:"problems"`
}

// TestDBBackupS3 copies a SQLite app's backups to a real S3-compatible
// server (versitygw) started here: db:backup uploads the file (the object
// is listed by an S3 client), db:backups shows where each backup is, a
// backup whose local file is gone is restored from its off-host copy (the
// rows written before the backup are back, those after gone), retention
// prunes the objects too, and with the server down the local backup still
// succeeds while db:backups, doctor and the log tell the upload failed.
// serve refuses a credentials file others can read.
func TestDBBackupS3(t *testing.T) {
	t.Parallel()
	const bucket, app = "conductor-backups", "s3-sq"
	s3 := startS3(t, bucket)
	credFile := filepath.Join(t.TempDir(), "s3.credentials")
	if err := os.WriteFile(credFile, []byte("# the e2e test's\naccess_key_id = "+s3.Access+"\nsecret_access_key = "+s3.Secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url := "s3://" + bucket + "/prod/db?endpoint=http://" + s3.Addr + "&region=us-east-1"
	in := StartInstance(t, "--backup-s3-url", url, "--backup-s3-credentials", credFile, "--notify-allow-private")

	// A credentials file others can read, and a bad URL, stop serve
	// before it starts anything.
	loose := filepath.Join(t.TempDir(), "loose.credentials")
	if err := os.WriteFile(loose, []byte("access_key_id = a\nsecret_access_key = b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ url, creds, want string }{
		{url, loose, "chmod 600"},
		{"s3://Bad_Bucket/x?endpoint=http://" + s3.Addr, credFile, "bad bucket name"},
		{"s3://" + bucket + "/../x?endpoint=http://" + s3.Addr, credFile, "bad prefix segment"},
		{url, "", "needs --backup-s3-credentials"},
	} {
		args := []string{"serve", "--data", in.Data, "--ssh-addr", freeAddr(t), "--backup-s3-url", tc.url}
		if tc.creds != "" {
			args = append(args, "--backup-s3-credentials", tc.creds)
		}
		r := runCmd(t, "", nil, nil, conductorBin, args...)
		if r.Code == 0 || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("serve with %s %s: want refused with %q, got %s", tc.url, tc.creds, tc.want, r)
		}
	}

	list := func() dbBackupsRemoteJSON {
		t.Helper()
		var l dbBackupsRemoteJSON
		out := must(t, "db:backups --json", in.SSH(in.AdminKey, "db:backups "+app+" --json"))
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			t.Fatalf("db:backups --json: %v\n%s", err, out)
		}
		return l
	}

	must(t, "apps:create", in.SSH(in.AdminKey, "apps:create "+app))
	in.pushOK(in.WorkTree("hello"), app)
	before := in.greetings(app, "v1")

	start := time.Now()
	out := must(t, "db:backup", in.SSH(in.AdminKey, "db:backup "+app))
	t.Logf("db:backup with an off-host copy: %s (%s over SSH)", strings.ReplaceAll(strings.TrimSpace(out), "\n", " | "), time.Since(start).Round(time.Millisecond))
	m := backupIDRE.FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "Copied off-host: object prod/db/"+app+"/") {
		t.Fatalf("db:backup printed %q", out)
	}
	id := m[1]
	l := list()
	if len(l.Backups) != 1 || l.Backups[0].RemoteStatus != "uploaded" || l.Backups[0].Location != "local+remote" || len(l.Problems) != 0 {
		t.Fatalf("db:backups after an upload: %+v", l)
	}
	b := l.Backups[0]
	if b.Remote != "prod/db/"+app+"/"+b.File {
		t.Errorf("object name %q for file %q", b.Remote, b.File)
	}
	// The object, as an S3 client of its own sees it.
	objs := s3.objects(t, bucket, "prod/db/"+app+"/")
	if size, ok := objs[b.Remote]; !ok || size != b.Size || len(objs) != 1 {
		t.Fatalf("objects in the bucket: %v; want %s of %d bytes", objs, b.Remote, b.Size)
	}

	// The local file is lost; rows are written after the backup.
	local := filepath.Join(in.Data, "db-backups", app, b.File)
	if err := os.Remove(local); err != nil {
		t.Fatal(err)
	}
	after := in.greetings(app, "v1")
	if after <= before {
		t.Fatalf("greetings %d after %d", after, before)
	}
	l = list()
	if l.Backups[0].Location != "remote-only" {
		t.Fatalf("a backup whose file is gone: %+v", l.Backups[0])
	}
	if r := in.SSH(in.AdminKey, "db:backups "+app); !strings.Contains(r.Stdout, "remote-only") || !strings.Contains(r.Stdout, "OFF-HOST") {
		t.Errorf("db:backups does not mark the backup remote-only: %s", r)
	}

	// Restored from the off-host copy: the rows before, not after.
	start = time.Now()
	out = must(t, "db:restore", in.SSH(in.AdminKey, "db:restore "+app+" "+id+" --confirm"))
	t.Logf("db:restore from the off-host copy: %s (%s over SSH)", strings.ReplaceAll(strings.TrimSpace(out), "\n", " | "), time.Since(start).Round(time.Millisecond))
	if n := in.greetings(app, "v1"); n != before+1 {
		t.Fatalf("after the restore from S3 the app counts %d greetings, want %d (%d before the backup; %d were written after)", n, before+1, before, after)
	}
	// The fetched copy was a temp file: nothing is left in the directory.
	if entries, _ := os.ReadDir(filepath.Dir(local)); len(entries) != 0 {
		t.Errorf("files left after the restore from S3: %v", entries)
	}

	// A damaged object is refused before the app is touched.
	if err := os.WriteFile(filepath.Join(s3.Dir, bucket, b.Remote), []byte("not a backup"), 0o644); err != nil {
		t.Fatal(err)
	}
	refused(t, "restore of a damaged object", in.SSH(in.AdminKey, "db:restore "+app+" "+id+" --confirm"), "the backup had")

	// Retention: keeping 1 scheduled backup removes the others' objects.
	must(t, "schedule", in.SSH(in.AdminKey, "db:backups:schedule "+app+" '@every 1s' --keep 1"))
	waitFor(t, "3 scheduled backups uploaded, 1 kept", func() bool {
		n := in.stateQuery(`SELECT count(*) FROM db_backups WHERE scheduled = 1 AND remote_status = 'uploaded'`)
		hi := in.stateQuery(`SELECT coalesce(max(id), 0) FROM db_backups WHERE scheduled = 1 AND remote_status = 'uploaded'`)
		return n == "1" && mustAtoi(t, hi) >= mustAtoi(t, id)+3
	})
	must(t, "schedule off", in.SSH(in.AdminKey, "db:backups:schedule "+app+" --off"))
	waitFor(t, "the last scheduled backup to end", func() bool {
		return in.stateQuery(`SELECT count(*) FROM db_backups WHERE status = 'running' OR remote_status = 'uploading'`) == "0"
	})
	want := map[string]bool{}
	for _, k := range strings.Fields(in.stateQuery(`SELECT remote FROM db_backups WHERE remote != ''`)) {
		want[k] = true
	}
	objs = s3.objects(t, bucket, "prod/db/"+app+"/")
	for k := range objs {
		if !want[k] {
			t.Errorf("object %s is left after retention (the state has %v)", k, want)
		}
	}
	if len(objs) != len(want) || len(objs) < 2 || len(objs) > 3 {
		t.Errorf("after retention: objects %v, state %v", objs, want)
	}

	// An object of the app that the state does not name (uploaded after
	// the state's archive was taken, say) is listed apart.
	stray := "prod/db/" + app + "/99-default-20200101T000000Z.sqlite3"
	if _, err := s3.Client.PutObject(context.Background(), bucket, stray, strings.NewReader("x"), 1, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	var u struct {
		Untracked []string `json:"untracked_remote"`
	}
	if err := json.Unmarshal([]byte(must(t, "db:backups --json", in.SSH(in.AdminKey, "db:backups "+app+" --json"))), &u); err != nil || len(u.Untracked) != 1 || u.Untracked[0] != stray {
		t.Errorf("untracked objects: %+v %v; want %s", u, err, stray)
	}

	// The server is down: the backup itself succeeds, the upload failed
	// is shown and raised (backup.failed, to a real receiver).
	recv := newHookReceiver(t)
	addHook(t, in, in.AdminKey, recv.URL+"/ok --app "+app+" --events backup.failed")
	s3.stop()
	start = time.Now()
	out = must(t, "db:backup with S3 down", in.SSH(in.AdminKey, "db:backup "+app))
	t.Logf("db:backup with the S3 server down: %s (%s)", strings.ReplaceAll(strings.TrimSpace(out), "\n", " | "), time.Since(start).Round(time.Millisecond))
	if !strings.Contains(out, "WARNING: the backup is kept on the host, but its copy to s3://"+bucket+"/prod/db failed") {
		t.Errorf("db:backup does not warn of the failed upload: %q", out)
	}
	l = list()
	last := l.Backups[0]
	if last.Status != "succeeded" || last.RemoteStatus != "failed" || last.RemoteError == "" || last.Location != "local" {
		t.Errorf("db:backups after a failed upload: %+v", last)
	}
	if _, err := os.Stat(filepath.Join(in.Data, "db-backups", app, last.File)); err != nil {
		t.Errorf("the local backup of a failed upload: %v", err)
	}
	problems := strings.Join(l.Problems, "\n")
	if !strings.Contains(problems, "the off-host copy of the last backup of default") {
		t.Errorf("db:backups problems: %q", problems)
	}
	if r := in.SSH(in.AdminKey, "db:backups "+app); !strings.Contains(r.Stdout, "off-host: copy to s3://") {
		t.Errorf("db:backups does not show the upload error: %s", r)
	}
	if r := runCmd(t, "", nil, nil, conductorBin, "doctor", "--data", in.Data); !strings.Contains(r.Stdout, app+": the off-host copy of the last backup of default") {
		t.Errorf("doctor does not warn of the failed upload: %s", r)
	}
	if !strings.Contains(in.logs.String(), "off-host copy of a database backup failed") {
		t.Errorf("serve did not log the failed upload")
	}
	h := findEvent(recv.wait(t, "backup.failed", "/ok", withEvent("backup.failed")), "backup.failed")
	if h.Event["app"] != app || !strings.Contains(fmt.Sprint(h.Event["error"]), "copy to s3://"+bucket+"/prod/db failed") {
		t.Errorf("backup.failed event of the failed upload: %s", h.Body)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}

// TestDBBackupS3OnWorker: a worker host given --backup-s3-url copies the
// backups of its apps itself (the files are there; serve has no target
// here), and restores one whose file is gone from that copy.
func TestDBBackupS3OnWorker(t *testing.T) {
	t.Parallel()
	const bucket, app = "worker-backups", "s3-remote"
	s3 := startS3(t, bucket)
	credFile := filepath.Join(t.TempDir(), "s3.credentials")
	if err := os.WriteFile(credFile, []byte("access_key_id = "+s3.Access+"\nsecret_access_key = "+s3.Secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	natsAddr := freeAddr(t)
	in := StartInstance(t, "--nats-addr", natsAddr)
	// StartWorker with the target's flags.
	w := &Worker{t: t, Host: "w1", Data: filepath.Join(in.Dir, "worker-w1"), HTTPAddr: freeAddr(t),
		natsURLs: "nats://" + natsAddr, natsToken: filepath.Join(in.Data, "nats.token"), natsCA: filepath.Join(in.Data, "nats-tls", "ca.pem"),
		out: &lockedBuffer{}, Extra: []string{"--backup-s3-url", "s3://" + bucket + "?endpoint=http://" + s3.Addr, "--backup-s3-credentials", credFile}}
	w.Start()
	t.Cleanup(func() {
		w.Stop()
		if t.Failed() {
			t.Logf("worker w1 output:\n%s", w.out.String())
		}
	})
	in.waitHosts(t, "local", "w1")
	must(t, "apps:create", in.SSH(in.AdminKey, "apps:create "+app+" --host w1"))
	in.pushOK(in.WorkTree("hello"), app)
	greetings := func() int {
		t.Helper()
		code, body := w.Get(app, "/")
		var n int
		if i := strings.Index(body, "<p>greetings: "); i >= 0 {
			fmt.Sscanf(body[i:], "<p>greetings: %d<", &n)
		}
		if code != 200 || n == 0 {
			t.Fatalf("GET / on w1: %d %q", code, body)
		}
		return n
	}
	before := greetings()
	out := must(t, "db:backup", in.SSH(in.AdminKey, "db:backup "+app))
	m := backupIDRE.FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "Copied off-host: object "+app+"/") {
		t.Fatalf("db:backup on w1 printed %q", out)
	}
	var l dbBackupsRemoteJSON
	if err := json.Unmarshal([]byte(must(t, "db:backups", in.SSH(in.AdminKey, "db:backups "+app+" --json"))), &l); err != nil {
		t.Fatal(err)
	}
	b := l.Backups[0]
	if objs := s3.objects(t, bucket, app+"/"); objs[b.Remote] != b.Size || b.Location != "local+remote" {
		t.Fatalf("objects %v for backup %+v", objs, b)
	}
	if err := os.Remove(filepath.Join(w.Data, "db-backups", app, b.File)); err != nil {
		t.Fatal(err)
	}
	after := greetings()
	out = must(t, "db:restore", in.SSH(in.AdminKey, "db:restore "+app+" "+m[1]+" --confirm"))
	t.Logf("db:restore on w1 from the off-host copy: %s", strings.ReplaceAll(strings.TrimSpace(out), "\n", " | "))
	if n := greetings(); n != before+1 {
		t.Fatalf("after the restore w1's app counts %d greetings, want %d (%d before the backup; %d after)", n, before+1, before, after)
	}
}
