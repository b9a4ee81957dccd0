package notify

import (
	"slices"
	"time"
)

// The process.crashing rule: a watcher (an app's process type) whose
// processes circus restarted more than CrashRestarts times within
// CrashWindow is an incident, reported once; it ends after a whole
// CrashWindow without a restart.
const (
	CrashRestarts = 5
	CrashWindow   = 10 * time.Minute
)

// CrashCounter counts restarts per watcher from successive looks at its
// pids: a pid that was not there before is a process circus started in
// place of one that ended, unless it takes the count above the most the
// watcher ran (a ps:scale up). circus respawns on its own check (every 5 s),
// so a look between a death and its respawn sees fewer pids. Pure logic;
// the caller polls circus (cmd/conductor/crashwatch.go).
type CrashCounter struct {
	Restarts int           // more than this many…
	Window   time.Duration // …within this long is an incident
	// Restarted is told each look's restarts of a watcher (metrics; nil:
	// nothing).
	Restarted func(watcher string, n int)

	watchers map[string]*crashState
}

type crashState struct {
	pids     []int
	most     int         // the most pids seen at once
	restarts []time.Time // within the window
	incident bool
	seen     bool // looked at in the current round
}

// Observe records a look at watcher's pids at now, and tells whether it
// starts an incident (true once per incident).
func (c *CrashCounter) Observe(watcher string, pids []int, now time.Time) bool {
	if c.watchers == nil {
		c.watchers = map[string]*crashState{}
	}
	st := c.watchers[watcher]
	if st == nil {
		// The first look is the baseline: its processes are not restarts.
		c.watchers[watcher] = &crashState{pids: slices.Clone(pids), most: len(pids), seen: true}
		return false
	}
	st.seen = true
	added := 0
	for _, p := range pids {
		if !slices.Contains(st.pids, p) {
			added++
		}
	}
	restarts := added - max(0, len(pids)-st.most)
	st.pids, st.most = slices.Clone(pids), max(st.most, len(pids))
	for range max(restarts, 0) {
		st.restarts = append(st.restarts, now)
	}
	if restarts > 0 && c.Restarted != nil {
		c.Restarted(watcher, restarts)
	}
	st.restarts = slices.DeleteFunc(st.restarts, func(t time.Time) bool { return now.Sub(t) > c.Window })
	switch {
	case len(st.restarts) > c.Restarts && !st.incident:
		st.incident = true
		return true
	case len(st.restarts) == 0:
		st.incident = false
	}
	return false
}

// Forget drops the watchers not observed since the last Forget (removed by
// a deploy or apps:destroy).
func (c *CrashCounter) Forget() {
	for name, st := range c.watchers {
		if !st.seen {
			delete(c.watchers, name)
		}
		st.seen = false
	}
}

// Recent is how many restarts watcher had within the window.
func (c *CrashCounter) Recent(watcher string) int {
	if st := c.watchers[watcher]; st != nil {
		return len(st.restarts)
	}
	return 0
}
