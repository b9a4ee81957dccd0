// Package metrics is Conductor's Prometheus metrics: deploys and their
// steps (the builder's Observer), the deploy queue, SSH sessions, the
// apps' HTTP traffic (from package traffic), process restarts and the age
// of database backups, served at /metrics behind a bearer token.
package metrics

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hasadna/conductor/traffic"
)

// Metrics holds Conductor's collectors, registered in Registry.
type Metrics struct {
	Registry *prometheus.Registry

	deploys        *prometheus.CounterVec
	deployDuration *prometheus.HistogramVec
	steps          *prometheus.HistogramVec
	queueDepth     prometheus.Gauge
	queueWait      prometheus.Histogram
	sshOpen        *prometheus.GaugeVec
	sshTotal       *prometheus.CounterVec
	requests       *prometheus.CounterVec
	latency        *prometheus.HistogramVec
	restarts       *prometheus.CounterVec
}

// stepBuckets spans a deploy step: a few milliseconds (settings) to a
// dependency install of many minutes.
var stepBuckets = []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200}

// New makes the collectors and registers them, with Go's and the
// process's own.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		deploys: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "conductor_deploys_total",
			Help: "Jobs this host's builder ended (kind deploy, rollback or restart; outcome succeeded, failed or canceled).",
		}, []string{"kind", "outcome"}),
		deployDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "conductor_deploy_duration_seconds",
			Help:    "Time from a job's start to its end, waiting excluded.",
			Buckets: stepBuckets,
		}, []string{"kind", "outcome"}),
		steps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "conductor_deploy_step_duration_seconds",
			Help:    "Time each pipeline step took (builder/pipeline.go's step names), the steps that completed.",
			Buckets: stepBuckets,
		}, []string{"step"}),
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "conductor_deploy_queue_depth",
			Help: "Jobs this host's builder has taken that wait for their app's turn or a build slot.",
		}),
		queueWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "conductor_deploy_queue_wait_seconds",
			Help:    "Time from a job's submission to its start on this host's builder.",
			Buckets: stepBuckets,
		}),
		sshOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "conductor_ssh_sessions",
			Help: "Authenticated SSH sessions running now (kind git or command).",
		}, []string{"kind"}),
		sshTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "conductor_ssh_sessions_total",
			Help: "Authenticated SSH sessions started (kind git or command).",
		}, []string{"kind"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "conductor_http_requests_total",
			Help: "Requests nginx answered for each app on this host since Conductor started, by status class (2xx, 4xx, 5xx…).",
		}, []string{"app", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "conductor_http_request_duration_seconds",
			Help:    "nginx's request time for each app on this host.",
			Buckets: seconds(traffic.Bounds),
		}, []string{"app"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "conductor_process_restarts_total",
			Help: "Processes circus restarted (a process exited and was started again), per app and process type, seen by this host's crash watch.",
		}, []string{"app", "process"}),
	}
	reg.MustRegister(m.deploys, m.deployDuration, m.steps, m.queueDepth, m.queueWait,
		m.sshOpen, m.sshTotal, m.requests, m.latency, m.restarts,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func seconds(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	return out
}

// StepDone records a pipeline step that completed (builder.Observer).
func (m *Metrics) StepDone(step string, took time.Duration) {
	m.steps.WithLabelValues(step).Observe(took.Seconds())
}

// DeployDone records a job's end (builder.Observer).
func (m *Metrics) DeployDone(kind, outcome string, took time.Duration) {
	if kind == "" {
		kind = "deploy"
	}
	m.deploys.WithLabelValues(kind, outcome).Inc()
	m.deployDuration.WithLabelValues(kind, outcome).Observe(took.Seconds())
}

// Queued counts a job taken by the builder that waits to run; Started
// ends its wait (builder.Observer).
func (m *Metrics) Queued() { m.queueDepth.Inc() }

// Started records how long a job waited since it was submitted.
func (m *Metrics) Started(waited time.Duration) {
	m.queueDepth.Dec()
	m.queueWait.Observe(max(waited, 0).Seconds())
}

// Unqueued ends the wait of a job that never started (failed or
// canceled while waiting).
func (m *Metrics) Unqueued() { m.queueDepth.Dec() }

// SSHSession counts a session of kind ("git" or "command") until the
// returned func is called.
func (m *Metrics) SSHSession(kind string) func() {
	m.sshTotal.WithLabelValues(kind).Inc()
	g := m.sshOpen.WithLabelValues(kind)
	g.Inc()
	return g.Dec
}

// Request counts one request of the traffic log (a traffic.Tailer's
// Observe).
func (m *Metrics) Request(r traffic.Request) {
	code := strconv.Itoa(r.Status/100) + "xx"
	m.requests.WithLabelValues(r.App, code).Inc()
	m.latency.WithLabelValues(r.App).Observe(r.Duration.Seconds())
}

// Restarted counts n restarts of an app's process type.
func (m *Metrics) Restarted(app, process string, n int) {
	m.restarts.WithLabelValues(app, process).Add(float64(n))
}

// Traffic exports the bad lines of s's log.
func (m *Metrics) Traffic(s *traffic.Stats) {
	m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "conductor_traffic_log_bad_lines_total",
		Help: "Lines of nginx's traffic log that could not be read.",
	}, func() float64 { return float64(s.BadLines()) }))
}

// BackupAge is when an app's database (alias) was last backed up with
// success.
type BackupAge struct {
	App, Alias string
	Last       time.Time
}

// BackupAges exports conductor_db_backup_age_seconds, from list, asked at
// each scrape.
func (m *Metrics) BackupAges(list func(context.Context) ([]BackupAge, error)) {
	m.Registry.MustRegister(&backupCollector{list: list, desc: prometheus.NewDesc(
		"conductor_db_backup_age_seconds",
		"Time since the last succeeded db:backup of each app's database (alias); absent for one never backed up.",
		[]string{"app", "alias"}, nil)})
}

type backupCollector struct {
	list func(context.Context) ([]BackupAge, error)
	desc *prometheus.Desc
}

func (c *backupCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *backupCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ages, err := c.list(ctx)
	if err != nil {
		slog.Warn("metrics: backup ages", "err", err)
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	now := time.Now()
	for _, a := range ages {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, now.Sub(a.Last).Seconds(), a.App, a.Alias)
	}
}

// Handler serves reg's metrics to a request bearing token
// ("Authorization: Bearer <token>", compared in constant time); any other
// request gets 401.
func Handler(reg *prometheus.Registry, token []byte) http.Handler {
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	// Digests are compared, so that not even the token's length shows in
	// the time an answer takes.
	want := sha256.Sum256(append([]byte("Bearer "), token...))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := sha256.Sum256([]byte(r.Header.Get("Authorization")))
		if len(token) == 0 || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="conductor metrics"`)
			http.Error(w, "a bearer token is required", http.StatusUnauthorized)
			return
		}
		metrics.ServeHTTP(w, r)
	})
}

// ReadToken reads the bearer token from path: a regular file, not a link,
// readable by its owner only (0600 or 0400), holding at least 16
// characters (surrounding white space trimmed).
func ReadToken(path string) ([]byte, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("metrics token file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("metrics token file %s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("metrics token file %s is readable by others (mode %04o): chmod 600 it", path, fi.Mode().Perm())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("metrics token file: %w", err)
	}
	tok := strings.TrimSpace(string(raw))
	if len(tok) < 16 || strings.ContainsAny(tok, " \t\r\n") {
		return nil, fmt.Errorf("metrics token file %s must hold one token of at least 16 characters", path)
	}
	return []byte(tok), nil
}
