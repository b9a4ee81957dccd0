package provision

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hasadna/conductor"
)

// AppUser is the unix identity an app's processes run as.
type AppUser struct {
	Name     string
	UID, GID int
	Home     string
}

// EnsureUser creates the app's unix user (named after the app) when Conductor
// runs as root, and returns it. Otherwise the app runs as Conductor's own
// user. A user of that name that Conductor did not create is refused.
func EnsureUser(ctx context.Context, app, home string) (*AppUser, error) {
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			return nil, err
		}
		return toAppUser(u, home)
	}
	u, err := user.Lookup(app)
	if err != nil {
		out, err := exec.CommandContext(ctx, "useradd", "--system", "--user-group",
			"--home-dir", home, "--no-create-home", "--shell", "/usr/sbin/nologin",
			"--comment", conductor.AppUserComment, app).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("useradd %s: %w: %s", app, err, strings.TrimSpace(string(out)))
		}
		if u, err = user.Lookup(app); err != nil {
			return nil, fmt.Errorf("look up new user %s: %w", app, err)
		}
	} else if u.Name != conductor.AppUserComment {
		return nil, conductor.Errorf(conductor.EINVALID, "unix user %q exists and was not created by conductor", app)
	} else if filepath.Clean(u.HomeDir) != filepath.Clean(home) {
		// Its home is its project dir, which names the instance: another
		// Conductor's app of that name (another --data dir on this host)
		// is not ours to run code as. A user whose instance is gone (its
		// home no longer exists: the data dir was deleted) is taken over.
		if _, err := os.Lstat(u.HomeDir); !errors.Is(err, fs.ErrNotExist) {
			return nil, conductor.Errorf(conductor.EINVALID,
				"unix user %q belongs to another Conductor instance (its home is %s, not %s): choose another app name or remove that user",
				app, u.HomeDir, home)
		}
		out, err := exec.CommandContext(ctx, "usermod", "--home", home, app).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("usermod %s: %w: %s", app, err, strings.TrimSpace(string(out)))
		}
	}
	return toAppUser(u, home)
}

func toAppUser(u *user.User, home string) (*AppUser, error) {
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, err
	}
	return &AppUser{Name: u.Username, UID: uid, GID: gid, Home: home}, nil
}

// Chown gives path to the app user (a no-op when not root).
func (u *AppUser) Chown(path string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	return os.Lchown(path, u.UID, u.GID)
}

// ChownTree gives a whole directory tree to the app user.
func (u *AppUser) ChownTree(ctx context.Context, dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	out, err := exec.CommandContext(ctx, "chown", "-R", "-h", "--", fmt.Sprintf("%d:%d", u.UID, u.GID), dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("chown %s: %w: %s", dir, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// RemoveUser deletes the app's unix user (and its group) if Conductor
// created it; any other user of that name, or none, is left alone.
func RemoveUser(ctx context.Context, app string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup(app)
	if err != nil || u.Name != conductor.AppUserComment {
		return nil
	}
	out, err := exec.CommandContext(ctx, "userdel", app).CombinedOutput()
	if err != nil {
		return fmt.Errorf("userdel %s: %w: %s", app, err, strings.TrimSpace(string(out)))
	}
	return nil
}
