// Package provision prepares a host for an app: its unix user, directories,
// port pair, secret key and generated settings. Every function is idempotent,
// because a deploy job can run again after a crash.
package provision

import (
	"path/filepath"
)

// Layout names the directories under Conductor's /srv (the seed's
// convention: projects/<app> for code, environments/<app> for virtualenvs).
type Layout struct {
	Srv string // e.g. /srv, or <data>/srv in self-contained mode
}

// ProjectDir holds everything of an app but its virtualenvs.
func (l Layout) ProjectDir(app string) string { return filepath.Join(l.Srv, "projects", app) }

// ReleasesDir holds one directory per release.
func (l Layout) ReleasesDir(app string) string { return filepath.Join(l.ProjectDir(app), "releases") }

// ReleaseDir is where a release's code is unpacked.
func (l Layout) ReleaseDir(app, release string) string {
	return filepath.Join(l.ReleasesDir(app), release)
}

// CurrentLink points at the serving release.
func (l Layout) CurrentLink(app string) string { return filepath.Join(l.ProjectDir(app), "current") }

// DataDir is the app's persistent data (SQLite database, media): it
// outlives releases.
func (l Layout) DataDir(app string) string { return filepath.Join(l.ProjectDir(app), "data") }

// MediaDir is Django's MEDIA_ROOT.
func (l Layout) MediaDir(app string) string { return filepath.Join(l.DataDir(app), "media") }

// LogDir holds the runtime output of the app's processes.
func (l Layout) LogDir(app string) string { return filepath.Join(l.ProjectDir(app), "logs") }

// RunDir holds the process specs circus starts the app's processes from.
// It is root's (the app's group may read): root trusts what is in it.
func (l Layout) RunDir(app string) string { return filepath.Join(l.ProjectDir(app), "run") }

// HomeDir is HOME for the app's processes: the one place under the project
// dir, besides data, that the app may write.
func (l Layout) HomeDir(app string) string { return filepath.Join(l.ProjectDir(app), "home") }

// ProjectsDir and EnvironmentsRoot hold every app's project dir and
// environments dir; only root writes them.
func (l Layout) ProjectsDir() string      { return filepath.Join(l.Srv, "projects") }
func (l Layout) EnvironmentsRoot() string { return filepath.Join(l.Srv, "environments") }

// VenvMarker says a virtualenv was built completely. It lives beside the
// virtualenvs, in root's directory, not in the virtualenv the app's code
// (a setup.py) can write.
func (l Layout) VenvMarker(venv string) string { return venv + ".complete" }

// EnvironmentsDir holds the app's virtualenvs, one per requirements hash.
func (l Layout) EnvironmentsDir(app string) string { return filepath.Join(l.Srv, "environments", app) }

// SeedCache is root's uv cache that a new app's cache starts from (hard
// links to its files: builder/seed.go). Root's only (0700); on the
// environments' filesystem, for the links.
func (l Layout) SeedCache() string { return filepath.Join(l.Srv, "uv-seed") }
