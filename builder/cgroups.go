package builder

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/cgroup"
	"github.com/hasadna/conductor/circus"
	"github.com/hasadna/conductor/process"
)

// Nothing an app starts outlives what started it. App processes run in a
// cgroup per watcher (run-process joins <watcher group>/<wid>), build
// commands in the app's build group (cgroup.BuildPath): when a watcher is
// removed, or a build command ends, everything left in its group is
// killed and the group removed. Without cgroups the same is done, less
// thoroughly, with what the kernel has anyway: a build command's process
// group, and an app process's session (circus starts each in a session of
// its own).

// newWatcherCgroup names the group of a watcher about to be added ("" when
// app processes get no cgroups).
func (b *Builder) newWatcherCgroup(app, watcher string) string {
	if !b.AppCgroups.Enabled() || b.Instance == "" {
		return ""
	}
	var r [4]byte
	_, _ = rand.Read(r[:])
	return cgroup.WatcherPath(b.Instance, app, watcher, hex.EncodeToString(r[:]))
}

// typeLimits are the ps:limit limits of one of the app's process types.
func (b *Builder) typeLimits(ctx context.Context, app *conductor.App, typ string) (cgroup.Limits, error) {
	all, err := b.Store.ProcessLimits(ctx, app.ID)
	if err != nil {
		return cgroup.Limits{}, err
	}
	l := all[typ]
	return cgroup.Limits{MemoryBytes: l.MemoryBytes, CPUMillis: l.CPUMillis, Pids: l.Pids}, nil
}

// stopWatcher has circus stop a watcher — Remove waits for its processes,
// Retire lets them finish their requests in the background — and then
// kills whatever they left: everything in the watcher's cgroup, or,
// without one, what is still in their sessions. spec is the watcher's
// process spec, read for its cgroup and user before it goes.
func (b *Builder) stopWatcher(ctx context.Context, name, spec string, retire bool) error {
	var group *cgroup.Group
	var sessions []int
	uid := -1
	if s, err := process.ReadSpec(spec); err == nil {
		uid = s.UID
		if uid == 0 && os.Geteuid() != 0 {
			uid = os.Getuid() // not root: the apps run as Conductor's user
		}
		if s.Cgroup != "" && b.AppCgroups.Enabled() {
			group, _ = b.AppCgroups.Group(s.Cgroup)
		}
	}
	if group == nil && uid > 0 {
		// Each of circus's processes leads its session.
		sessions, _ = b.Circus.Pids(ctx, name)
	}
	stop := b.Circus.Remove
	if retire {
		stop = b.Circus.Retire
	}
	if err := stop(ctx, name); err != nil {
		return err
	}
	cleanup := func() {
		switch {
		case group != nil:
			if err := group.Destroy(); err != nil {
				slog.Warn("kill what a stopped watcher left", "watcher", name, "err", err)
			}
		case len(sessions) > 0:
			if n := process.KillSessions(sessions, uid); n > 0 {
				slog.Info("killed what a stopped watcher left", "watcher", name, "processes", n)
			}
		}
	}
	if retire {
		// circusd kills what has not stopped after its graceful timeout;
		// what is left after that is for us.
		time.AfterFunc(circus.GracefulTimeout+5*time.Second, cleanup)
	} else {
		cleanup()
	}
	return nil
}

// runInGroup runs a build command in the app's build group (or a process
// group of its own) with its output to out, and kills the whole group when
// the command ends, fails or is canceled: a release script's backgrounded
// `sleep`, or a build backend pip started, does not outlive its step.
// Output is read through a pipe of our own, so the step ends when the
// command does, not when the last process holding its stdout does.
func (b *Builder) runInGroup(cmd *exec.Cmd, app string, out io.Writer) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	group := b.buildGroup(app)
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	killAll := func() {
		if cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		if group != nil {
			if err := group.Kill(); err != nil {
				slog.Warn("kill a build command's group", "app", app, "err", err)
			}
		}
	}
	cmd.Cancel = func() error { killAll(); return nil }
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = 5 * time.Second
	}
	if group != nil {
		err = group.Start(cmd)
	} else {
		err = cmd.Start()
	}
	pw.Close()
	if err != nil {
		pr.Close()
		return err
	}
	copied := make(chan struct{})
	go func() {
		_, _ = io.Copy(out, pr)
		close(copied)
	}()
	err = cmd.Wait()
	killAll()
	select {
	case <-copied:
	case <-time.After(5 * time.Second): // a process out of reach holds the pipe
	}
	pr.Close()
	<-copied
	if group != nil {
		_ = group.Remove()
	}
	return err
}

