package doctor

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/sqlite"
)

// DBBackups reports apps whose last database backup failed and backup
// schedules whose last success is older than twice their period (the
// same problems db:backups lists), read from the state at data.
func DBBackups(ctx context.Context, data string) Result {
	const name = "db backups"
	apps, err := sqlite.ReadDBBackups(ctx, filepath.Join(data, "conductor.db"))
	if err != nil {
		return warn(name, "see the state db check", "cannot read the backups: %v", err)
	}
	now := time.Now()
	var problems []string
	for _, a := range apps {
		_, ps := conductor.DBBackupProblems(now, a.Backups, a.Schedules)
		for _, p := range ps {
			problems = append(problems, a.App+": "+p)
		}
	}
	if len(problems) > 0 {
		return warn(name, "see db:backups <app>, fix the cause and run db:backup <app>",
			"%d problems: %s", len(problems), strings.Join(problems, "; "))
	}
	return ok(name, "%s, none failed last or behind its schedule", plural(len(apps), "app"))
}

func plural(n int, what string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s with backups", what)
	}
	return fmt.Sprintf("%d %ss with backups", n, what)
}
