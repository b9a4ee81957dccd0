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
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/agent"
	"github.com/hasadna/conductor/gitserver"
	"github.com/hasadna/conductor/metrics"
	"github.com/hasadna/conductor/natsstore"
	"github.com/hasadna/conductor/provision"
	"github.com/hasadna/conductor/queue"
	"github.com/hasadna/conductor/sqlite"
)

type serveOptions struct {
	hostOptions                      // this host's apps (host.go)
	data, sshAddr                    string
	natsURL, natsAddr, natsTokenFile string
	natsCAFile                       string
	natsTLSNames                     []string
	defaultDB, logLevel              string
	limits                           gitserver.Limits

	tls    tlsOptions    // --https-addr and --acme-* (tls.go)
	notify notifyOptions // --notify-* (notify.go)

	dashboard dashboardOptions // --dashboard-* (dashboard.go)
	// metricsOpts is --metrics-listen and --metrics-token-file (metrics.go).
	metricsOpts metricsOptions
}

func serveCommand() *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve --data DIR",
		Short: "Run Conductor: SSH git endpoint, commands, queue, builder, circusd and nginx",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.system.apply(cmd.Flags()); err != nil {
				return err
			}
			if err := setupLogging(o.logLevel); err != nil {
				return err
			}
			return serve(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.data, "data", "", "data directory made by conductor init")
	f.StringVar(&o.sshAddr, "ssh-addr", "127.0.0.1:2222", "SSH listen address")
	o.hostOptions.addFlags(f)
	o.tls.addFlags(f, &o.httpsAddr)
	o.notify.addFlags(f)
	o.dashboard.addFlags(f)
	o.metricsOpts.addFlags(f)
	f.StringVar(&o.natsURL, "nats-url", "", "external NATS cluster, one URL or several comma-separated (default: embedded server)")
	f.StringVar(&o.natsAddr, "nats-addr", "127.0.0.1:0", "listen address of the embedded NATS server, e.g. 0.0.0.0:4222 for workers on other hosts (port 0: any free port)")
	f.StringVar(&o.natsCAFile, "nats-ca-file", "", "PEM certificates of the CA that signed the external NATS cluster's TLS certificates (with --nats-url; default: the system's)")
	f.StringSliceVar(&o.natsTLSNames, "nats-tls-name", nil, "DNS name or address that workers dial the embedded NATS server by, added to its TLS certificate (which already names localhost, this host's name and its addresses); repeat or comma-separate")
	f.StringVar(&o.natsTokenFile, "nats-token-file", "", "file with the NATS auth token (default: <data>/nats.token, made on first start, for the embedded server)")
	f.StringVar(&o.defaultDB, "default-db", conductor.DBSQLite, "database of apps created by a first push")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	d := gitserver.DefaultLimits()
	f.IntVar(&o.limits.MaxSessions, "ssh-max-sessions", d.MaxSessions, "SSH sessions running at once on this server (0: no limit)")
	f.IntVar(&o.limits.MaxSessionsPerKey, "ssh-max-sessions-per-key", d.MaxSessionsPerKey, "SSH sessions running at once per client key (0: no limit)")
	f.IntVar(&o.limits.MaxSessionsPerConn, "ssh-max-sessions-per-conn", d.MaxSessionsPerConn, "SSH sessions open at once on one connection (0: no limit)")
	f.IntVar(&o.limits.MaxUnauthenticated, "ssh-max-unauthenticated", d.MaxUnauthenticated, "SSH connections not yet authenticated, on the server; more are refused (0: no limit)")
	f.IntVar(&o.limits.MaxUnauthenticatedPerSource, "ssh-max-unauthenticated-per-source", d.MaxUnauthenticatedPerSource, "SSH connections not yet authenticated, per client address (IPv6: per /64); more are refused (0: no limit)")
	f.DurationVar(&o.limits.HandshakeTimeout, "ssh-handshake-timeout", d.HandshakeTimeout, "time a client has from connecting to authenticating, and a session from opening to starting its command (0: none)")
	f.IntVar(&o.limits.MaxHandshakes, "ssh-max-handshakes", d.MaxHandshakes, "SSH handshakes worked on at once (default 8 per CPU); later connections wait their turn in arrival order, at most 1 s (0: no limit)")
	f.DurationVar(&o.limits.IdleTimeout, "ssh-idle-timeout", d.IdleTimeout, "drop an SSH connection silent for this long (0: never)")
	f.DurationVar(&o.limits.MaxTimeout, "ssh-max-timeout", d.MaxTimeout, "drop any SSH connection this old (0: never)")
	f.Int64Var(&o.limits.MaxPushSize, "max-push-size", d.MaxPushSize, "largest pack a push may send, in bytes (git's receive.maxInputSize; 0: no limit)")
	return cmd
}

