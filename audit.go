package conductor

import "time"

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
