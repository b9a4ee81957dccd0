package builder

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/internal/safefs"
)

// placeConfigFiles writes the app's config files (config:file) into the
// release, relative to its app directory, 0600 and the app user's; part of
// the settings step, so a restart or rollback places the app's current
// files too. The release dir is the app user's, so every write goes through
// safefs from the release dir (its parent, releases/, is root's): a link at
// a file's path is replaced, never written through, and a link on the way
// to it fails the deploy. Files Conductor placed in this directory earlier
// (a restart or rollback links a kept release's files into its own
// directory, linkRelease) and no longer configured are removed.
func (d *deployment) placeConfigFiles(ctx context.Context) error {
	files, err := d.b.Store.ConfigFiles(ctx, d.app.ID)
	if err != nil {
		return err
	}
	placed, err := d.b.Store.PlacedConfigFiles(ctx, d.app.ID, d.dir)
	if err != nil {
		return err
	}
	want := make([]string, 0, len(files))
	for _, f := range files {
		want = append(want, f.Path)
	}
	for _, p := range placed {
		if slices.Contains(want, p) {
			continue
		}
		if err := safefs.Remove(d.dir, path.Join(d.build.AppDir, p)); err != nil {
			return failf("remove config file %s: %v", p, err)
		}
		d.log.Printf("       Config file %s: removed", p)
	}
	if len(files) == 0 {
		if len(placed) > 0 {
			return d.b.Store.SetPlacedConfigFiles(ctx, d.app.ID, d.dir, nil)
		}
		return nil
	}
	// Recorded before writing, so a write that fails half way is still
	// known to this directory's next restart.
	if err := d.b.Store.SetPlacedConfigFiles(ctx, d.app.ID, d.dir, want); err != nil {
		return err
	}
	for _, f := range files {
		if err := d.placeConfigFile(ctx, f, slices.Contains(placed, f.Path)); err != nil {
			return err
		}
	}
	return nil
}

// placeConfigFile writes one config file; ours tells whether Conductor
// placed the file at that path in this directory before (otherwise what is
// there is the repository's).
func (d *deployment) placeConfigFile(ctx context.Context, f *conductor.ConfigFile, ours bool) error {
	if err := conductor.ValidateConfigFilePath(f.Path); err != nil { // stored before a rule was added
		return failf("config file %s: %v", f.Path, err)
	}
	content, err := d.b.Store.ConfigFileContent(ctx, d.app.ID, f.Path)
	if err != nil {
		return fmt.Errorf("config file %s: %w", f.Path, err)
	}
	rel := path.Join(d.build.AppDir, f.Path)
	if dir := path.Dir(f.Path); dir != "." {
		// Directories the repository lacks are made as the app's, as the
		// unpacked ones are.
		if err := safefs.MkdirAll(d.dir, path.Join(d.build.AppDir, dir), 0o750, d.user.UID, d.user.GID); err != nil {
			return failf("config file %s: %v (Conductor does not write through links)", f.Path, err)
		}
	}
	replaces := ""
	st, err := safefs.Lstat(d.dir, rel)
	switch {
	case err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR:
		return failf("config file %s: the release has a directory there", f.Path)
	case err == nil && !ours && st.Mode&unix.S_IFMT == unix.S_IFLNK:
		replaces = " (replaces the repository's link, which is not followed)"
	case err == nil && !ours:
		replaces = " (replaces the repository's file)"
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return failf("config file %s: %v (Conductor does not write through links)", f.Path, err)
	}
	if err := safefs.WriteFile(d.dir, rel, content, 0o600, d.user.UID, d.user.GID); err != nil {
		return failf("config file %s: %v", f.Path, err)
	}
	d.log.Printf("       Config file %s (%d bytes)%s", f.Path, len(content), replaces)
	return nil
}

// maxBody is an app's client_max_body_size for nginx, from its config
// vars: CONDUCTOR_MAX_BODY (validated by config:set) or the default. A
// value stored before it was validated is not rendered: printf warns and
// the default is used.
func maxBody(config map[string]string, printf func(string, ...any)) string {
	v, ok := config[conductor.MaxBodyVar]
	if !ok {
		return conductor.DefaultMaxBody
	}
	if err := conductor.ValidateMaxBody(v); err != nil {
		printf("       Warning: %v; using %s", err, conductor.DefaultMaxBody)
		return conductor.DefaultMaxBody
	}
	return v
}
