package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/spf13/pflag"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/notify"
	"github.com/hasadna/conductor/sqlite"
)

// notifyOptions are serve's --notify-* flags.
type notifyOptions struct {
	allowPrivate bool
	backoff      time.Duration
	attempts     int
}

func (o *notifyOptions) addFlags(f *pflag.FlagSet) {
	f.BoolVar(&o.allowPrivate, "notify-allow-private", false, "let webhook notifications reach loopback, private and link-local addresses (by default only public addresses: a developer's webhook must not probe the internal network)")
	f.DurationVar(&o.backoff, "notify-backoff", 10*time.Second, "wait after a webhook delivery's first failed attempt; each next wait doubles")
	f.IntVar(&o.attempts, "notify-attempts", 5, "attempts per webhook delivery before it is recorded failed")
}

func (o *notifyOptions) start(ctx context.Context, db *sqlite.DB, host string) *notify.Notifier {
	n := notify.New(ctx, db, notify.Options{Attempts: o.attempts, Backoff: o.backoff, AllowPrivate: o.allowPrivate, Host: host})
	n.Start()
	return n
}

// notifyingDB is the conductor's store as builders see it, locally and
// over NATS (natsstore.Serve): every deploy's outcome is written through
// its FinishDeploy or FailUnfinishedDeploys, so hooking them here emits
// deploy.succeeded and deploy.failed for apps on every host, in one place.
type notifyingDB struct {
	*sqlite.DB
	n *notify.Notifier
}

func (d notifyingDB) FinishDeploy(ctx context.Context, id, status, errMsg string) error {
	if err := d.DB.FinishDeploy(ctx, id, status, errMsg); err != nil {
		return err
	}
	if status == conductor.DeploySucceeded || status == conductor.DeployFailed {
		d.emitDeploy(id)
	}
	return nil
}

func (d notifyingDB) FailUnfinishedDeploys(ctx context.Context, host, msg string) ([]string, error) {
	ids, err := d.DB.FailUnfinishedDeploys(ctx, host, msg)
	for _, id := range ids {
		d.emitDeploy(id)
	}
	return ids, err
}

// emitDeploy sends a finished deploy's event, in the background: the
// builder waits for nothing.
func (d notifyingDB) emitDeploy(id string) {
	go func() {
		ev, err := d.DB.DeployEvent(context.Background(), id)
		if err != nil {
			slog.Error("notify: describe deploy", "deploy", id, "err", err)
			return
		}
		if ev.Event == "" {
			return
		}
		ev.Error = notify.FirstLine(ev.Error)
		ev.Log = "logs " + ev.App + " --build " + id
		ev.Message = notify.DeployMessage(ev)
		d.n.Emit(*ev)
	}()
}
