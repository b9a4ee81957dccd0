// Package dbtest starts real, throwaway database servers for tests: a
// PostgreSQL cluster and a MariaDB server, each in its own temp dir, on a free
// loopback port, with its unix socket in that dir. Nothing of the system's
// own servers is used or touched. It needs root (the servers run as the
// postgres and mysql users) and the packages `make setup` installs.
package dbtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hasadna/conductor/internal/loopport"
)

// Server is a running database server.
type Server struct {
	Kind     string // "postgres" or "mysql"
	Dir      string // its data, socket and log
	Host     string // loopback address apps and admins connect to
	Port     int
	AdminDSN string // superuser DSN over TCP, with a password

	stop     func() error
	stopOnce sync.Once
	stopErr  error
}

// Stop stops the server and removes its directory.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		s.stopErr = s.stop()
		if err := os.RemoveAll(s.Dir); err != nil && s.stopErr == nil {
			s.stopErr = err
		}
	})
	return s.stopErr
}

// Log returns the server's log, for test failures.
func (s *Server) Log() string {
	name := "postgres.log"
	if s.Kind == "mysql" {
		name = "error.log"
	}
	b, _ := os.ReadFile(filepath.Join(s.Dir, name))
	return string(b)
}

// TB is the part of testing.TB the helpers use.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
	Logf(format string, args ...any)
	Cleanup(func())
	Failed() bool
}

// Postgres starts a PostgreSQL cluster for the test and stops it at its
// end. It skips the test when not root.
func Postgres(t TB) *Server {
	t.Helper()
	return start(t, StartPostgres)
}

// MariaDB starts a MariaDB server for the test and stops it at its end. It
// skips the test when not root.
func MariaDB(t TB) *Server {
	t.Helper()
	return start(t, StartMariaDB)
}

func start(t TB, fn func(context.Context) (*Server, error)) *Server {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root to run database servers as their own users")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := fn(ctx)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s server log:\n%s", s.Kind, s.Log())
		}
		if err := s.Stop(); err != nil {
			t.Logf("stop %s: %v", s.Kind, err)
		}
	})
	return s
}

// postgresBin finds the newest installed PostgreSQL's binaries.
func postgresBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(dirs) == 0 {
		return "", errors.New("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): run make setup")
	}
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) < version(dirs[j]) })
	return filepath.Dir(dirs[len(dirs)-1]), nil
}

func version(initdb string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return n
}

// StartPostgres initializes and starts a cluster owned by the postgres user.
// Local and TCP logins both need a password (SCRAM), so the cluster behaves
// like a production one: an app gets in with its own credentials only.
func StartPostgres(ctx context.Context) (*Server, error) {
	bin, err := postgresBin()
	if err != nil {
		return nil, err
	}
	dir, err := ownedTempDir("conductor-pg-", "postgres")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	password := randomPassword()
	pwfile := filepath.Join(dir, "pwfile")
	if err := writeOwned(pwfile, password+"\n", "postgres"); err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if out, err := runAs(ctx, "postgres", filepath.Join(bin, "initdb"), "-D", data, "--username=postgres",
		"--pwfile="+pwfile, "--auth-local=scram-sha-256", "--auth-host=scram-sha-256",
		"--encoding=UTF8", "--no-locale", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	os.Remove(pwfile)
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=%s -c fsync=off -c max_connections=50", port, dir)
	if out, err := runAs(ctx, "postgres", filepath.Join(bin, "pg_ctl"), "-D", data, "-l", filepath.Join(dir, "postgres.log"),
		"-w", "-t", "60", "-o", opts, "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pg_ctl start: %w\n%s\n%s", err, out, log)
	}
	s := &Server{
		Kind: "postgres", Dir: dir, Host: "127.0.0.1", Port: port,
		AdminDSN: fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/postgres?sslmode=disable", password, port),
	}
	s.stop = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if out, err := runAs(ctx, "postgres", filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"); err != nil {
			return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
		}
		return nil
	}
	return s, nil
}

