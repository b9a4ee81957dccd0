package gitserver

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/hooks"
	"github.com/hasadna/conductor/internal/lazyre"
	"github.com/hasadna/conductor/queue"
)

// releasesCommand lists an app's releases: what a rollback can go back to.
func (s *Server) releasesCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "releases <app>",
		Short: "List an app's releases, newest first (the serving one is marked *)",
		Args:  exactArgs(1, "releases <app> [--json]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			releases, err := s.store.ListReleases(ctx, app.ID)
			if err != nil {
				return err
			}
			type row struct {
				Number      int       `json:"number"`
				ID          string    `json:"id"`
				Rev         string    `json:"rev"`
				By          string    `json:"by"`
				Description string    `json:"description"`
				Created     time.Time `json:"created"`
				DurationMS  int64     `json:"duration_ms"`
				Current     bool      `json:"current"`
			}
			rows := []row{}
			for _, r := range releases {
				rows = append(rows, row{r.Number, r.ID, r.Rev, r.Pusher, r.Description, r.CreatedAt, r.Duration.Milliseconds(), r.Current})
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), rows)
			}
			for _, r := range rows {
				mark := " "
				if r.Current {
					mark = "*"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s v%-4d %s  %.8s  %-10s %5.1fs  %s\n", mark, r.Number,
					r.Created.Format(time.RFC3339), r.Rev, r.By, float64(r.DurationMS)/1000, r.Description)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// rollbackCommand runs a kept release again, by default the one before the
// serving release.
func (s *Server) rollbackCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "rollback <app> [<release>]",
		Short: "Switch back to an earlier release (its code, virtualenv and config); migrations are not reversed",
		Args: func(cmd *cobra.Command, args []string) error {
			return rangeArgs(args, 1, 2, "rollback <app> [<release>]")
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			var target *conductor.Release
			if len(args) == 2 {
				r, err := s.store.FindRelease(ctx, app.ID, args[1])
				if err != nil {
					return err
				}
				target = r
			} else {
				releases, err := s.store.ListReleases(ctx, app.ID)
				if err != nil {
					return err
				}
				for i, r := range releases {
					if r.Current && i+1 < len(releases) {
						target = releases[i+1]
						break
					}
				}
				if target == nil {
					return conductor.Errorf(conductor.ENOTFOUND, "%s has no earlier release to roll back to", app.Name)
				}
			}
			job := s.newJob(ctx, app, target.Rev, fmt.Sprintf("rollback to v%d", target.Number))
			job.Kind, job.Release = queue.KindRollback, target.ID
			fmt.Fprintf(cmd.OutOrStdout(), "-----> Rolling %s back to v%d (release %s)\n", app.Name, target.Number, job.ID)
			return hooks.Run(ctx, s.queue, job, cmd.OutOrStdout())
		},
	}
}

// gitRefRE is what `deploy` accepts as a ref: branch, tag or commit names,
// never an option.
var gitRefRE = lazyre.New(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$`)

// deployCommand deploys any pushed ref, tag or commit.
func (s *Server) deployCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "deploy <app> <ref>",
		Short: "Deploy a pushed branch, tag or commit",
		Args:  exactArgs(2, "deploy <app> <ref>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			ref := args[1]
			if !gitRefRE.MatchString(ref) || strings.Contains(ref, "..") {
				return conductor.Errorf(conductor.EINVALID, "invalid ref %q", ref)
			}
			git := exec.CommandContext(ctx, "git", "rev-parse", "--verify", "--quiet", "--end-of-options", ref+"^{commit}")
			git.Dir = s.RepoDir(app.Name)
			out, err := git.Output()
			if err != nil {
				return conductor.Errorf(conductor.ENOTFOUND, "%s has no ref %q: push it first", app.Name, ref)
			}
			rev := strings.TrimSpace(string(out))
			job := s.newJob(ctx, app, rev, "deploy "+ref)
			fmt.Fprintf(cmd.OutOrStdout(), "-----> Deploying %s %s (%.8s) as %s\n", app.Name, ref, rev, job.ID)
			return hooks.Submit(ctx, s.queue, s.RepoDir(app.Name), job, cmd.OutOrStdout())
		},
	}
}

// deploysCancelCommand stops an app's queued and running deploys.
func (s *Server) deploysCancelCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "deploys:cancel <app>",
		Short: "Stop an app's queued and running deploys (the serving release stays)",
		Args:  exactArgs(1, "deploys:cancel <app>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			n, err := s.queue.Cancel(ctx, app.Host, app.Name)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Canceled %d deploy(s) of %s\n", n, app.Name)
			return nil
		},
	}
}

// newJob is a deploy job for app started by the session's user.
func (s *Server) newJob(ctx context.Context, app *conductor.App, rev, reason string) *queue.Job {
	job := &queue.Job{
		ID: hooks.NewJobID(), App: app.Name, Host: app.Host, Rev: rev, Ref: reason,
		Pusher: UserFromContext(ctx).Name, CreatedAt: time.Now().UTC(),
	}
	auditFromContext(ctx).DeployID = job.ID
	return job
}

func rangeArgs(args []string, lo, hi int, usage string) error {
	if len(args) < lo || len(args) > hi {
		return conductor.Errorf(conductor.EINVALID, "usage: %s", usage)
	}
	return nil
}
