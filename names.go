package conductor

import (
	"os/user"
	"regexp"
	"strings"
)

var (
	appNameRE     = regexp.MustCompile(`^[a-z][a-z0-9-]{0,29}$`)
	userNameRE    = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)
	procTypeRE    = regexp.MustCompile(`^[a-z][a-z0-9_]{0,29}$`)
	configKeyRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	branchRefRE   = regexp.MustCompile(`^refs/(heads|tags)/[A-Za-z0-9._/-]{1,200}$`)
	reservedNames = map[string]bool{
		"root": true, "admin": true, "git": true, "conductor": true, "www": true,
		"nginx": true, "circus": true, "daemon": true, "nobody": true, "postgres": true,
		"mysql": true, "static": true, "api": true, "localhost": true,
	}
)

// AppUserComment marks unix users that Conductor created for an app, so a
// re-provision can tell its own user from a system user with the same name.
const AppUserComment = "conductor app"

// ValidateAppName checks an app name: it becomes a unix user, a directory, a
// database name and a DNS label, so it is strict.
func ValidateAppName(name string) error {
	if !appNameRE.MatchString(name) || strings.HasSuffix(name, "-") || strings.Contains(name, "--") {
		return Errorf(EINVALID, "invalid app name %q: use 1-30 characters a-z, 0-9 and single dashes, starting with a letter", truncate(name))
	}
	if reservedNames[name] {
		return Errorf(EINVALID, "invalid app name %q: the name is reserved", name)
	}
	if u, err := user.Lookup(name); err == nil && u.Name != AppUserComment {
		return Errorf(EINVALID, "invalid app name %q: a system user has that name", name)
	}
	return nil
}

// ValidateUserName checks the name of a Conductor user (not a unix user).
func ValidateUserName(name string) error {
	if !userNameRE.MatchString(name) {
		return Errorf(EINVALID, "invalid user name %q: use 1-32 characters a-z, 0-9, _ and -, starting with a letter", truncate(name))
	}
	return nil
}

// ValidateProcessType checks a Procfile process type.
func ValidateProcessType(name string) error {
	if !procTypeRE.MatchString(name) {
		return Errorf(EINVALID, "invalid process type %q: use a-z, 0-9 and _, starting with a letter", truncate(name))
	}
	return nil
}

// ValidateConfigKey checks a config var name: it must be a valid environment
// variable name.
func ValidateConfigKey(key string) error {
	if !configKeyRE.MatchString(key) {
		return Errorf(EINVALID, "invalid config key %q: use letters, digits and _, not starting with a digit", truncate(key))
	}
	return nil
}

// ValidateRef checks a full ref name pushed to an app.
func ValidateRef(ref string) error {
	if !branchRefRE.MatchString(ref) || strings.Contains(ref, "..") || strings.Contains(ref, "//") {
		return Errorf(EINVALID, "invalid ref %q", truncate(ref))
	}
	return nil
}

// IsDeployBranch reports whether a push to ref deploys the app.
func IsDeployBranch(ref string) bool {
	return ref == "refs/heads/main" || ref == "refs/heads/master"
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