// buildGroup makes the app's build group, empty (nil without cgroups).
func (b *Builder) buildGroup(app string) *cgroup.Group {
	if !b.Cgroups.Enabled() || b.Instance == "" {
		return nil
	}
	g, err := b.Cgroups.Group(cgroup.BuildPath(b.Instance, app))
	if err == nil {
		err = g.Create()
	}
	if err == nil {
		err = g.Kill()
	}
	if err != nil {
		slog.Warn("build command without its cgroup", "app", app, "err", err)
		return nil
	}
	return g
}

// ReconcileCgroups, at start-up after Reconcile, kills and removes every group of this
// instance that no installed watcher uses: build and run groups of a
// conductor that died, groups of watchers removed meanwhile, of apps
// destroyed or moved.
func (b *Builder) ReconcileCgroups(ctx context.Context) {
	if b.Instance == "" {
		return
	}
	inUse := map[string]bool{}
	if installed, err := b.Circus.Watchers(); err == nil {
		for _, w := range installed {
			app, _, ok := strings.Cut(w, "_")
			if !ok || conductor.ValidateAppName(app) != nil {
				continue
			}
			if s, err := process.ReadSpec(filepath.Join(b.Layout.RunDir(app), w+".json")); err == nil && s.Cgroup != "" {
				inUse[s.Cgroup] = true
			}
		}
	}
	seen := map[string]bool{}
	for _, m := range []*cgroup.Manager{b.AppCgroups, b.Cgroups} {
		if !m.Enabled() || seen[m.Base()] {
			continue
		}
		seen[m.Base()] = true
		destroyUnused(ctx, m, b.Instance, inUse)
	}
}

// DestroyCgroups kills and removes every group of this instance: for a
// Conductor whose own circusd has stopped, so no app process of it is
// left, and for one whose data dir goes.
func (b *Builder) DestroyCgroups(ctx context.Context) {
	seen := map[string]bool{}
	for _, m := range []*cgroup.Manager{b.AppCgroups, b.Cgroups} {
		if m.Enabled() && b.Instance != "" && !seen[m.Base()] {
			seen[m.Base()] = true
			destroyUnused(ctx, m, b.Instance, nil)
		}
	}
}

// destroyUnused kills and removes the groups of an instance's apps that
// are not in inUse (nil: all of them, and the instance's group), and the
// app groups left empty.
func destroyUnused(ctx context.Context, m *cgroup.Manager, instance string, inUse map[string]bool) {
	inst, err := m.Group(cgroup.InstancePath(instance))
	if err != nil {
		return
	}
	apps, _ := inst.Children()
	for _, app := range apps {
		appGroup, err := m.Group(cgroup.AppPath(instance, app))
		if err != nil {
			continue
		}
		children, _ := appGroup.Children()
		for _, c := range children {
			rel := cgroup.AppPath(instance, app) + "/" + c
			if inUse[rel] {
				continue
			}
			g, err := m.Group(rel)
			if err != nil {
				continue
			}
			if pids, _ := g.Pids(); len(pids) > 0 {
				slog.Warn("killing processes left in a cgroup", "app", app, "cgroup", rel, "processes", len(pids))
			}
			if err := g.Destroy(); err != nil {
				slog.Warn("remove a cgroup left behind", "cgroup", rel, "err", err)
			}
		}
		_ = appGroup.RemoveIfEmpty()
	}
	if inUse == nil {
		_ = inst.RemoveIfEmpty()
		if parent, err := m.Group("conductor"); err == nil {
			_ = parent.RemoveIfEmpty()
		}
	}
}
