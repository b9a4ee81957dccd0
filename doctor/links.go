package doctor

import (
	"os"
	"strings"
)

// ProtectedLinks checks fs.protected_hardlinks. Conductor's root process
// never follows a symlink in an app's directories (internal/safefs), and
// what it reads there it checks is a regular file; a hard link is a
// regular file, so without this protection an app user could hard-link a
// root file it cannot read into its own tree. (fs.protected_symlinks guards
// links in /tmp for other programs; Conductor does not depend on it.)
func ProtectedLinks() Result {
	const name = "hard links"
	b, err := os.ReadFile("/proc/sys/fs/protected_hardlinks")
	if err != nil {
		return warn(name, "", "cannot read fs.protected_hardlinks: %v", err)
	}
	if v := strings.TrimSpace(string(b)); v != "1" {
		return fail(name, "sysctl -w fs.protected_hardlinks=1 (and set it in /etc/sysctl.d/)",
			"fs.protected_hardlinks is %s: an app user can hard-link files it does not own into its own tree", v)
	}
	return ok(name, "fs.protected_hardlinks is on: app users cannot hard-link files they do not own")
}
