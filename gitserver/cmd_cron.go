package gitserver

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/agent"
)

// cronCommand lists an app's cron entries (its current release's app.json)
// with their next and last runs; --runs lists the latest runs, skipped
// ones included.
func (s *Server) cronCommand() *cobra.Command {
	var asJSON bool
	var runs int
	cmd := &cobra.Command{
		Use:   "cron <app>",
		Short: "List an app's scheduled jobs (app.json's cron) with their next and last run",
		Long: "List the cron entries of the app's serving release, declared in app.json as\n" +
			`{"cron": [{"command": "python manage.py clearsessions", "schedule": "@daily"}]}` + "\n" +
			"(UTC unless the schedule starts with CRON_TZ=<zone>). --runs N lists the last N runs instead.",
		Args: exactArgs(1, "cron <app> [--runs N] [--json]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			out := cmd.OutOrStdout()
			if runs < 0 || runs > 1000 {
				return conductor.Errorf(conductor.EINVALID, "--runs: 1 to 1000")
			}
			if runs > 0 {
				list, err := s.store.ListCronRuns(ctx, app.ID, runs)
				if err != nil {
					return err
				}
				rows := []cronRunRow{}
				for _, r := range list {
					rows = append(rows, runRow(r))
				}
				if asJSON {
					return printJSON(out, rows)
				}
				for _, r := range rows {
					fmt.Fprintf(out, "%-6d %-12s %s  %-10s %-9s exit %-3d %7.1fs  %s %s\n", r.ID, r.Entry, r.Started.Format(time.RFC3339),
						r.Trigger, r.Status, r.ExitCode, float64(r.DurationMS)/1000, r.Output, r.Error)
				}
				return nil
			}
			entries, err := s.store.CronEntries(ctx, app.ID)
			if err != nil {
				return err
			}
			last, err := s.store.LastCronRuns(ctx, app.ID)
			if err != nil {
				return err
			}
			type row struct {
				ID         string      `json:"id"`
				Schedule   string      `json:"schedule"`
				Command    string      `json:"command"`
				TimeoutSec float64     `json:"timeout_seconds"`
				Next       *time.Time  `json:"next,omitempty"`
				Last       *cronRunRow `json:"last,omitempty"`
			}
			rows := []row{}
			now := time.Now()
			for _, e := range entries {
				r := row{ID: e.ID, Schedule: e.Schedule, Command: e.Command, TimeoutSec: e.Timeout.Seconds()}
				if sched, err := conductor.ParseCronSchedule(e.Schedule); err == nil {
					if n := sched.Next(now); !n.IsZero() {
						r.Next = &n
					}
				}
				if l := last[e.ID]; l != nil {
					lr := runRow(l)
					r.Last = &lr
				}
				rows = append(rows, r)
			}
			if asJSON {
				return printJSON(out, rows)
			}
			if len(rows) == 0 {
				fmt.Fprintf(out, "%s has no cron entries (app.json's \"cron\" list)\n", app.Name)
				return nil
			}
			for _, r := range rows {
				next, lastS := "-", "never run"
				if r.Next != nil {
					next = r.Next.UTC().Format(time.RFC3339)
				}
				if l := r.Last; l != nil {
					lastS = fmt.Sprintf("%s %s (exit %d, %.1fs)", l.Started.UTC().Format(time.RFC3339), l.Status, l.ExitCode, float64(l.DurationMS)/1000)
					if l.Status == conductor.CronRunning {
						lastS = fmt.Sprintf("%s running", l.Started.UTC().Format(time.RFC3339))
					}
				}
				fmt.Fprintf(out, "%-12s %-20s next %s  last %s\n%12s %s\n", r.ID, r.Schedule, next, lastS, "", r.Command)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().IntVar(&runs, "runs", 0, "list the last N runs (skipped ones too) instead of the entries")
	return cmd
}

type cronRunRow struct {
	ID         int64     `json:"id"`
	Entry      string    `json:"entry"`
	Release    string    `json:"release"`
	Trigger    string    `json:"trigger"`
	Status     string    `json:"status"`
	ExitCode   int       `json:"exit_code"`
	Started    time.Time `json:"started"`
	Finished   time.Time `json:"finished,omitzero"`
	DurationMS int64     `json:"duration_ms"`
	Output     string    `json:"output,omitempty"`
	Error      string    `json:"error,omitempty"`
}

func runRow(r *conductor.CronRun) cronRunRow {
	return cronRunRow{r.ID, r.Entry, r.Release, r.Trigger, r.Status, r.ExitCode, r.StartedAt, r.FinishedAt, r.Duration.Milliseconds(), r.Output, r.Error}
}

// cronRunCommand runs one of the app's cron entries now on its host, in
// the serving release, streaming its output, and exits with its status.
func (s *Server) cronRunCommand(sess session) *cobra.Command {
	return &cobra.Command{
		Use:   "cron:run <app> <id>",
		Short: "Run one of the app's cron entries now (ids: cron <app>), streaming its output",
		Args:  exactArgs(2, "cron:run <app> <id>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			if err := conductor.ValidateCronID(args[1]); err != nil {
				return err
			}
			code, err := s.cfg.Agents.RunCron(ctx, app, args[1], agent.Stdio{In: sess, Out: sess, Err: sess.Stderr()})
			if err != nil {
				return err
			}
			if code != 0 {
				return exitStatus(code)
			}
			return nil
		},
	}
}