func serve(ctx context.Context, o serveOptions) error {
	if o.data == "" {
		return errors.New("--data is required")
	}
	data, err := filepath.Abs(o.data)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(data, "conductor.db")); err != nil {
		return fmt.Errorf("%s is not a conductor data directory: run conductor init first", data)
	}
	if err := o.hostOptions.validate(); err != nil {
		return err
	}
	if err := o.tls.validate(o.httpsAddr); err != nil {
		return err
	}
	if err := o.dashboard.validate(o.httpsAddr); err != nil {
		return err
	}
	if err := o.metricsOpts.validate(); err != nil {
		return err
	}
	ports, err := parsePortRange(o.portRange)
	if err != nil {
		return err
	}
	if l := o.limits; l.MaxSessions < 0 || l.MaxSessionsPerKey < 0 || l.MaxSessionsPerConn < 0 ||
		l.MaxUnauthenticated < 0 || l.MaxUnauthenticatedPerSource < 0 || l.HandshakeTimeout < 0 ||
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

	natsConn, err := o.nats(data)
	if err != nil {
		return err
	}
	if natsConn.URLs == "" {
		for _, n := range o.natsTLSNames {
			if err := queue.CheckServerName(n); err != nil {
				return fmt.Errorf("--nats-tls-name: %w", err)
			}
		}
		// Always TLS: the token must not cross a network in the clear, and
		// workers on other hosts verify the server with the CA's ca.pem.
		tlsConf, caFile, err := queue.ServerTLS(filepath.Join(data, queue.TLSDir), queue.ServerNames(o.natsAddr, o.natsTLSNames))
		if err != nil {
			return err
		}
		ns, err := queue.StartServer(o.natsAddr, filepath.Join(data, "nats"), natsConn.Token, tlsConf)
		if err != nil {
			return err
		}
		defer ns.Shutdown()
		natsConn.URLs, natsConn.CAFile = ns.ClientURL(), caFile
	}
	q, err := queue.Connect(ctx, natsConn, "conductor-serve")
	if err != nil {
		return err
	}
	defer q.Close()
	// Deploy outcomes, this host's and the workers', are written through
	// store, which sends their notifications (notify.go).
	notifier := o.notify.start(ctx, db, o.name)
	store := notifyingDB{DB: db, n: notifier}
	// Workers on other hosts read and record state through this process.
	if err := natsstore.Serve(ctx, q.NATS(), store); err != nil {
		return err
	}

	// What this host's builder, SSH server, nginx and crash watch see,
	// and the age of the apps' backups (metrics.go).
	metricsReg := metrics.New()
	metricsReg.BackupAges(backupAges(db))
	o.hostOptions.metrics = metricsReg
	h, err := startHost(ctx, o.hostOptions, data, bin, q, store, db, o.defaultDB, stop)
	if err != nil {
		return err
	}
	defer h.Stop()
	// Per-app traffic from nginx's log: the last hour's buckets and the
	// request counters (nil in system mode).
	trafficStats := startTraffic(ctx, h.Nginx, metricsReg)
	_ = trafficStats // read by the dashboard
	if err := o.metricsOpts.start(ctx, metricsReg); err != nil {
		return err
	}
	// Events hosts see (this one's and the workers') come over NATS.
	if err := relayEvents(ctx, q.NATS(), notifier, db.FindApp); err != nil {
		return err
	}
	go watchCrashes(ctx, h, q, o.name)
	agents := &agent.Client{NC: q.NATS()}
	certs, err := o.tls.start(ctx, data, o.httpsAddr, db, tlsHosts{local: o.name, ngx: h.Nginx, agents: agents, queue: q, notify: notifier})
	if err != nil {
		return err
	}
	if own, ok := certs.(ownCerts); ok && o.tls.directory != "" {
		o.dashboard.useACME(own, o.tls.renewCheck)
	}

	if err := gitserver.PrivateReposDir(filepath.Join(data, "repos")); err != nil {
		return err
	}
	srv := gitserver.New(gitserver.Config{
		Addr: o.sshAddr, HostKey: hostKey, ReposDir: filepath.Join(data, "repos"), HooksDir: hooksDir,
		NATS: natsConn, Host: o.name, Domain: o.domain, DefaultDB: o.defaultDB, Ports: ports, Layout: h.Layout,
		HTTPAddr: o.httpAddr, Agents: agents,
		Databases: h.Databases, Limits: o.limits, Certs: certs, Notify: notifier,
		DashboardURL: o.dashboard.url(o.domain, o.httpAddr, o.httpsAddr), Dashboard: db,
		SessionStarted: metricsReg.SSHSession,
	}, db, q)
	if err := o.dashboard.start(ctx, data, o.domain, o.sshAddr, appURLs(o.domain, o.httpAddr), db, srv, agents, q, h.Nginx, trafficStats); err != nil {
		return err
	}
	l, err := net.Listen("tcp", o.sshAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.sshAddr, err)
	}
	// db:backups:schedule's backups, taken by the apps' hosts.
	go srv.RunBackupSchedules(ctx)
	go func() {
		if err := srv.Serve(l); err != nil {
			slog.Error("ssh server stopped", "err", err)
			stop()
		}
	}()
	host, port, _ := net.SplitHostPort(o.sshAddr)
	_, httpPort, _ := net.SplitHostPort(o.httpAddr)
	slog.Info("conductor is serving", "ssh", o.sshAddr, "http", o.httpAddr, "data", data, "nats", natsConn.URLs, "host", o.name)
	fmt.Fprintf(os.Stderr, "\nConductor is ready.\n  Push an app:  git push ssh://git@%s:%s/<app> main\n  Commands:     ssh -p %s git@%s help\n  Apps:         http://<app>.%s:%s/\n\n",
		host, port, port, host, o.domain, httpPort)
	if u := o.dashboard.url(o.domain, o.httpAddr, o.httpsAddr); u != "" {
		fmt.Fprintf(os.Stderr, "  Dashboard:    %s (log in: ssh -p %s git@%s dashboard)\n\n", u, port, host)
	}

	<-ctx.Done()
	slog.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
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

