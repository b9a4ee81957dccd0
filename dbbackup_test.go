package conductor

import (
	"strings"
	"testing"
	"time"
)

func TestDBBackupProblems(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	ok := func(alias string, ago time.Duration) *DBBackup {
		return &DBBackup{Alias: alias, Status: BackupSucceeded, Started: now.Add(-ago)}
	}
	failed := &DBBackup{ID: 9, Alias: "default", Status: BackupFailed, Started: now.Add(-time.Hour), Error: "pg_dump: boom"}
	daily := &DBBackupSchedule{Alias: "default", Schedule: "@daily", Keep: 3, Created: now.Add(-100 * time.Hour)}
	for _, tc := range []struct {
		name    string
		backups []*DBBackup
		scheds  []*DBBackupSchedule
		want    []string // substrings, one per problem
	}{
		{"none", nil, nil, nil},
		{"last ok", []*DBBackup{ok("default", time.Hour), failed}, nil, nil},
		{"last failed", []*DBBackup{failed, ok("default", 2*time.Hour)}, nil, []string{"failed: pg_dump: boom"}},
		{"other alias failed is its own", []*DBBackup{ok("metrics", time.Minute), failed}, nil, []string{"last backup of default (9"}},
		{"schedule on time", []*DBBackup{ok("default", 30*time.Hour)}, []*DBBackupSchedule{daily}, nil},
		{"schedule behind", []*DBBackup{ok("default", 49*time.Hour)}, []*DBBackupSchedule{daily}, []string{"is behind: the last successful backup"}},
		{"schedule never succeeded", nil, []*DBBackupSchedule{daily}, []string{"no backup has succeeded since"}},
		{"new schedule", nil, []*DBBackupSchedule{{Alias: "default", Schedule: "@daily", Created: now.Add(-time.Hour)}}, nil},
		{"last upload failed", []*DBBackup{{ID: 4, Alias: "default", Status: BackupSucceeded, Started: now, RemoteStatus: RemoteFailed, RemoteError: "copy to s3://b failed: refused"}}, nil,
			[]string{"the off-host copy of the last backup of default (4, 2026-12-02T12:00:00Z) failed: copy to s3://b failed: refused"}},
		{"an older upload failed", []*DBBackup{{Alias: "default", Status: BackupSucceeded, RemoteStatus: RemoteUploaded}, {Alias: "default", Status: BackupSucceeded, RemoteStatus: RemoteFailed}}, nil, nil},
	} {
		st, problems := DBBackupProblems(now, tc.backups, tc.scheds)
		if len(problems) != len(tc.want) {
			t.Errorf("%s: problems %q, want %d", tc.name, problems, len(tc.want))
			continue
		}
		for i, w := range tc.want {
			if !strings.Contains(problems[i], w) {
				t.Errorf("%s: problem %q lacks %q", tc.name, problems[i], w)
			}
		}
		if len(st) != len(tc.scheds) {
			t.Errorf("%s: %d statuses", tc.name, len(st))
		}
	}
}
