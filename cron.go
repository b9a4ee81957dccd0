package conductor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
	// A CRON_TZ= zone must mean the same on every host, tzdata installed
	// or not: the zone database is in the binary.
	_ "time/tzdata"

	"github.com/robfig/cron/v3"

	"github.com/hasadna/conductor/internal/lazyre"
)

// CronEntry is one scheduled job of an app, declared in its repository's
// app.json ({"cron": [{"command": …, "schedule": …}]}, Dokku's shape) and
// stored with the release that declared it.
type CronEntry struct {
	ID       string        `json:"id"`       // "name" from app.json, else a hash of schedule and command
	Command  string        `json:"command"`  // run by bash -c as the app user, like a Procfile command
	Schedule string        `json:"schedule"` // five cron fields or a descriptor, optionally after CRON_TZ=<zone>
	Timeout  time.Duration `json:"timeout"`  // a run is killed after it
}

// Cron run statuses.
const (
	CronRunning   = "running"
	CronSucceeded = "succeeded"
	CronFailed    = "failed"    // non-zero exit, could not start, timed out
	CronSkipped   = "skipped"   // the previous run of the entry was still going
	CronTimedOut  = "timed out" // killed at its timeout (also a failure)
)

// Cron run triggers.
const (
	CronTriggerSchedule = "schedule"
	CronTriggerManual   = "cron:run"
)

// CronRun is one run (or skipped run) of a cron entry.
type CronRun struct {
	ID         int64
	AppID      int64
	Entry      string
	Release    string // the release serving when it ran
	Trigger    string
	Status     string
	ExitCode   int
	StartedAt  time.Time
	FinishedAt time.Time
	Duration   time.Duration
	Output     string // where its output went: "logs/cron.log as cron.<id>"
	Error      string
}

// CronStore records cron runs; the entries are the current release's
// (AddRelease stores Release.Cron).
type CronStore interface {
	// CronEntries are the entries of the app's current release.
	CronEntries(ctx context.Context, appID int64) ([]*CronEntry, error)
	// AddCronRun records a run that starts (or a skipped one) and sets its ID.
	AddCronRun(ctx context.Context, r *CronRun) error
	// FinishCronRun records a run's end: status, exit code, duration, error.
	FinishCronRun(ctx context.Context, r *CronRun) error
	// FailUnfinishedCronRuns marks the running runs of host's apps failed
	// with msg: their scheduler stopped during them.
	FailUnfinishedCronRuns(ctx context.Context, host, msg string) (int, error)
}

// CronHistory lists runs for `cron` (SQLite only: the conductor answers it).
type CronHistory interface {
	// LastCronRuns is each entry's latest run that was not skipped, by entry ID.
	LastCronRuns(ctx context.Context, appID int64) (map[string]*CronRun, error)
	// ListCronRuns lists the app's runs, newest first.
	ListCronRuns(ctx context.Context, appID int64, limit int) ([]*CronRun, error)
}

// Cron entries' bounds.
const (
	DefaultCronTimeout = time.Hour
	MaxCronTimeout     = 24 * time.Hour
	MaxCronEntries     = 50
	maxCronCommand     = 4096
)

// cronSeconds lets a schedule have a leading seconds field. Only the e2e
// tests set it, so a scheduler can be seen to fire within seconds; in
// production a schedule has the usual five fields.
var cronSeconds = os.Getenv("CONDUCTOR_TEST_CRON_SECONDS") == "1"

var cronParser = func() cron.Parser {
	opts := cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor
	if cronSeconds {
		opts |= cron.SecondOptional
	}
	return cron.NewParser(opts)
}()

// CronSchedule is a parsed schedule.
type CronSchedule struct{ s cron.Schedule }

// Next is the first time strictly after t the schedule fires (zero: never).
// A schedule without CRON_TZ= is in UTC.
func (c CronSchedule) Next(t time.Time) time.Time {
	return c.s.Next(t.UTC()).UTC()
}

// ParseCronSchedule parses a schedule: five fields (minute hour
// day-of-month month day-of-week, with ranges, lists, steps and names), or
// @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly; in
// UTC unless it starts with CRON_TZ=<IANA zone> and a space.
func ParseCronSchedule(spec string) (CronSchedule, error) {
	s := strings.TrimSpace(spec)
	if s == "" {
		return CronSchedule{}, Errorf(EINVALID, "empty schedule")
	}
	if strings.ContainsAny(s, "\n\r\x00") {
		return CronSchedule{}, Errorf(EINVALID, "a schedule is one line")
	}
	rest := s
	if strings.HasPrefix(s, "TZ=") {
		return CronSchedule{}, Errorf(EINVALID, "write the time zone as CRON_TZ=<zone>, then the schedule")
	}
	if strings.HasPrefix(s, "CRON_TZ=") {
		// The library slices up to the first space: without one it panics.
		i := strings.IndexAny(s, " \t")
		if i < 0 {
			return CronSchedule{}, Errorf(EINVALID, "CRON_TZ=<zone> must be followed by a schedule")
		}
		if _, err := time.LoadLocation(s[len("CRON_TZ="):i]); err != nil || s[len("CRON_TZ="):i] == "" {
			return CronSchedule{}, Errorf(EINVALID, "unknown time zone %q (an IANA name such as Europe/Paris)", s[len("CRON_TZ="):i])
		}
		s = "CRON_TZ=" + s[len("CRON_TZ="):i] + " " + strings.TrimSpace(s[i:])
		rest = strings.TrimSpace(s[i:])
	}
	switch {
	case rest == "@reboot":
		return CronSchedule{}, Errorf(EINVALID, "@reboot is not supported: a process that runs from start belongs in the Procfile")
	case strings.HasPrefix(rest, "@every"):
		return CronSchedule{}, Errorf(EINVALID, "@every is not supported: write the fields, e.g. */15 * * * *")
	}
	if !strings.HasPrefix(rest, "@") {
		n := len(strings.Fields(rest))
		if n != 5 && !(cronSeconds && n == 6) {
			return CronSchedule{}, Errorf(EINVALID, "%d fields: a schedule has five (minute hour day-of-month month day-of-week) or is a descriptor such as @daily", n)
		}
	}
	sched, err := cronParser.Parse(s)
	if err != nil {
		return CronSchedule{}, Errorf(EINVALID, "%v", err)
	}
	c := CronSchedule{sched}
	if c.Next(time.Now()).IsZero() {
		return CronSchedule{}, Errorf(EINVALID, "the schedule never fires (a day that does not exist?)")
	}
	return c, nil
}

