package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/metrics"
	"github.com/hasadna/conductor/natsstore"
	"github.com/hasadna/conductor/queue"
)

type workerOptions struct {
	hostOptions
	data, natsURL, natsTokenFile, natsCAFile, defaultDB, logLevel string
	// metricsOpts is --metrics-listen and --metrics-token-file: this
	// host's builder, traffic and restarts (metrics.go).
	metricsOpts metricsOptions
}

// workerCommand runs the builder of one host that is not the conductor's:
// it takes the host's jobs from NATS and reads and records state through
// the conductor (package natsstore), so it needs no database of its own.
func workerCommand() *cobra.Command {
	var o workerOptions
	cmd := &cobra.Command{
		Use:   "worker --nats-url URL --nats-token-file FILE --host NAME --data DIR",
		Short: "Run the builder for this host: deploys, processes and logs of the apps placed on it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.system.apply(cmd.Flags()); err != nil {
				return err
			}
			if err := setupLogging(o.logLevel); err != nil {
				return err
			}
			return runWorker(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	o.hostOptions.addFlags(f)
	f.StringVar(&o.data, "data", "", "this host's data directory (apps, circus, nginx); made if missing")
	f.StringVar(&o.natsURL, "nats-url", "", "the conductor's NATS: one URL or several comma-separated")
	f.StringVar(&o.natsCAFile, "nats-ca-file", "", "PEM certificates of the CA that signed the NATS servers' TLS certificates (default: the system's)")
	f.StringVar(&o.natsTokenFile, "nats-token-file", "", "file with the NATS auth token (the conductor's <data>/nats.token)")
	f.StringVar(&o.httpsAddr, "https-addr", "", "address this host's nginx serves its apps' custom domains over HTTPS on, e.g. 0.0.0.0:443 (\"\": no HTTPS); the conductor gets and renews the certificates")
	f.StringVar(&o.defaultDB, "default-db", conductor.DBSQLite, "database kind assumed when an app names none")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	o.metricsOpts.addFlags(f)
	return cmd
}

func runWorker(ctx context.Context, o workerOptions) error {
	if o.data == "" || o.natsURL == "" || o.natsTokenFile == "" {
		return errors.New("--data, --nats-url and --nats-token-file are required")
	}
	if o.name == "local" {
		return errors.New("--host: name this host (\"local\" is the conductor's own)")
	}
	if err := o.hostOptions.validate(); err != nil {
		return err
	}
	if err := o.metricsOpts.validate(); err != nil {
		return err
	}
	if o.httpsAddr != "" {
		if _, _, err := net.SplitHostPort(o.httpsAddr); err != nil {
			return fmt.Errorf("--https-addr: %w", err)
		}
	}
	data, err := filepath.Abs(o.data)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(data, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if os.Geteuid() == 0 {
		if err := checkTraversable(data); err != nil {
			return err
		}
	}
	token, err := readToken(o.natsTokenFile)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	bin, err := installSelf(filepath.Join(data, "bin"))
	if err != nil {
		return err
	}
	q, err := queue.Connect(ctx, queue.Conn{URLs: o.natsURL, Token: token, CAFile: o.natsCAFile}, "conductor-worker-"+o.name)
	if err != nil {
		return err
	}
	defer q.Close()
	state := &natsstore.Client{NC: q.NATS()}
	metricsReg := metrics.New()
	o.hostOptions.metrics = metricsReg
	h, err := startHost(ctx, o.hostOptions, data, bin, q, state, state, o.defaultDB, stop)
	if err != nil {
		return err
	}
	defer h.Stop()
	startTraffic(ctx, h.Nginx, metricsReg)
	if err := o.metricsOpts.start(ctx, metricsReg); err != nil {
		return err
	}
	go watchCrashes(ctx, h, q, o.name) // process.crashing, sent to the conductor
	slog.Info("worker is serving", "host", o.name, "http", o.httpAddr, "data", data, "nats", o.natsURL)
	<-ctx.Done()
	slog.Info("shutting down")
	return nil
}
