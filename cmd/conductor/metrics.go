package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/metrics"
	"github.com/hasadna/conductor/nginx"
	"github.com/hasadna/conductor/traffic"
)

// metricsOptions are serve's --metrics-* flags: Prometheus's /metrics.
type metricsOptions struct {
	listen, tokenFile string
	token             []byte // read by validate
}

func (o *metricsOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.listen, "metrics-listen", "", "address to serve Prometheus metrics at /metrics on, e.g. 127.0.0.1:9180 (\"\": not served)")
	f.StringVar(&o.tokenFile, "metrics-token-file", "", "file (0600) holding the bearer token a scrape must send; required with --metrics-listen")
}

// validate reads the token file when metrics are served.
func (o *metricsOptions) validate() error {
	if o.listen == "" {
		if o.tokenFile != "" {
			return errors.New("--metrics-token-file needs --metrics-listen")
		}
		return nil
	}
	if _, _, err := net.SplitHostPort(o.listen); err != nil {
		return fmt.Errorf("--metrics-listen %q: %w", o.listen, err)
	}
	if o.tokenFile == "" {
		return errors.New("--metrics-listen needs --metrics-token-file: /metrics is never served without a token")
	}
	tok, err := metrics.ReadToken(o.tokenFile)
	if err != nil {
		return err
	}
	o.token = tok
	return nil
}

// start serves /metrics until ctx ends.
func (o *metricsOptions) start(ctx context.Context, m *metrics.Metrics) error {
	if o.listen == "" {
		return nil
	}
	l, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("metrics: listen on %s: %w", o.listen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(m.Registry, o.token))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Error("metrics server stopped", "err", err)
		}
	}()
	context.AfterFunc(ctx, func() { _ = srv.Close() })
	slog.Info("serving metrics", "addr", l.Addr().String())
	return nil
}

// startTraffic follows this host's nginx traffic log into Stats and m's
// request counters.
func startTraffic(ctx context.Context, n *nginx.Nginx, m *metrics.Metrics) *traffic.Stats {
	path := n.TrafficLog()
	if path == "" {
		return nil
	}
	if n.System {
		// The host's nginx would make it 0644; it holds every app's
		// requests. Conductor's own nginx's is made by nginx.Start.
		if err := privateLog(path); err != nil {
			slog.Warn("traffic log", "path", path, "err", err)
		}
	}
	s := &traffic.Stats{}
	m.Traffic(s)
	t := &traffic.Tailer{Path: path, Stats: s, Observe: m.Request}
	go func() { _ = t.Run(ctx) }()
	go func() {
		tick := time.NewTicker(time.Minute)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				s.Forget()
			}
		}
	}()
	return s
}

// privateLog makes the log file at path if it is missing and takes others'
// read access away: 0640, whoever owns it (nginx gives it to its workers'
// user when it reopens its logs).
func privateLog(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o640)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o027 != 0 {
		return f.Chmod(fi.Mode().Perm() &^ 0o027)
	}
	return nil
}

// nginxLogMaxBytes is the size past which Conductor's own nginx logs
// rotate (one rotated file kept), checked every nginxLogCheck.
const (
	nginxLogMaxBytes = 100 << 20
	nginxLogCheck    = time.Minute
)

// rotateNginxLogs keeps the self-contained nginx's logs bounded until ctx
// ends (a no-op in system mode: the host's logrotate rotates its logs).
func rotateNginxLogs(ctx context.Context, n *nginx.Nginx) {
	if n.System {
		return
	}
	tick := time.NewTicker(nginxLogCheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := n.RotateLogs(nginxLogMaxBytes); err != nil {
			slog.Warn("rotate nginx logs", "err", err)
		}
	}
}

// backupStore is what backupAges reads.
type backupStore interface {
	ListApps(ctx context.Context) ([]*conductor.App, error)
	DBBackups(ctx context.Context, appID int64) ([]*conductor.DBBackup, error)
}

// backupAges lists, for each app's database alias backed up at least once
// with success, when its newest such backup ended.
func backupAges(db backupStore) func(context.Context) ([]metrics.BackupAge, error) {
	return func(ctx context.Context) ([]metrics.BackupAge, error) {
		apps, err := db.ListApps(ctx)
		if err != nil {
			return nil, fmt.Errorf("list apps: %w", err)
		}
		var out []metrics.BackupAge
		for _, a := range apps {
			backups, err := db.DBBackups(ctx, a.ID)
			if err != nil {
				return nil, fmt.Errorf("backups of %s: %w", a.Name, err)
			}
			seen := map[string]bool{}
			for _, b := range backups { // newest first
				if b.Status != conductor.BackupSucceeded || seen[b.Alias] {
					continue
				}
				seen[b.Alias] = true
				out = append(out, metrics.BackupAge{App: a.Name, Alias: b.Alias, Last: b.Started.Add(b.Duration)})
			}
		}
		return out, nil
	}
}
