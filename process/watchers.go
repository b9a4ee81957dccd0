package process

import (
	"strconv"
	"strings"
)

// An app's circus watchers are named <app>_<type>_<port>: one per process
// type of a release, the port being the release's web port. A deploy's
// new release has the other port of the app's two, so its processes of
// every type start next to the serving release's (as Dokku and Heroku do)
// and the old ones stop once the new release is live. App names have no
// "_", so "<app>_" prefixes exactly one app's watchers. Names without a
// port are an app's own servers (<app>_redis-server) or other types'
// watchers of releases deployed before names had ports (<app>_<type>).

// minPort is the lowest port an app's release runs on: a numeric last
// part below it is part of a type's name ("q_1"), not a port.
const minPort = 1024

// ReleaseWatcher names the watcher of process type typ of the release on
// port.
func ReleaseWatcher(app, typ string, port int) string {
	return app + "_" + typ + "_" + strconv.Itoa(port)
}

// ParseWatcher splits one of app's watcher names into its process type and
// release port (0 for a name without one). ok is false for a name that is
// not app's.
func ParseWatcher(app, watcher string) (typ string, port int, ok bool) {
	rest, ok := strings.CutPrefix(watcher, app+"_")
	if !ok || rest == "" {
		return "", 0, false
	}
	if i := strings.LastIndexByte(rest, '_'); i > 0 {
		if p, err := strconv.Atoi(rest[i+1:]); err == nil && p >= minPort && p <= 65535 && rest[i+1] != '0' {
			return rest[:i], p, true
		}
	}
	return rest, 0, true
}
