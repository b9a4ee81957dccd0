package cgroup

import "path"

// Where one Conductor instance's groups are, below the base of the process
// that makes them (circusd's for app processes, Conductor's own for build
// steps and one-off commands):
//
//	conductor/<instance id>/<app>/<watcher>-<n>/<wid>   an app process (circus's slot wid)
//	conductor/<instance id>/<app>/build                 the running deploy's build commands
//	conductor/<instance id>/<app>/run-<id>              one `run` command
//
// The instance id (<data>/instance-id) keeps two Conductors on one host
// apart. A watcher's group has a suffix of its own (<n>) so that a
// watcher of the same name made again later never shares a group with
// the processes its predecessor left behind.

// InstancePath is the group holding everything of one Conductor instance.
func InstancePath(instance string) string { return path.Join("conductor", instance) }

// AppPath is the group holding everything of one app.
func AppPath(instance, app string) string { return path.Join(InstancePath(instance), app) }

// BuildPath is the group of an app's build commands.
func BuildPath(instance, app string) string { return path.Join(AppPath(instance, app), "build") }

// RunPath is the group of one one-off command.
func RunPath(instance, app, id string) string { return path.Join(AppPath(instance, app), "run-"+id) }

// WatcherPath is the group of one watcher's processes; each process has
// its own group below it, named by its slot.
func WatcherPath(instance, app, watcher, suffix string) string {
	return path.Join(AppPath(instance, app), watcher+"-"+suffix)
}
