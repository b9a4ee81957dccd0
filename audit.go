package conductor

import (
	"strings"
	"time"
)

// Outcomes of an audited operation.
const (
	OutcomeOK     = "ok"
	OutcomeFailed = "failed"
	OutcomeDenied = "denied" // refused by Authorize
)

// AuditEntry records one state-changing operation: a push or a command
// (those with Permission.Changes), whoever did it and however it ended.
type AuditEntry struct {
	ID          int64
	At          time.Time // when it started
	Took        time.Duration
	User        string
	Fingerprint string // the key the session proved
	App         string // "" for operations on the server
	Op          string // a key of Permissions
	Detail      string // arguments, without secrets (config values are left out)
	Outcome     string
	Error       string // what the user was told
	DeployID    string // the deploy it started, if any
}

// Redacted stands for a config value (or a word that may be part of one)
// in the audit trail and the server log.
const Redacted = "…"

// RedactCommand returns the words of an SSH command line as the audit trail
// and the server log may show them: config values can be secrets, so every
// word after a config:set (in any case and wherever it is, so flags or "--"
// before it change nothing) goes through RedactConfigSetArgs. A command
// without config:set is returned as it is. words is not modified.
func RedactCommand(words []string) []string {
	for i, w := range words {
		if strings.EqualFold(w, "config:set") {
			return append(append([]string(nil), words[:i+1]...), RedactConfigSetArgs(words[i+1:])...)
		}
	}
	return words
}

// RedactConfigSetArgs returns config:set's arguments (what follows the
// command word) without their values: KEY=VALUE keeps a valid KEY, the app
// (the first word that is a valid app name, before any KEY=VALUE) and
// config:set's own flags stay, and every other word becomes Redacted, since
// it may be part of a value split on an unquoted space or a value typed
// without its KEY=. It is applied before the arguments are validated, so
// it assumes nothing about them.
func RedactConfigSetArgs(args []string) []string {
	out := make([]string, len(args))
	appSeen := false
	for i, a := range args {
		k, _, hasValue := strings.Cut(a, "=")
		switch {
		case a == "--no-restart" || a == "--help" || a == "-h":
			out[i] = a
		case hasValue && ValidateConfigKey(k) == nil:
			out[i] = k + "=" + Redacted
			appSeen = true // the app comes first
		case !hasValue && !appSeen && ValidateAppName(a) == nil:
			out[i] = a
			appSeen = true
		default:
			out[i] = Redacted
		}
	}
	return out
}
