package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hasadna/conductor/internal/dbtest"
)

// dbBackupsJSON is db:backups --json.
type dbBackupsJSON struct {
	Backups []struct {
		ID        int64  `json:"id"`
		Alias     string `json:"alias"`
		Kind      string `json:"kind"`
		File      string `json:"file"`
		Size      int64  `json:"size"`
		Status    string `json:"status"`
		Error     string `json:"error"`
		Scheduled bool   `json:"scheduled"`
	} `json:"backups"`
	Schedules []struct {
		Alias    string `json:"alias"`
		Schedule string `json:"schedule"`
		Keep     int    `json:"keep"`
	} `json:"schedules"`
	Problems []string `json:"problems"`
}

func (in *Instance) dbBackups(app string) dbBackupsJSON {
	in.t.Helper()
	var l dbBackupsJSON
	out := must(in.t, "db:backups --json", in.SSH(in.AdminKey, "db:backups "+app+" --json"))
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		in.t.Fatalf("db:backups --json: %v\n%s", err, out)
	}
	return l
}

var backupIDRE = regexp.MustCompile(`^Backup (\d+) of `)

// TestDBBackupRestore, for a SQLite and a PostgreSQL app over real SSH: a
// restore gives back the rows written before the backup and not those
// written after; a damaged backup file, and one that passes the checksum
// but is truncated (its recorded SHA-256 rewritten), are refused with the
// database as it was; the files are root-only; developers may back up and
// list but not restore or schedule; a schedule keeps its N newest backups.
func TestDBBackupRestore(t *testing.T) {
	t.Parallel()
	pg := dbtest.Postgres(t)
	in := StartInstance(t, dsnFlag(t, pg)...)
	work := in.dbWorkTree(psycopgRequirement)
	dev := in.NewKey("dev")
	must(t, "keys:add dev", in.SSHIn(in.AdminKey, "keys:add dev", readFile(t, dev+".pub")))

	for _, tc := range []struct{ app, kind string }{{"bk-sq", "sqlite"}, {"bk-pg", "postgres"}} {
		func() { // the Instance's helpers fail the test itself: no subtests
			app := tc.app
			must(t, "apps:create", in.SSH(in.AdminKey, "apps:create "+app+" --db "+tc.kind))
			must(t, "access:grant", in.SSH(in.AdminKey, "access:grant "+app+" dev"))
			in.pushOK(work, app)
			before := in.greetings(app, "v1")

			// A developer takes the backup.
			start := time.Now()
			out := must(t, "db:backup", in.SSH(dev, "db:backup "+app))
			m := backupIDRE.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("db:backup printed %q", out)
			}
			t.Logf("db:backup %s: %s (%s over SSH)", tc.kind, strings.TrimSpace(out), time.Since(start).Round(time.Millisecond))
			id := m[1]
			l := in.dbBackups(app)
			if len(l.Backups) != 1 || l.Backups[0].Status != "succeeded" || l.Backups[0].Kind != tc.kind || l.Backups[0].Size == 0 || len(l.Problems) != 0 {
				t.Fatalf("db:backups: %+v", l)
			}
			dir := filepath.Join(in.Data, "db-backups", app)
			file := filepath.Join(dir, l.Backups[0].File)
			for path, mode := range map[string]os.FileMode{filepath.Join(in.Data, "db-backups"): 0o700, dir: 0o700, file: 0o600} {
				if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != mode || fileOwner(fi) != "root" {
					t.Errorf("%s: want root's with mode %v, got %v %v", path, mode, fi, err)
				}
			}
			if r := in.SSH(dev, "db:backups "+app); r.Code != 0 || !strings.Contains(r.Stdout, "succeeded") {
				t.Errorf("db:backups as a developer: %s", r)
			}
			if tc.kind == "sqlite" {
				// A backup that fails is recorded, listed and warned of.
				sq := filepath.Join(in.Data, "srv", "projects", app, "data", "db.sqlite3")
				if err := os.Chmod(sq, 0); err != nil {
					t.Fatal(err)
				}
				refused(t, "backup of an unreadable database", in.SSH(in.AdminKey, "db:backup "+app), "failed")
				if err := os.Chmod(sq, 0o600); err != nil {
					t.Fatal(err)
				}
				l := in.dbBackups(app)
				if len(l.Backups) != 2 || l.Backups[0].Status != "failed" || l.Backups[0].Error == "" || len(l.Problems) != 1 {
					t.Errorf("db:backups after a failed backup: %+v", l)
				}
				if r := in.SSH(in.AdminKey, "db:backups "+app); !strings.Contains(r.Stdout, "WARNING: the last backup of default") {
					t.Errorf("db:backups does not warn of the failed backup: %s", r)
				}
				if r := runCmd(t, "", nil, nil, conductorBin, "doctor", "--data", in.Data); !strings.Contains(r.Stdout, "db backups") || !strings.Contains(r.Stdout, app+": the last backup of default") {
					t.Errorf("doctor does not warn of the failed backup: %s", r)
				}
				if entries, _ := os.ReadDir(dir); len(entries) != 1 {
					t.Errorf("a failed backup left files: %v", entries)
				}
			}

			after := in.greetings(app, "v1") // a row written after the backup
			if after <= before {
				t.Fatalf("greetings %d after %d", after, before)
			}
			// A table made after the backup (as a later migration would,
			// as the app) is gone after the restore.
			var appConn *pgx.Conn
			if tc.kind == "postgres" {
				creds := creds(in, app)
				cfg, err := pgx.ParseConfig(pg.AdminDSN)
				if err != nil {
					t.Fatal(err)
				}
				cfg.Database, cfg.User, cfg.Password = creds.Name, creds.User, creds.Password
				if appConn, err = pgx.ConnectConfig(context.Background(), cfg); err != nil {
					t.Fatal(err)
				}
				defer appConn.Close(context.Background())
				if _, err := appConn.Exec(context.Background(), `CREATE TABLE made_after (id int)`); err != nil {
					t.Fatal(err)
				}
			}

			refused(t, "restore without --confirm", in.SSH(in.AdminKey, "db:restore "+app+" "+id), "--confirm")
			refused(t, "restore as a developer", in.SSH(dev, "db:restore "+app+" "+id+" --confirm"), "needs an admin")
			refused(t, "schedule as a developer", in.SSH(dev, "db:backups:schedule "+app+" @daily"), "needs an admin")
			refused(t, "restore of a bad id", in.SSH(in.AdminKey, "db:restore "+app+" x1 --confirm"), "invalid backup id")
			refused(t, "restore of no such backup", in.SSH(in.AdminKey, "db:restore "+app+" 999 --confirm"), "no backup 999")
			refused(t, "backup of no such alias", in.SSH(in.AdminKey, "db:backup "+app+" --alias nosuch"), "has no database nosuch")

			// A damaged file is refused before anything changes.
			good, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			bad := append([]byte(nil), good...)
			bad[len(bad)/2] ^= 0xff
			if err := os.WriteFile(file, bad, 0o600); err != nil {
				t.Fatal(err)
			}
			refused(t, "restore of a damaged file", in.SSH(in.AdminKey, "db:restore "+app+" "+id+" --confirm"), "damaged")
			if n := in.greetings(app, "v1"); n != after+1 {
				t.Fatalf("after a refused restore the app counts %d, want %d", n, after+1)
			}
			// A truncated file that passes the checksum (recorded again):
			// the restore itself fails, and rolls back.
			trunc := good[:len(good)*2/3]
			if err := os.WriteFile(file, trunc, 0o600); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(trunc)
			in.stateQuery(`UPDATE db_backups SET sha256 = '%s' WHERE id = %s`, hex.EncodeToString(sum[:]), id)
			r := in.SSH(in.AdminKey, "db:restore "+app+" "+id+" --confirm")
			if r.Code == 0 {
				t.Fatalf("restore of a truncated backup succeeded: %s", r)
			}
			t.Logf("truncated %s backup: %s", tc.kind, strings.TrimSpace(r.Stderr))
			if n := in.greetings(app, "v1"); n != after+2 {
				t.Fatalf("after a failed restore the app counts %d, want %d: the database changed", n, after+2)
			}

			// The real restore: the rows before the backup, not those after.
			if err := os.WriteFile(file, good, 0o600); err != nil {
				t.Fatal(err)
			}
			sum = sha256.Sum256(good)
			in.stateQuery(`UPDATE db_backups SET sha256 = '%s' WHERE id = %s`, hex.EncodeToString(sum[:]), id)
			if tc.kind == "postgres" {
				// A sound archive whose restore fails after DROP SCHEMA
				// public CASCADE ran (CREATE SCHEMA is refused): rolled
				// back, every table and row is still there.
				admin := pgAdmin(t, pg, creds(in, app).Name)
				if _, err := admin.Exec(context.Background(), `REVOKE CREATE ON DATABASE "`+app+`" FROM "`+app+`"`); err != nil {
					t.Fatal(err)
				}
				r := in.SSH(in.AdminKey, "db:restore "+app+" "+id+" --confirm")
				if r.Code == 0 || !strings.Contains(r.Stderr, "rolled back") {
					t.Fatalf("restore that fails half way: %s", r)
				}
				t.Logf("postgres restore failing after its DROP SCHEMA: %s", strings.TrimSpace(r.Stderr))
				if _, err := admin.Exec(context.Background(), `GRANT CREATE ON DATABASE "`+app+`" TO "`+app+`"`); err != nil {
					t.Fatal(err)
				}
				if n := in.greetings(app, "v1"); n != after+3 {
					t.Fatalf("after a rolled-back restore the app counts %d, want %d", n, after+3)
				}
			}
			start = time.Now()
			out = must(t, "db:restore", in.SSH(in.AdminKey, "db:restore "+app+" "+id+" --confirm"))
			t.Logf("db:restore %s: %s (%s over SSH)", tc.kind, strings.TrimSpace(strings.ReplaceAll(out, "\n", " | ")), time.Since(start).Round(time.Millisecond))
			if !strings.Contains(out, "is in maintenance during the restore") || !strings.Contains(out, "is out of maintenance") {
				t.Errorf("db:restore output: %s", out)
			}
			if n := in.greetings(app, "v1"); n != before+1 {
				t.Fatalf("after the restore the app counts %d greetings, want %d (%d before the backup + this one; %d were written after it)", n, before+1, before, after)
			}
			if appConn != nil {
				var n int
				if err := appConn.QueryRow(context.Background(), `SELECT count(*) FROM pg_tables WHERE tablename = 'made_after'`).Scan(&n); err != nil || n != 0 {
					t.Errorf("the table made after the backup: %d, %v; want it gone", n, err)
				}
			}
			if got := in.stateQuery(`SELECT count(*) FROM app_maintenance WHERE app_id = (SELECT id FROM apps WHERE name = '%s')`, app); got != "0" {
				t.Errorf("the app is still in maintenance after the restore: %s", got)
			}
			if got := in.stateQuery(`SELECT outcome FROM audit WHERE op = 'db:restore' AND app = '%s' ORDER BY id DESC LIMIT 1`, app); got != "ok" {
				t.Errorf("audit of db:restore: %q", got)
			}
		}()
	}

	// Retention: a schedule every second keeping 2 leaves the 2 newest
	// scheduled backups (and db:backup's own).
	{
		const app = "bk-sq"
		refused(t, "bad schedule", in.SSH(in.AdminKey, "db:backups:schedule "+app+" 'not cron'"), "invalid schedule")
		refused(t, "bad keep", in.SSH(in.AdminKey, "db:backups:schedule "+app+" @daily --keep 0"), "invalid --keep")
		must(t, "schedule", in.SSH(in.AdminKey, "db:backups:schedule "+app+" '@every 1s' --keep 2"))
		waitFor(t, "4 scheduled backups, 2 kept", func() bool {
			// ids 1-3 are db:backup's (one failed): 7 is the 4th scheduled.
			hi, _ := strconv.Atoi(in.stateQuery(`SELECT coalesce(max(id), 0) FROM db_backups WHERE scheduled = 1 AND status = 'succeeded'`))
			return hi >= 7 && in.stateQuery(`SELECT count(*) FROM db_backups WHERE scheduled = 1 AND status = 'succeeded'`) == "2"
		})
		must(t, "schedule off", in.SSH(in.AdminKey, "db:backups:schedule "+app+" --off"))
		l := in.dbBackups(app)
		sched, manual := 0, 0
		for _, b := range l.Backups {
			if b.Scheduled && b.Status == "succeeded" {
				sched++
			} else if !b.Scheduled && b.Status == "succeeded" {
				manual++
			}
		}
		entries, err := os.ReadDir(filepath.Join(in.Data, "db-backups", app))
		if err != nil {
			t.Fatal(err)
		}
		// A backup may have started just before --off: at most one more.
		if sched < 2 || sched > 3 || manual != 1 || len(entries) != sched+manual {
			t.Errorf("after retention: %d scheduled, %d manual backups listed, %d files: %+v", sched, manual, len(entries), l)
		}
	}
}

