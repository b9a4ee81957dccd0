package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hasadna/conductor"
)

// Each builder host keeps an entry in the "hosts" bucket, refreshed every
// hostBeat; an entry not refreshed for hostTTL expires, and the host is
// down. The bucket is how the conductor places apps and tells a pusher that
// a job waits for a host.
const (
	hostsBucket = "hosts"
	hostTTL     = 15 * time.Second
	hostBeat    = 5 * time.Second
)

// HostInfo is what a builder host announces about itself.
type HostInfo struct {
	Name      string    `json:"name"`
	Instance  string    `json:"instance"` // the worker's data dir id: one worker per host
	Capacity  int       `json:"capacity"` // jobs it runs at once
	Version   string    `json:"version"`
	Address   string    `json:"address"`         // where its nginx serves apps
	HTTPS     string    `json:"https,omitempty"` // where it serves them over TLS ("": it does not)
	StartedAt time.Time `json:"started_at"`
	SeenAt    time.Time `json:"seen_at"`
}

func (q *Queue) hostsKV(ctx context.Context) (jetstream.KeyValue, error) {
	if q.hosts != nil {
		return q.hosts, nil
	}
	kv, err := q.js.KeyValue(ctx, hostsBucket)
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", hostsBucket, err)
	}
	q.hosts = kv
	return kv, nil
}

// Announce registers this host and keeps its entry fresh until ctx ends,
// then removes it; the returned channel closes once it is removed, so a
// stopping process can wait for it (else the entry outlives the process
// until it expires, and the host looks up meanwhile). Another live worker
// with the same host name (and a different data dir) makes it fail: two
// consumers of one host's jobs would break the one-job-per-app rule.
func (q *Queue) Announce(ctx context.Context, info HostInfo) (<-chan struct{}, error) {
	kv, err := q.hostsKV(ctx)
	if err != nil {
		return nil, err
	}
	info.StartedAt = time.Now().UTC()
	if cur, err := q.Host(ctx, info.Name); err == nil && cur.Instance != info.Instance {
		return nil, conductor.Errorf(conductor.ECONFLICT, "host %s is already served by another worker (started %s, version %s); stop it or pick another --host",
			info.Name, cur.StartedAt.Format(time.RFC3339), cur.Version)
	}
	put := func() error {
		info.SeenAt = time.Now().UTC()
		data, _ := json.Marshal(info)
		_, err := kv.Put(ctx, info.Name, data)
		return err
	}
	if err := put(); err != nil {
		return nil, fmt.Errorf("announce host %s: %w", info.Name, err)
	}
	withdrawn := make(chan struct{})
	go func() {
		defer close(withdrawn)
		t := time.NewTicker(hostBeat)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				// A clean stop says so at once; a killed worker expires.
				dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
				_ = kv.Delete(dctx, info.Name)
				cancel()
				return
			case <-t.C:
				if err := put(); err != nil {
					slog.Warn("refresh host entry", "host", info.Name, "err", err)
				}
			}
		}
	}()
	return withdrawn, nil
}

// Host returns a live host's entry (ENOTFOUND when it is down or unknown).
func (q *Queue) Host(ctx context.Context, name string) (*HostInfo, error) {
	kv, err := q.hostsKV(ctx)
	if err != nil {
		return nil, err
	}
	e, err := kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, conductor.Errorf(conductor.ENOTFOUND, "host %s is down (no worker has announced it for %s)", name, hostTTL)
	} else if err != nil {
		return nil, fmt.Errorf("look up host %s: %w", name, err)
	}
	var h HostInfo
	if err := json.Unmarshal(e.Value(), &h); err != nil {
		return nil, fmt.Errorf("host %s: bad entry: %w", name, err)
	}
	return &h, nil
}

// Hosts lists the live hosts by name.
func (q *Queue) Hosts(ctx context.Context) ([]*HostInfo, error) {
	kv, err := q.hostsKV(ctx)
	if err != nil {
		return nil, err
	}
	names, err := kv.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("list hosts: %w", err)
	}
	var hosts []*HostInfo
	for _, n := range names {
		h, err := q.Host(ctx, n)
		if conductor.ErrorCode(err) == conductor.ENOTFOUND {
			continue // expired between the two calls
		} else if err != nil {
			return nil, err
		}
		hosts = append(hosts, h)
	}
	sort.Slice(hosts, func(i, j int) bool { return hosts[i].Name < hosts[j].Name })
	return hosts, nil
}
