package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/applogs"
	"github.com/hasadna/conductor/builder"
	"github.com/hasadna/conductor/circus"
	"github.com/hasadna/conductor/gitserver"
	"github.com/hasadna/conductor/nginx"
	"github.com/hasadna/conductor/provision"
	"github.com/hasadna/conductor/queue"
	"github.com/hasadna/conductor/sqlite"
)

type serveOptions struct {
	data, sshAddr, httpAddr, domain string
	natsURL, natsAddr, host         string
	system                          bool
	circusBin, nginxBin, python     string
	portRange, defaultDB, logLevel  string
	keep                            int
	jobs                            int
	logMaxBytes                     int64
	databases                       databaseOptions
	limits                          gitserver.Limits
}

func serveCommand() *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve --data DIR",
		Short: "Run Conductor: SSH git endpoint, commands, queue, builder, circusd and nginx",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := setupLogging(o.logLevel); err != nil {
				return err
			}
			return serve(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.data, "data", "", "data directory made by conductor init")
	f.StringVar(&o.sshAddr, "ssh-addr", "127.0.0.1:2222", "SSH listen address")
	f.StringVar(&o.httpAddr, "http-addr", "127.0.0.1:8080", "address of the front nginx")
	f.StringVar(&o.domain, "domain", "localhost", "apps are served at <app>.<domain>")
	f.StringVar(&o.natsURL, "nats-url", "", "external NATS server (default: embedded)")
	f.StringVar(&o.natsAddr, "nats-addr", "127.0.0.1:0", "listen address of the embedded NATS server (port 0: any free port)")
	f.StringVar(&o.host, "host", "local", "name of this host's builder queue")
	f.BoolVar(&o.system, "system", false, "production layout (/srv, system nginx and circus)")
	f.StringVar(&o.circusBin, "circus-bin", "/opt/conductor/circus/bin", "directory with circusd and circusctl")
	f.StringVar(&o.nginxBin, "nginx-bin", "/usr/sbin/nginx", "nginx binary")
	f.StringVar(&o.python, "python", "/usr/bin/python3", "Python interpreter for app virtualenvs")
	f.StringVar(&o.portRange, "port-range", "20000-29999", "ports for app processes")
	f.StringVar(&o.defaultDB, "default-db", conductor.DBSQLite, "database of apps created by a first push")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.IntVar(&o.keep, "keep-releases", 5, "releases kept per app for rollback")
	f.Int64Var(&o.logMaxBytes, "log-max-bytes", 10<<20, "size at which an app process log rotates (3 rotated files are kept)")
	f.IntVar(&o.jobs, "jobs", 4, "deploy jobs run at once on this host (one per app at a time)")
	o.databases.addFlags(f)
	d := gitserver.DefaultLimits()
	f.IntVar(&o.limits.MaxSessions, "ssh-max-sessions", d.MaxSessions, "SSH sessions running at once on this server (0: no limit)")
	f.IntVar(&o.limits.MaxSessionsPerKey, "ssh-max-sessions-per-key", d.MaxSessionsPerKey, "SSH sessions running at once per client key (0: no limit)")
	f.DurationVar(&o.limits.HandshakeTimeout, "ssh-handshake-timeout", d.HandshakeTimeout, "time a client has from connecting to authenticating (0: none)")
	f.DurationVar(&o.limits.IdleTimeout, "ssh-idle-timeout", d.IdleTimeout, "drop an SSH connection silent for this long (0: never)")
	f.DurationVar(&o.limits.MaxTimeout, "ssh-max-timeout", d.MaxTimeout, "drop any SSH connection this old (0: never)")
	f.Int64Var(&o.limits.MaxPushSize, "max-push-size", d.MaxPushSize, "largest pack a push may send, in bytes (git's receive.maxInputSize; 0: no limit)")
	return cmd
}

