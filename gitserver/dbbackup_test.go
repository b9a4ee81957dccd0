package gitserver

import (
	"strings"
	"testing"
)

func TestRestoreExclusive(t *testing.T) {
	var b backupScheduler
	if !b.startRestore(1) || b.startRestore(1) {
		t.Fatal("a second restore of app 1 must be refused while the first runs")
	}
	if !b.startRestore(2) {
		t.Error("another app's restore must run")
	}
	b.endRestore(1)
	if !b.startRestore(1) {
		t.Error("a restore after the first ended must run")
	}
}

func TestParseBackupSchedule(t *testing.T) {
	for _, ok := range []string{"@daily", "@hourly", "30 3 * * *", "*/15 * * * *", "@every 6h", "@every 1s", "0 4 * * 1-5"} {
		if _, err := parseBackupSchedule(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for in, want := range map[string]string{
		"":                       "invalid schedule",
		"not cron":               "invalid schedule",
		"61 * * * *":             "invalid schedule",
		"@daily\n* * * * *":      "invalid schedule",
		strings.Repeat("*", 200): "invalid schedule",
	} {
		if _, err := parseBackupSchedule(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}
