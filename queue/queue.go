package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Stream, bucket and subject names. Jobs go to deploy.<host>.<app>, so each
// host's worker filters on its own disjoint subject space.
const (
	jobsStream    = "DEPLOYS"
	logsStream    = "LOGS"
	archiveBucket = "archives"
	endHeader     = "Conductor-End"  // set on the last log message of a job: "ok" or "failed"
	liveHeader    = "Conductor-Live" // set on the message that says a deploy succeeded before its housekeeping (LogWriter.Live)
)

// Job asks a host's builder to deploy a revision of an app.
type Job struct {
	ID        string    `json:"id"`
	App       string    `json:"app"`
	Host      string    `json:"host"`
	Rev       string    `json:"rev"`
	Ref       string    `json:"ref"`
	Pusher    string    `json:"pusher"`
	CreatedAt time.Time `json:"created_at"`
	Kind      string    `json:"kind,omitempty"`    // KindDeploy or KindRollback
	Release   string    `json:"release,omitempty"` // the release a rollback runs again
}

// Job kinds.
const (
	KindDeploy   = ""         // build and release a revision
	KindRollback = "rollback" // run a kept release again, with its config
	KindRestart  = "restart"  // run the serving release again, with the current config
)

// Queue is a connection to JetStream with Conductor's streams in place.
type Queue struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	archives jetstream.ObjectStore
	hosts    jetstream.KeyValue // nil on a Dial'ed queue until first used
	closed   chan struct{}      // closed when the connection is gone for good
}

// Conn says how to reach NATS: one URL or several (comma-separated, the
// nodes of a cluster) and the token the servers require.
type Conn struct {
	URLs  string
	Token string
	// CAFile holds the certificates that sign the servers' TLS certificates,
	// for a cluster whose CA is not one the system trusts. A server that
	// requires TLS gets it either way.
	CAFile string
	// Replicas of the streams; 0 sizes them to the cluster (at most 3).
	Replicas int
}

func (c Conn) options(name string) []nats.Option {
	opts := []nats.Option{nats.Name(name)}
	if c.Token != "" {
		opts = append(opts, nats.Token(c.Token))
	}
	if c.CAFile != "" {
		opts = append(opts, nats.RootCAs(c.CAFile))
	}
	return opts
}

