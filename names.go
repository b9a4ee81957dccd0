package conductor

import (
	"os/user"
	"strings"
	"unicode/utf8"

	"github.com/hasadna/conductor/internal/lazyre"
)

var (
	appNameRE     = lazyre.New(`^[a-z][a-z0-9-]{0,29}$`)
	userNameRE    = lazyre.New(`^[a-z][a-z0-9_-]{0,31}$`)
	procTypeRE    = lazyre.New(`^[a-z][a-z0-9_]{0,29}$`)
	hostNameRE    = lazyre.New(`^[a-z0-9][a-z0-9-]{0,62}$`)
	configKeyRE   = lazyre.New(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	branchRefRE   = lazyre.New(`^refs/(heads|tags)/[A-Za-z0-9._/-]{1,200}$`)
	domainRE      = lazyre.New(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$`)
	fingerprintRE = lazyre.New(`^SHA256:[A-Za-z0-9+/]{43}$`)
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
	return nil
}

// ValidateNewAppName is ValidateAppName plus what only matters when an app
// is created: no unix user Conductor did not make may have the name, since
// the app's processes would run as that user. It reads the user database,
// which costs far more than the checks above, so commands on existing apps
// use ValidateAppName (provisioning checks the user again on its host).
func ValidateNewAppName(name string) error {
	if err := ValidateAppName(name); err != nil {
		return err
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

// ValidateHostName checks the name of a builder host. It is a token of NATS
// subjects (deploy.<host>.<app>), so no dots or wildcards.
func ValidateHostName(name string) error {
	if !hostNameRE.MatchString(name) {
		return Errorf(EINVALID, "invalid host name %q: use 1-63 characters a-z, 0-9 and -, starting with a letter or digit", truncate(name))
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

// MaxConfigValue bounds one config value: it lives in every process's
// environment, where the kernel allows 128 KiB per string in all.
const MaxConfigValue = 32 << 10

// ValidateConfigValue checks a config value. Any text is data, but an
// environment string cannot hold a NUL byte, and values travel as JSON (the
// process spec, --json), which is UTF-8.
func ValidateConfigValue(key, value string) error {
	switch {
	case len(value) > MaxConfigValue:
		return Errorf(EINVALID, "value of %s is %d bytes, more than the %d allowed", key, len(value), MaxConfigValue)
	case strings.ContainsRune(value, 0):
		return Errorf(EINVALID, "value of %s contains a NUL byte, which no environment variable can hold", key)
	case !utf8.ValidString(value):
		return Errorf(EINVALID, "value of %s is not valid UTF-8", key)
	case key == MaxBodyVar:
		return ValidateMaxBody(value)
	}
	return nil
}

// ValidateDomain checks a custom domain for an app: a lowercase DNS name
// of two or more labels, the last starting with a letter (so no IP
// addresses), at most 253 characters. It ends up in nginx's server_name and
// Django's ALLOWED_HOSTS, so nothing else may pass.
func ValidateDomain(host string) error {
	if len(host) > 253 || !domainRE.MatchString(host) {
		return Errorf(EINVALID, "invalid domain %q: use a lowercase DNS name like www.example.org", truncate(host))
	}
	return nil
}

// ValidateFingerprint checks an SSH key fingerprint as ssh-keygen -l prints
// it (SHA256:<43 base64 characters>).
func ValidateFingerprint(fp string) error {
	if !fingerprintRE.MatchString(fp) {
		return Errorf(EINVALID, "invalid key fingerprint %q: want SHA256:… as ssh-keygen -l prints it", truncate(fp))
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