func serve(ctx context.Context, o serveOptions) error {
	if o.data == "" {
		return errors.New("--data is required")
	}
	if o.system {
		return errors.New("--system is not available yet: run self-contained with --data")
	}
	data, err := filepath.Abs(o.data)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(data, "conductor.db")); err != nil {
		return fmt.Errorf("%s is not a conductor data directory: run conductor init first", data)
	}
	if err := nginx.ValidateHost(o.domain); err != nil {
		return fmt.Errorf("--domain: %w", err)
	}
	ports, err := parsePortRange(o.portRange)
	if err != nil {
		return err
	}
	if o.keep < 1 || o.jobs < 1 {
		return errors.New("--keep-releases and --jobs must be at least 1")
	}
	if l := o.limits; l.MaxSessions < 0 || l.MaxSessionsPerKey < 0 || l.HandshakeTimeout < 0 ||
		l.IdleTimeout < 0 || l.MaxTimeout < 0 || l.MaxPushSize < 0 {
		return errors.New("SSH limits and --max-push-size cannot be negative (0: no limit)")
	}
	if os.Geteuid() == 0 {
		if err := checkTraversable(data); err != nil {
			return err
		}
	}

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	db, err := sqlite.Open(ctx, filepath.Join(data, "conductor.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	hostKey, err := loadHostKey(filepath.Join(data, "ssh_host_ed25519_key"))
	if err != nil {
		return err
	}
	// App users must be able to run this binary (circus runs app processes
	// through it), so serve from a copy in the data dir.
	bin, err := installSelf(filepath.Join(data, "bin"))
	if err != nil {
		return err
	}
	hooksDir := filepath.Join(data, "hooks")
	if err := gitserver.WriteHooks(hooksDir, bin); err != nil {
		return err
	}

	natsURL := o.natsURL
	if natsURL == "" {
		ns, err := queue.StartServer(o.natsAddr, filepath.Join(data, "nats"))
		if err != nil {
			return err
		}
		defer ns.Shutdown()
		natsURL = ns.ClientURL()
	}
	q, err := queue.Connect(ctx, natsURL, "conductor-serve")
	if err != nil {
		return err
	}
	defer q.Close()

	// Children live until the SSH server and builder have stopped.
	childCtx, stopChildren := context.WithCancel(context.WithoutCancel(ctx))
	defer stopChildren()
	owner := "root"
	if u, err := user.Current(); err == nil {
		owner = u.Username
	}
	circ := &circus.Circus{Bin: o.circusBin, Dir: filepath.Join(data, "circus"), Owner: owner}
	if err := circ.Start(childCtx); err != nil {
		return err
	}
	defer circ.Wait()
	defer stopChildren()
	ngx := &nginx.Nginx{Bin: o.nginxBin, Dir: filepath.Join(data, "nginx"), Listen: o.httpAddr}
	if os.Geteuid() == 0 {
		ngx.User = "nobody nogroup"
	}
	if err := ngx.Start(childCtx); err != nil {
		return err
	}
	defer ngx.Wait()

	layout := provision.Layout{Srv: filepath.Join(data, "srv")}
	databases, err := o.databases.databases(ctx, db, layout, o.defaultDB)
	if err != nil {
		return err
	}
	b := &builder.Builder{
		Store: db, Queue: q, Layout: layout, Circus: circ, Nginx: ngx, Databases: databases,
		Domain: o.domain, HTTPAddr: o.httpAddr, Python: o.python, Conductor: bin, Keep: o.keep, LogMaxBytes: o.logMaxBytes,
	}
	if err := b.Reconcile(ctx); err != nil {
		return fmt.Errorf("reconcile after restart: %w", err)
	}
	if err := q.ServeCancel(ctx, o.host, b.Cancel); err != nil {
		return err
	}
	// This host's worker answers `logs` for the apps it runs.
	if err := q.ServeAppLogs(ctx, o.host, func(ctx context.Context, req queue.AppLogsRequest, send func([]string) error) error {
		if err := conductor.ValidateAppName(req.App); err != nil {
			return err
		}
		if req.Process != "" {
			if err := conductor.ValidateProcessType(req.Process); err != nil {
				return err
			}
		}
		return applogs.Send(ctx, layout.LogDir(req.App), req.Process, req.Lines, req.Follow, send)
	}); err != nil {
		return err
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := q.Consume(ctx, o.host, o.jobs, b.Handle); err != nil {
			slog.Error("builder stopped", "err", err)
			stop()
		}
	}()

	srv := gitserver.New(gitserver.Config{
		Addr: o.sshAddr, HostKey: hostKey, ReposDir: filepath.Join(data, "repos"), HooksDir: hooksDir,
		NATSURL: natsURL, Host: o.host, Domain: o.domain, DefaultDB: o.defaultDB, Ports: ports, Layout: layout,
		HTTPAddr: o.httpAddr, Processes: circ, Sites: ngx,
		Databases: databases, DropDatabases: databases.Drop, Limits: o.limits,
	}, db, q)
	l, err := net.Listen("tcp", o.sshAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.sshAddr, err)
	}
	go func() {
		if err := srv.Serve(l); err != nil {
			slog.Error("ssh server stopped", "err", err)
			stop()
		}
	}()
	host, port, _ := net.SplitHostPort(o.sshAddr)
	_, httpPort, _ := net.SplitHostPort(o.httpAddr)
	slog.Info("conductor is serving", "ssh", o.sshAddr, "http", o.httpAddr, "data", data, "nats", natsURL)
	fmt.Fprintf(os.Stderr, "\nConductor is ready.\n  Push an app:  git push ssh://git@%s:%s/<app> main\n  Commands:     ssh -p %s git@%s help\n  Apps:         http://<app>.%s:%s/\n\n",
		host, port, port, host, o.domain, httpPort)

	<-ctx.Done()
	slog.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	wg.Wait()
	stopChildren()
	return nil
}

func parsePortRange(s string) (provision.PortRange, error) {
	a, b, ok := strings.Cut(s, "-")
	from, err1 := strconv.Atoi(a)
	to, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || from < 1024 || to > 65535 || to-from < 1 {
		return provision.PortRange{}, fmt.Errorf("--port-range %q: want FROM-TO within 1024-65535", s)
	}
	return provision.PortRange{From: from, To: to}, nil
}

// checkTraversable makes sure app users can reach the data dir: every
// parent must be searchable by others.
func checkTraversable(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("app users cannot reach %s: %s is not searchable by others (chmod o+x %s)", dir, d, d)
		}
		if d == "/" {
			return nil
		}
	}
}

// installSelf copies the running binary to dir/conductor (mode 0755).
func installSelf(dir string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	dst := filepath.Join(dir, "conductor")
	if self == dst {
		return dst, nil
	}
	in, err := os.Open(self)
	if err != nil {
		return "", err
	}
	defer in.Close()
	out, err := os.OpenFile(dst+".tmp", os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return "", err
	}
	if err := out.Close(); err != nil {
		return "", err
	}
	return dst, os.Rename(dst+".tmp", dst)
}