// TestDBBackupRestoreMariaDB: a MariaDB app's restore gives back the rows
// written before the backup and not those after; a dump cut short is
// refused, and one that fails half way (after its DROP TABLE and CREATE
// TABLE ran) has the database loaded back from the dump taken just before.
func TestDBBackupRestoreMariaDB(t *testing.T) {
	t.Parallel()
	my := dbtest.MariaDB(t)
	in := StartInstance(t, dsnFlag(t, my)...)
	work := in.dbWorkTree(mysqlclientRequirement)
	const app = "bk-my"
	must(t, "apps:create", in.SSH(in.AdminKey, "apps:create "+app+" --db mysql"))
	in.pushOK(work, app)
	before := in.greetings(app, "v1")
	out := must(t, "db:backup", in.SSH(in.AdminKey, "db:backup "+app))
	m := backupIDRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("db:backup printed %q", out)
	}
	t.Logf("db:backup mysql: %s", strings.TrimSpace(out))
	id := m[1]
	l := in.dbBackups(app)
	if len(l.Backups) != 1 || l.Backups[0].Status != "succeeded" || l.Backups[0].Kind != "mysql" {
		t.Fatalf("db:backups: %+v", l)
	}
	file := filepath.Join(in.Data, "db-backups", app, l.Backups[0].File)
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	after := in.greetings(app, "v1")
	// put writes a version of the backup and records its checksum, as if
	// Conductor had written it.
	put := func(b []byte) {
		t.Helper()
		if err := os.WriteFile(file, b, 0o600); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		in.stateQuery(`UPDATE db_backups SET sha256 = '%s' WHERE id = %s`, hex.EncodeToString(sum[:]), id)
	}

	// Cut short at a statement's end: refused before anything runs.
	cut := strings.LastIndex(string(good[:len(good)*2/3]), ";\n") + 2
	put(good[:cut])
	refused(t, "restore of a cut dump", in.SSH(in.AdminKey, "db:restore "+app+" "+id+" --confirm"), "not a complete mariadb-dump")
	n := in.greetings(app, "v1")
	if n != after+1 {
		t.Fatalf("after a refused restore the app counts %d, want %d", n, after+1)
	}
	// Failing after the greetings table was dropped and made again: the
	// database is loaded back as it was.
	i := strings.Index(string(good), "INSERT INTO `greetings_greeting`")
	if i < 0 {
		t.Fatalf("no greetings rows in the dump:\n%s", good)
	}
	bad := append(append(append([]byte(nil), good[:i]...), "SELECT no_such_column FROM no_such_table;\n"...), good[i:]...)
	put(bad)
	r := in.SSH(in.AdminKey, "db:restore "+app+" "+id+" --confirm")
	if r.Code == 0 || !strings.Contains(r.Stderr, "put back as it was") {
		t.Fatalf("restore of a failing dump: %s", r)
	}
	t.Logf("failing mysql restore: %s", strings.TrimSpace(r.Stderr))
	if got := in.greetings(app, "v1"); got != n+1 {
		t.Fatalf("after a failed restore the app counts %d, want %d: the database was not put back", got, n+1)
	}

	put(good)
	out = must(t, "db:restore", in.SSH(in.AdminKey, "db:restore "+app+" "+id+" --confirm"))
	t.Logf("db:restore mysql: %s", strings.TrimSpace(strings.ReplaceAll(out, "\n", " | ")))
	if got := in.greetings(app, "v1"); got != before+1 {
		t.Fatalf("after the restore the app counts %d greetings, want %d (%d before the backup; %d after)", got, before+1, before, after)
	}
}

