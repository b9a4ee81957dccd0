package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/notify"
	"github.com/hasadna/conductor/queue"
)

// eventSubject carries the events a host sees (process.crashing, and
// cron.failed or backup.failed of its apps) to the conductor, which
// delivers them: only the conductor has the subscriptions.
const eventSubject = "notify.event"

// publishEvent sends ev to the conductor over NATS. A lost event is logged,
// never an error for the caller.
func publishEvent(nc *nats.Conn, ev notify.Event) {
	b, err := json.Marshal(ev)
	if err == nil {
		err = nc.Publish(eventSubject, b)
	}
	if err != nil {
		slog.Error("notify: publish event", "event", ev.Event, "app", ev.App, "err", err)
	}
}

// relayEvents delivers the events hosts publish. Only the events a host
// originates are taken, for an app that exists.
func relayEvents(ctx context.Context, nc *nats.Conn, n *notify.Notifier, apps func(context.Context, string) (*conductor.App, error)) error {
	sub, err := nc.Subscribe(eventSubject, func(m *nats.Msg) {
		var ev notify.Event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			slog.Warn("notify: bad event from a host", "err", err)
			return
		}
		if !slices.Contains([]string{notify.ProcessCrashing, notify.CronFailed, notify.BackupFailed, notify.CertExpiring}, ev.Event) {
			slog.Warn("notify: a host sent an event it does not originate", "event", ev.Event)
			return
		}
		if _, err := apps(ctx, ev.App); err != nil {
			slog.Warn("notify: event for an unknown app", "event", ev.Event, "app", ev.App, "err", err)
			return
		}
		n.Emit(ev)
	})
	if err != nil {
		return fmt.Errorf("subscribe to host events: %w", err)
	}
	context.AfterFunc(ctx, func() { _ = sub.Unsubscribe() })
	return nil
}

// crashCheckInterval is how often watchCrashes looks at circus's pids
// (CONDUCTOR_CRASH_CHECK_INTERVAL, a Go duration; tests shorten it).
func crashCheckInterval() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("CONDUCTOR_CRASH_CHECK_INTERVAL")); err == nil && d >= 100*time.Millisecond {
		return d
	}
	return 5 * time.Second
}

// watchCrashes looks at the pids of this host's watchers every interval
// and reports process.crashing when circus restarted a process type more
// than notify.CrashRestarts times within notify.CrashWindow, once per
// incident (notify.CrashCounter). One circus list call per watcher per look.
func watchCrashes(ctx context.Context, h *host, q *queue.Queue, hostName string) {
	c := &notify.CrashCounter{Restarts: notify.CrashRestarts, Window: notify.CrashWindow}
	var apps []*conductor.App // this look's, for Restarted
	if h.Metrics != nil {
		c.Restarted = func(watcher string, n int) {
			if app, typ := watcherApp(watcher, apps); app != "" {
				h.Metrics.Restarted(app, typ, n)
			}
		}
	}
	// CONDUCTOR_CRASH_RESTARTS lowers N for tests (circus respawns every 5 s).
	if n, err := strconv.Atoi(os.Getenv("CONDUCTOR_CRASH_RESTARTS")); err == nil && n >= 1 {
		c.Restarts = n
	}
	t := time.NewTicker(crashCheckInterval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		names, err := h.Circus.Watchers()
		if err != nil {
			slog.Warn("crash watch: list watchers", "err", err)
			continue
		}
		apps, err = h.Builder.Store.ListApps(ctx)
		if err != nil {
			slog.Warn("crash watch: list apps", "err", err)
			continue
		}
		for _, name := range names {
			app, typ := watcherApp(name, apps)
			if app == "" {
				continue
			}
			pids, err := h.Circus.Pids(ctx, name)
			if err != nil {
				continue // a watcher being removed
			}
			if c.Observe(name, pids, time.Now()) {
				slog.Warn("process crashing", "app", app, "process", typ, "restarts", c.Recent(name))
				publishEvent(q.NATS(), notify.Event{
					Event: notify.ProcessCrashing, App: app, Process: typ, Host: hostName, Time: time.Now().UTC(),
					Log: "logs " + app + " --process " + typ,
					Message: fmt.Sprintf("%s: %s processes restarted %d times in the last %s on host %s (logs %s --process %s)",
						app, typ, c.Recent(name), c.Window, hostName, app, typ),
				})
			}
		}
		c.Forget()
	}
}

// watcherApp splits a watcher name, <app>_<type>_<port> (builder), into
// its app, which must be one of apps, and process type.
func watcherApp(name string, apps []*conductor.App) (app, typ string) {
	app, rest, ok := strings.Cut(name, "_")
	if !ok || !slices.ContainsFunc(apps, func(a *conductor.App) bool { return a.Name == app }) {
		return "", ""
	}
	if i := strings.LastIndexByte(rest, '_'); i > 0 && strings.Trim(rest[i+1:], "0123456789") == "" {
		rest = rest[:i]
	}
	return app, rest
}

// cronFailed is a host scheduler's Failed: cron.failed, sent to the
// conductor like process.crashing.
func cronFailed(q *queue.Queue, hostName string) func(*conductor.App, conductor.CronEntry, *conductor.CronRun) {
	return func(app *conductor.App, entry conductor.CronEntry, run *conductor.CronRun) {
		ev := notify.CronEvent(app.Name, hostName, run.Entry, run.Release, run.Status, run.Duration, run.Error)
		ev.Time = time.Now().UTC()
		publishEvent(q.NATS(), ev)
	}
}