// Connect connects to NATS and creates (or updates) the streams and the
// buckets Conductor uses.
func Connect(ctx context.Context, c Conn, name string) (*Queue, error) {
	closed := make(chan struct{})
	nc, err := nats.Connect(c.URLs, append(c.options(name), nats.MaxReconnects(-1),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }))...)
	if err != nil {
		return nil, connectError(c.URLs, err)
	}
	// A cluster that is still starting (no JetStream leader yet) times
	// out: wait for it a while, as a service started beside it must.
	deadline := time.Now().Add(2 * time.Minute)
	for attempt := 1; ; attempt++ {
		q, err := setup(ctx, nc, closed, c.Replicas)
		if err == nil {
			return q, nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			nc.Close()
			return nil, err
		}
		slog.Warn("JetStream is not ready; retrying", "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// Dial connects to NATS and uses the streams and bucket that the server
// created, without creating or updating them: the hook's quick path.
func Dial(ctx context.Context, c Conn, name string) (*Queue, error) {
	// A hook whose conductor died must not wait for it forever: after ~10 s
	// of failed reconnects the connection closes and Follow returns.
	closed := make(chan struct{})
	nc, err := nats.Connect(c.URLs, append(c.options(name), nats.MaxReconnects(20), nats.ReconnectWait(500*time.Millisecond),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }))...)
	if err != nil {
		return nil, connectError(c.URLs, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	var archives jetstream.ObjectStore
	err = RetryTransient(ctx, "object store", func() (err error) {
		archives, err = js.ObjectStore(ctx, archiveBucket)
		return err
	})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("object store %s: %w", archiveBucket, err)
	}
	return &Queue{nc: nc, js: js, archives: archives, closed: closed}, nil
}

// clusterSize is the number of NATS servers the connection knows of (those
// given and those the cluster told it about).
func clusterSize(nc *nats.Conn) int { return max(1, len(nc.Servers())) }

func setup(ctx context.Context, nc *nats.Conn, closed chan struct{}, replicas int) (*Queue, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if replicas <= 0 {
		replicas = min(3, clusterSize(nc)) // JetStream allows 1 to 5; 3 survives one node
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        jobsStream,
		Subjects:    []string{"deploy.>"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		MaxAge:      24 * time.Hour,
		Duplicates:  10 * time.Minute,
		Replicas:    replicas,
		Description: "deploy jobs, one subject per host and app",
	}); err != nil {
		return nil, fmt.Errorf("create stream %s: %w", jobsStream, err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        logsStream,
		Subjects:    []string{"logs.>"},
		Storage:     jetstream.FileStorage,
		MaxAge:      30 * 24 * time.Hour,
		Replicas:    replicas,
		Description: "build output of deploy jobs, one subject per job",
	}); err != nil {
		return nil, fmt.Errorf("create stream %s: %w", logsStream, err)
	}
	archives, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      archiveBucket,
		Storage:     jetstream.FileStorage,
		TTL:         24 * time.Hour,
		Replicas:    replicas,
		Description: "source archives of pushed revisions, by job id",
	})
	if err != nil {
		return nil, fmt.Errorf("create object store %s: %w", archiveBucket, err)
	}
	hosts, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      hostsBucket,
		TTL:         hostTTL,
		Storage:     jetstream.MemoryStorage,
		Replicas:    replicas,
		Description: "live builder hosts; each worker refreshes its entry",
	})
	if err != nil {
		return nil, fmt.Errorf("create key-value bucket %s: %w", hostsBucket, err)
	}
	return &Queue{nc: nc, js: js, archives: archives, hosts: hosts, closed: closed}, nil
}

// Close drains and closes the connection.
func (q *Queue) Close() { _ = q.nc.Drain() }

// PutArchive stores a job's source archive.
func (q *Queue) PutArchive(ctx context.Context, jobID string, r io.Reader) error {
	if _, err := q.archives.Put(ctx, jetstream.ObjectMeta{Name: jobID}, r); err != nil {
		return fmt.Errorf("store archive %s: %w", jobID, err)
	}
	return nil
}

// GetArchive returns a reader over a job's source archive.
func (q *Queue) GetArchive(ctx context.Context, jobID string) (io.ReadCloser, error) {
	var obj jetstream.ObjectResult
	err := RetryTransient(ctx, "fetch archive "+jobID, func() (err error) {
		obj, err = q.archives.Get(ctx, jobID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fetch archive %s: %w", jobID, err)
	}
	return obj, nil
}

// DeleteArchive removes a job's archive once the job is done with it.
func (q *Queue) DeleteArchive(ctx context.Context, jobID string) {
	if err := q.archives.Delete(ctx, jobID); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		slog.Warn("delete archive", "job", jobID, "err", err)
	}
}

// Publish queues a job for its host. The job id is the message id, so a
// retried publish does not queue the job twice.
func (q *Queue) Publish(ctx context.Context, job *Job) error {
	data, err := json.Marshal(job)
	if err != nil {
		return err
	}
	// The message id makes a retried publish a no-op if the first one landed.
	if err := RetryTransient(ctx, "publish "+job.ID, func() error {
		_, err := q.js.Publish(ctx, jobSubject(job.Host, job.App), data, jetstream.WithMsgID(job.ID))
		return err
	}); err != nil {
		return fmt.Errorf("publish job %s: %w", job.ID, err)
	}
	return nil
}

func jobSubject(host, app string) string { return "deploy." + host + "." + app }
func logSubject(jobID string) string     { return "logs." + jobID }

// NATS is the connection, for packages that talk over NATS beside the queue
// (natsstore).
func (q *Queue) NATS() *nats.Conn { return q.nc }