// TestDBBackupOnWorker: an app on a worker host is backed up and restored
// by that host's agent: the file is in the worker's data dir, and the
// restore gives back the rows written before the backup, not after.
func TestDBBackupOnWorker(t *testing.T) {
	t.Parallel()
	natsAddr := freeAddr(t)
	in := StartInstance(t, "--nats-addr", natsAddr)
	w := in.StartWorker(t, "nats://"+natsAddr, filepath.Join(in.Data, "nats.token"), filepath.Join(in.Data, "nats-tls", "ca.pem"), "w1")
	in.waitHosts(t, "local", "w1")
	const app = "bk-remote"
	must(t, "apps:create", in.SSH(in.AdminKey, "apps:create "+app+" --host w1"))
	in.pushOK(in.WorkTree("hello"), app)
	greetingsRE := regexp.MustCompile(`<p>greetings: (\d+)<`)
	greetings := func() int {
		t.Helper()
		code, body := w.Get(app, "/")
		m := greetingsRE.FindStringSubmatch(body)
		if code != 200 || m == nil {
			t.Fatalf("GET / on w1: %d %q", code, body)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	before := greetings()
	out := must(t, "db:backup", in.SSH(in.AdminKey, "db:backup "+app))
	m := backupIDRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("db:backup printed %q", out)
	}
	l := in.dbBackups(app)
	if len(l.Backups) != 1 || l.Backups[0].Status != "succeeded" {
		t.Fatalf("db:backups: %+v", l)
	}
	if fi, err := os.Stat(filepath.Join(w.Data, "db-backups", app, l.Backups[0].File)); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != l.Backups[0].Size {
		t.Fatalf("the backup file on w1: %v %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(in.Data, "db-backups", app)); err == nil {
		t.Errorf("the backup of w1's app is on the conductor's host")
	}
	after := greetings()
	out = must(t, "db:restore", in.SSH(in.AdminKey, "db:restore "+app+" "+m[1]+" --confirm"))
	t.Logf("db:restore on w1: %s", strings.TrimSpace(strings.ReplaceAll(out, "\n", " | ")))
	if n := greetings(); n != before+1 {
		t.Fatalf("after the restore w1's app counts %d greetings, want %d (%d before the backup; %d after)", n, before+1, before, after)
	}
}

func creds(in *Instance, app string) dbCreds { return in.appCreds(app) }