// nats says how serve reaches NATS: the external cluster of --nats-url with
// the token of --nats-token-file, or (URLs empty) the embedded server with
// the data dir's token, made on first start. Never without a token.
func (o *serveOptions) nats(data string) (queue.Conn, error) {
	if o.natsURL != "" {
		if o.natsTokenFile == "" {
			return queue.Conn{}, errors.New("--nats-url needs --nats-token-file: Conductor never uses a NATS server without auth")
		}
		token, err := readToken(o.natsTokenFile)
		return queue.Conn{URLs: o.natsURL, Token: token, CAFile: o.natsCAFile}, err
	}
	path := o.natsTokenFile
	if path == "" {
		path = filepath.Join(data, "nats.token")
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			if err := os.WriteFile(path, []byte(provision.RandomString(40)+"\n"), 0o600); err != nil {
				return queue.Conn{}, fmt.Errorf("write the NATS token: %w", err)
			}
		}
	}
	token, err := readToken(path)
	return queue.Conn{Token: token}, err
}

// readToken reads a NATS auth token from a file only its owner can read.
func readToken(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("NATS token: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("NATS token %s is readable by others (chmod 600 %s)", path, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("NATS token: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if len(token) < 16 {
		return "", fmt.Errorf("NATS token in %s is too short (at least 16 characters)", path)
	}
	return token, nil
}
