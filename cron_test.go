package conductor

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestParseCronScheduleNext(t *testing.T) {
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct{ spec, from, want string }{
		{"* * * * *", "2026-12-02T11:47:30Z", "2026-12-02T11:48:00Z"},
		{"*/15 * * * *", "2026-12-02T11:47:00Z", "2026-12-02T12:00:00Z"},
		{"0 9-17/4 * * *", "2026-12-02T11:47:00Z", "2026-12-02T13:00:00Z"},
		{"5,35 * * * *", "2026-12-02T11:05:00Z", "2026-12-02T11:35:00Z"}, // strictly after
		{"0 0 * * MON-FRI", "2026-12-04T12:00:00Z", "2026-12-07T00:00:00Z"},
		{"30 2 29 2 *", "2026-03-01T00:00:00Z", "2028-02-29T02:30:00Z"},
		{"@hourly", "2026-12-02T11:47:00Z", "2026-12-02T12:00:00Z"},
		{"@daily", "2026-12-02T11:47:00Z", "2026-12-03T00:00:00Z"},
		{"@midnight", "2026-12-02T11:47:00Z", "2026-12-03T00:00:00Z"},
		{"@weekly", "2026-12-02T11:47:00Z", "2026-12-06T00:00:00Z"},
		{"@monthly", "2026-12-02T11:47:00Z", "2027-01-01T00:00:00Z"},
		{"@yearly", "2026-12-02T11:47:00Z", "2027-01-01T00:00:00Z"},
		{"@annually", "2026-12-02T11:47:00Z", "2027-01-01T00:00:00Z"},
		// UTC unless CRON_TZ names a zone; the answer is in UTC.
		{"0 3 * * *", "2026-12-02T11:47:00Z", "2026-12-03T03:00:00Z"},
		{"CRON_TZ=Europe/Paris 0 3 * * *", "2026-12-02T11:47:00Z", "2026-12-03T02:00:00Z"},
		{"CRON_TZ=Europe/Paris 0 3 * * *", "2026-07-02T11:47:00Z", "2026-07-03T01:00:00Z"},
		{"CRON_TZ=America/New_York @daily", "2026-12-02T11:47:00Z", "2026-12-03T05:00:00Z"},
		// A local time given with its offset is the same instant.
		{"0 12 * * *", "2026-12-02T13:47:00+02:00", "2026-12-02T12:00:00Z"},
	} {
		s, err := ParseCronSchedule(c.spec)
		if err != nil {
			t.Errorf("%q: %v", c.spec, err)
			continue
		}
		if got := s.Next(at(c.from)); !got.Equal(at(c.want)) || got.Location() != time.UTC {
			t.Errorf("%q after %s = %s, want %s", c.spec, c.from, got, c.want)
		}
	}
}

func TestParseCronScheduleRefuses(t *testing.T) {
	for spec, want := range map[string]string{
		"":                               "empty",
		"61 * * * *":                     "61",
		"* * * *":                        "4 fields",
		"0 0 0 * * *":                    "6 fields", // no seconds field outside the tests
		"* 24 * * *":                     "24",
		"*/0 * * * *":                    "",
		"0 0 30 2 *":                     "never fires",
		"@reboot":                        "@reboot is not supported",
		"@every 5m":                      "@every is not supported",
		"@sometimes":                     "unrecognized descriptor",
		"CRON_TZ=Mars/Olympus 0 * * * *": "unknown time zone",
		"CRON_TZ=UTC":                    "must be followed",
		"TZ=UTC 0 * * * *":               "CRON_TZ=",
		"0 * * * *\n0 * * * *":           "one line",
		"0 * * JANUARY *":                "",
	} {
		_, err := ParseCronSchedule(spec)
		if err == nil || ErrorCode(err) != EINVALID || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an EINVALID error with %q", spec, err, want)
		}
	}
}

func TestParseCronEntries(t *testing.T) {
	items := func(s string) []json.RawMessage {
		var v []json.RawMessage
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	where := func(i int) string { return "entry " + string(rune('1'+i)) }
	got, err := ParseCronEntries(items(`[{"command": "python manage.py clearsessions", "schedule": "@daily"},
		{"name": "report", "command": "python manage.py report", "schedule": " 0 6 * * 1 ", "timeout": 90},
		{"command": "x", "schedule": "@hourly", "timeout": "2h30m"}]`), where)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || len(got[0].ID) != 8 || got[0].Timeout != DefaultCronTimeout ||
		got[1].ID != "report" || got[1].Schedule != "0 6 * * 1" || got[1].Timeout != 90*time.Second || got[2].Timeout != 150*time.Minute {
		t.Fatalf("%+v", got)
	}
	again, _ := ParseCronEntries(items(`[{"command": "python manage.py clearsessions", "schedule": "@daily"}]`), where)
	if again[0].ID != got[0].ID {
		t.Errorf("an entry's id changes: %s, %s", again[0].ID, got[0].ID)
	}
	for doc, want := range map[string]string{
		`[{"command": "x", "schedule": "@daily"}, {"command": "y", "schedule": "99 * * * *"}]`: `entry 2 (schedule "99 * * * *"): schedule: `,
		`[{"command": "", "schedule": "@daily"}]`:                                              "command is empty",
		`[{"command": "x", "schedule": "@daily", "timeout": 0}]`:                               "between 1s",
		`[{"command": "x", "schedule": "@daily", "timeout": "25h"}]`:                           "between 1s",
		`[{"command": "x", "schedule": "@daily", "timeout": "soon"}]`:                          "a number of seconds",
		`[{"command": "x", "schedule": "@daily", "name": "Bad Name"}]`:                         "name",
		`[{"command": "x", "schedule": "@daily", "every": "day"}]`:                             "unknown field",
		`[{"command": "x", "schedule": "@daily"}, {"command": "x", "schedule": "@daily"}]`:     "the same id",
		`["echo"]`: "entry 1",
	} {
		if _, err := ParseCronEntries(items(doc), where); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", doc, err, want)
		}
	}
}