var cronNameRE = lazyre.New(`^[a-z0-9][a-z0-9-]{0,39}$`)

// cronJSON is an entry as app.json has it.
type cronJSON struct {
	Command  string          `json:"command"`
	Schedule string          `json:"schedule"`
	Name     string          `json:"name"`
	Timeout  json.RawMessage `json:"timeout"`
}

// ParseCronEntries validates app.json's "cron" list, given as its items;
// where(i) names item i in an error (app.json's line, the entry's number).
// An error names the entry, its schedule and what is wrong with it.
func ParseCronEntries(items []json.RawMessage, where func(i int) string) ([]CronEntry, error) {
	if len(items) > MaxCronEntries {
		return nil, Errorf(EINVALID, "app.json: cron has %d entries, at most %d", len(items), MaxCronEntries)
	}
	var out []CronEntry
	seen := map[string]int{}
	for i, item := range items {
		var j cronJSON
		dec := json.NewDecoder(strings.NewReader(string(item)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&j); err != nil {
			return nil, Errorf(EINVALID, "%s: %v (an entry is {\"command\": …, \"schedule\": …}, optionally \"name\" and \"timeout\")", where(i), err)
		}
		at := fmt.Sprintf("%s (schedule %q)", where(i), j.Schedule)
		e, err := cronEntry(j)
		if err != nil {
			return nil, Errorf(EINVALID, "%s: %s", at, ErrorMessage(err))
		}
		if k, dup := seen[e.ID]; dup {
			return nil, Errorf(EINVALID, "%s: the same id %s as entry %d (give one a \"name\")", at, e.ID, k)
		}
		seen[e.ID] = i + 1
		out = append(out, e)
	}
	return out, nil
}

func cronEntry(j cronJSON) (CronEntry, error) {
	if _, err := ParseCronSchedule(j.Schedule); err != nil {
		return CronEntry{}, Errorf(EINVALID, "schedule: %s", ErrorMessage(err))
	}
	cmd := j.Command
	switch {
	case strings.TrimSpace(cmd) == "":
		return CronEntry{}, Errorf(EINVALID, "command is empty")
	case strings.ContainsRune(cmd, 0):
		return CronEntry{}, Errorf(EINVALID, "command holds a NUL byte")
	case len(cmd) > maxCronCommand:
		return CronEntry{}, Errorf(EINVALID, "command is longer than %d bytes", maxCronCommand)
	}
	e := CronEntry{Command: cmd, Schedule: strings.TrimSpace(j.Schedule), Timeout: DefaultCronTimeout}
	if len(j.Timeout) > 0 && string(j.Timeout) != "null" {
		t, err := cronTimeout(j.Timeout)
		if err != nil {
			return CronEntry{}, err
		}
		e.Timeout = t
	}
	if j.Name != "" {
		if !cronNameRE.MatchString(j.Name) {
			return CronEntry{}, Errorf(EINVALID, "name %q: lowercase letters, digits and -, at most 40", j.Name)
		}
		e.ID = j.Name
	} else {
		sum := sha256.Sum256([]byte(e.Schedule + "\x00" + e.Command))
		e.ID = hex.EncodeToString(sum[:4])
	}
	return e, nil
}

// cronTimeout reads "timeout": seconds (a number) or a Go duration ("30m").
func cronTimeout(raw json.RawMessage) (time.Duration, error) {
	var d time.Duration
	var secs float64
	var s string
	switch {
	case json.Unmarshal(raw, &secs) == nil:
		d = time.Duration(secs * float64(time.Second))
	case json.Unmarshal(raw, &s) == nil:
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, Errorf(EINVALID, "timeout %q: a number of seconds or a duration such as 30m", s)
		}
	default:
		return 0, Errorf(EINVALID, "timeout: a number of seconds or a duration such as 30m")
	}
	if d < time.Second || d > MaxCronTimeout {
		return 0, Errorf(EINVALID, "timeout %s: between 1s and %s", d, MaxCronTimeout)
	}
	return d, nil
}

// ValidateCronID checks an entry id given to cron:run.
func ValidateCronID(id string) error {
	if !cronNameRE.MatchString(id) {
		return Errorf(EINVALID, "bad cron entry id %q (see `cron <app>`)", id)
	}
	return nil
}
