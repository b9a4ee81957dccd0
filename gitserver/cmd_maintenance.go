package gitserver

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/hasadna/conductor"
)

// maintenanceInfo is what `maintenance <app>` shows.
type maintenanceInfo struct {
	App        string     `json:"app"`
	On         bool       `json:"on"`
	Message    string     `json:"message,omitempty"`
	RetryAfter int        `json:"retry_after,omitempty"`
	By         string     `json:"by,omitempty"`
	Since      *time.Time `json:"since,omitempty"`
}

func (s *Server) maintenanceCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "maintenance <app>",
		Short: "Show whether an app is in maintenance mode",
		Args:  exactArgs(1, "maintenance <app> [--json]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			info := maintenanceInfo{App: app.Name}
			m, err := s.store.Maintenance(ctx, app.ID)
			switch {
			case conductor.ErrorCode(err) == conductor.ENOTFOUND:
			case err != nil:
				return err
			default:
				since := m.Since.UTC()
				info = maintenanceInfo{App: app.Name, On: true, Message: m.Message, RetryAfter: m.RetryAfter, By: m.By, Since: &since}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, info)
			}
			if !info.On {
				fmt.Fprintf(out, "%s is not in maintenance\n", app.Name)
				return nil
			}
			fmt.Fprintf(out, "%s is in maintenance since %s (by %s): nginx answers 503 with Retry-After %d\n",
				app.Name, info.Since.Format(time.RFC3339), info.By, info.RetryAfter)
			if info.Message != "" {
				fmt.Fprintf(out, "Message: %s\n", info.Message)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (s *Server) maintenanceOnCommand() *cobra.Command {
	var message, retryAfter string
	cmd := &cobra.Command{
		Use:   "maintenance:on <app>",
		Short: "Put an app in maintenance mode: nginx answers 503 with a maintenance page",
		Long: "Put an app in maintenance mode: its nginx answers every request but /static/ and /media/\n" +
			"with 503, Retry-After (--retry-after, default 60 seconds) and the serving release's\n" +
			"maintenance.html (at the top of the repository), else a plain page with --message. The\n" +
			"app's processes keep running (run, migrations and scheduled jobs still work), and deploys,\n" +
			"rollbacks and restarts keep the mode until maintenance:off. Run again to change the message.",
		Args: exactArgs(1, "maintenance:on <app> [--message TEXT] [--retry-after SECONDS]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			if cmd.Flags().Changed("message") {
				if err := conductor.ValidateMaintenanceMessage(message); err != nil {
					return err
				}
			}
			retry, err := conductor.ParseMaintenanceRetryAfter(retryAfter)
			if err != nil {
				return err
			}
			m := &conductor.Maintenance{AppID: app.ID, Message: message, RetryAfter: retry, By: UserFromContext(ctx).Name}
			if err := s.setMaintenance(ctx, app, m); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s is in maintenance: nginx answers 503 (Retry-After %d) but for /static/ and /media/\n", app.Name, retry)
			if _, err := s.store.CurrentRelease(ctx, app.ID); conductor.ErrorCode(err) == conductor.ENOTFOUND {
				fmt.Fprintf(cmd.OutOrStdout(), "%s has not been deployed yet: its first deploy serves the maintenance page\n", app.Name)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&message, "message", "", "the plain page's message (one line, at most 500 characters)")
	cmd.Flags().StringVar(&retryAfter, "retry-after", strconv.Itoa(conductor.DefaultMaintenanceRetry), "seconds clients are told to wait")
	return cmd
}

func (s *Server) maintenanceOffCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "maintenance:off <app>",
		Short: "Take an app out of maintenance mode: nginx routes to it again",
		Args:  exactArgs(1, "maintenance:off <app>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			if err := s.setMaintenance(ctx, app, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s is out of maintenance\n", app.Name)
			return nil
		},
	}
}

// setMaintenance records the app's maintenance mode (nil: off) and has its
// host's nginx serve it, returning once it does. If the host cannot, the
// previous mode is recorded again, so the state says what nginx serves
// (and the next start of that host renders it anyway).
func (s *Server) setMaintenance(ctx context.Context, app *conductor.App, m *conductor.Maintenance) error {
	prev, err := s.store.Maintenance(ctx, app.ID)
	if conductor.ErrorCode(err) == conductor.ENOTFOUND {
		prev = nil
	} else if err != nil {
		return err
	}
	if err := storeMaintenance(ctx, s.store, app, m); err != nil {
		return err
	}
	if err := s.cfg.Agents.ApplyMaintenance(ctx, app); err != nil {
		if rerr := storeMaintenance(context.WithoutCancel(ctx), s.store, app, prev); rerr != nil {
			return fmt.Errorf("%w (and recording the previous mode again failed: %v)", err, rerr)
		}
		_ = s.cfg.Agents.ApplyMaintenance(context.WithoutCancel(ctx), app)
		return err
	}
	return nil
}

func storeMaintenance(ctx context.Context, st conductor.MaintenanceStore, app *conductor.App, m *conductor.Maintenance) error {
	if m == nil {
		return st.ClearMaintenance(ctx, app.ID)
	}
	return st.SetMaintenance(ctx, m)
}