// StartMariaDB initializes and starts a MariaDB server run as the mysql
// user, and creates an administrator with a password (root logs in through
// the unix socket only, which Go's driver does not speak).
func StartMariaDB(ctx context.Context) (*Server, error) {
	for _, p := range []string{"/usr/sbin/mariadbd", "/usr/bin/mariadb-install-db", "/usr/bin/mariadb"} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("MariaDB is not installed (%s is missing): run make setup", p)
		}
	}
	dir, err := ownedTempDir("conductor-mariadb-", "mysql")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	sock := filepath.Join(dir, "mysqld.sock")
	if out, err := run(ctx, "/usr/bin/mariadb-install-db", "--no-defaults", "--user=mysql", "--datadir="+data,
		"--auth-root-authentication-method=socket", "--skip-test-db"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("mariadb-install-db: %w\n%s", err, out)
	}
	cmd := exec.Command("/usr/sbin/mariadbd", "--no-defaults", "--user=mysql", "--datadir="+data,
		"--socket="+sock, "--port="+strconv.Itoa(port), "--bind-address=127.0.0.1",
		"--pid-file="+filepath.Join(dir, "mariadbd.pid"), "--log-error="+filepath.Join(dir, "error.log"),
		"--innodb-buffer-pool-size=32M", "--innodb-flush-log-at-trx-commit=0", "--skip-log-bin")
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start mariadbd: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stop := func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
			return nil
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			return errors.New("mariadbd did not stop within 30s")
		}
	}
	password := randomPassword()
	client := func(sql string) ([]byte, error) {
		return run(ctx, "/usr/bin/mariadb", "--no-defaults", "--socket="+sock, "--user=root", "--batch", "-e", sql)
	}
	var out []byte
	for deadline := time.Now().Add(60 * time.Second); ; {
		if out, err = client("SELECT 1"); err == nil {
			break
		}
		select {
		case err := <-done:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			os.RemoveAll(dir)
			return nil, fmt.Errorf("mariadbd exited: %v\n%s", err, log)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			os.RemoveAll(dir)
			return nil, fmt.Errorf("mariadbd did not answer within 60s: %s", out)
		}
	}
	// 'localhost' matches socket logins and, with name resolution on,
	// TCP logins from 127.0.0.1.
	if out, err := client(fmt.Sprintf("CREATE USER 'admin'@'localhost' IDENTIFIED BY '%s'; "+
		"GRANT ALL PRIVILEGES ON *.* TO 'admin'@'localhost' WITH GRANT OPTION;", password)); err != nil {
		stop()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("create the admin user: %w\n%s", err, out)
	}
	return &Server{
		Kind: "mysql", Dir: dir, Host: "127.0.0.1", Port: port,
		AdminDSN: fmt.Sprintf("admin:%s@tcp(127.0.0.1:%d)/", password, port),
		stop:     stop,
	}, nil
}

// ownedTempDir makes a 0700 temp dir owned by a system user.
func ownedTempDir(prefix, owner string) (string, error) {
	u, err := user.Lookup(owner)
	if err != nil {
		return "", fmt.Errorf("user %s: %w (run make setup)", owner, err)
	}
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

func writeOwned(path, content, owner string) error {
	u, err := user.Lookup(owner)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return os.Chown(path, uid, gid)
}

// freePort finds a loopback port for a server to listen on, from 5000 to
// 9999: below the kernel's ephemeral range (loopport), and apart from
// the ranges of the e2e harness (10000 and up) and the nginx tests.
func freePort() (int, error) { return serverPorts.Port() }

var serverPorts = &loopport.Range{From: 5000, To: 9999}

func runAs(ctx context.Context, owner, name string, args ...string) ([]byte, error) {
	return run(ctx, "runuser", append([]string{"-u", owner, "--", name}, args...)...)
}

func run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = "/"
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return bytes.TrimSpace(out.Bytes()), err
}

// randomPassword is 26 characters of [A-Z2-7]: safe in a DSN and in SQL.
func randomPassword() string { return rand.Text() }

// Shared is one server for all the tests of a package, started on first
// use. Stop it from TestMain after m.Run.
type Shared struct {
	start func(context.Context) (*Server, error)
	once  sync.Once
	s     *Server
	err   error
}

// NewShared returns a Shared that starts its server with start
// (StartPostgres or StartMariaDB).
func NewShared(start func(context.Context) (*Server, error)) *Shared {
	return &Shared{start: start}
}

// Get starts the server on first use, or skips the test when not root.
func (sh *Shared) Get(t TB) *Server {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root to run database servers as their own users")
	}
	sh.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		sh.s, sh.err = sh.start(ctx)
	})
	if sh.err != nil {
		t.Fatalf("%v", sh.err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s server log:\n%s", sh.s.Kind, sh.s.Log())
		}
	})
	return sh.s
}

// Stop stops the server if it was started.
func (sh *Shared) Stop() error {
	if sh.s == nil {
		return nil
	}
	return sh.s.Stop()
}
