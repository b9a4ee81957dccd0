package gitserver

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/notify"
)

// Webhook notifications (package notify). The commands are open to every
// user in conductor.Permissions; who may touch which subscription is
// decided here, by mayNotify: a platform-wide subscription is the admin's,
// an app's is its developers'.

// notifier returns the server's Notifier, or why there is none.
func (s *Server) notifier() (*notify.Notifier, error) {
	if s.cfg.Notify == nil {
		return nil, conductor.Errorf(conductor.EUNAVAILABLE, "this server does not send notifications")
	}
	return s.cfg.Notify, nil
}

// mayNotify tells whether the session's user may see and change a
// subscription of app (nil: platform-wide). An app the user has no access
// to reads as not found, like everywhere else.
func (s *Server) mayNotify(ctx context.Context, app *conductor.App) error {
	u := UserFromContext(ctx)
	level, err := conductor.AccessFor(ctx, s.store, u, app)
	if err != nil {
		return err
	}
	switch {
	case app == nil && level < conductor.Admin:
		return conductor.Errorf(conductor.EUNAUTHORIZED, "platform-wide notifications need an admin: add --app <app>")
	case app != nil && level == conductor.NoAccess:
		return conductor.AppNotFound(app.Name)
	case app != nil && level < conductor.ReadWrite:
		return conductor.Errorf(conductor.EUNAUTHORIZED, "you may not change %s's notifications", app.Name)
	}
	return nil
}

// findSubscription resolves a notify:remove/test argument to a subscription
// the user may act on; others' read as not found.
func (s *Server) findSubscription(ctx context.Context, n *notify.Notifier, arg string) (*notify.Subscription, error) {
	id, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || id <= 0 {
		return nil, conductor.Errorf(conductor.EINVALID, "subscription id %q is not a number (see notify)", truncateArg(arg))
	}
	notFound := conductor.Errorf(conductor.ENOTFOUND, "subscription %d not found", id)
	sub, err := n.Store().FindSubscription(ctx, id)
	if err != nil {
		return nil, err
	}
	var app *conductor.App
	if sub.AppID != 0 {
		if app, err = s.store.FindApp(ctx, sub.App); err != nil {
			return nil, err
		}
	}
	if err := s.mayNotify(ctx, app); err != nil {
		if c := conductor.ErrorCode(err); c == conductor.EUNAUTHORIZED || c == conductor.ENOTFOUND {
			auditFromContext(ctx).Outcome = conductor.OutcomeDenied
			return nil, notFound
		}
		return nil, err
	}
	auditFromContext(ctx).App = sub.App
	return sub, nil
}

func truncateArg(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// redactURL keeps a URL's scheme and host: Slack-style webhooks carry
// their credential in the path, which the audit trail must not keep.
func redactURL(raw string) string {
	if i := strings.Index(raw, "://"); i >= 0 {
		rest := raw[i+3:]
		if j := strings.IndexAny(rest, "/?"); j >= 0 {
			return raw[:i+3+j] + "/…"
		}
	}
	return raw
}

func (s *Server) notifyAddCommand() *cobra.Command {
	var events, appName, format string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "notify:add <url> [--events deploy.succeeded,…] [--app <app>] [--format json|slack]",
		Short: "Send events to a webhook (platform-wide: admin; --app: the app's developers); prints its signing secret once",
		Args:  exactArgs(1, "notify:add <url> [--events LIST] [--app APP] [--format json|slack]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rec := auditFromContext(ctx)
			rec.Detail = redactURL(args[0])
			n, err := s.notifier()
			if err != nil {
				return err
			}
			u, err := notify.ValidateURL(args[0])
			if err != nil {
				return err
			}
			evs, err := notify.ParseEvents(events)
			if err != nil {
				return err
			}
			if format != notify.FormatJSON && format != notify.FormatSlack {
				return conductor.Errorf(conductor.EINVALID, "--format must be json or slack")
			}
			rec.Detail += " --events " + strings.Join(evs, ",") + " --format " + format
			var app *conductor.App
			if appName != "" {
				if err := conductor.ValidateAppName(appName); err != nil {
					return err
				}
				rec.App = appName
				app, err = s.store.FindApp(ctx, appName)
				if conductor.ErrorCode(err) == conductor.ENOTFOUND {
					rec.Outcome = conductor.OutcomeDenied
					return conductor.AppNotFound(appName)
				} else if err != nil {
					return err
				}
			}
			if err := s.mayNotify(ctx, app); err != nil {
				rec.Outcome = conductor.OutcomeDenied
				return err
			}
			secret, err := notify.NewSecret()
			if err != nil {
				return err
			}
			sub := &notify.Subscription{URL: u.String(), Events: evs, Format: format, Secret: secret, CreatedBy: UserFromContext(ctx).Name}
			if app != nil {
				sub.AppID, sub.App = app.ID, app.Name
			}
			if err := n.Store().AddSubscription(ctx, sub); err != nil {
				return err
			}
			rec.Detail = fmt.Sprintf("#%d %s", sub.ID, rec.Detail)
			if asJSON {
				return printJSON(cmd.OutOrStdout(), map[string]any{"subscription": sub, "secret": secret})
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Added subscription %d: %s gets %s\n", sub.ID, redactURL(sub.URL), strings.Join(evs, ", "))
			fmt.Fprintf(w, "Signing secret (shown only now; verify X-Conductor-Signature with it):\n%s\n", secret)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&events, "events", "", "comma-separated events (default: all): "+strings.Join(notify.Events, ","))
	f.StringVar(&appName, "app", "", "only this app's events (default: every app's; admin only)")
	f.StringVar(&format, "format", notify.FormatJSON, "json (signed event) or slack (Slack/Mattermost incoming webhook)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// notifyEntry is one subscription as notify lists it.
type notifyEntry struct {
	*notify.Subscription
	Deliveries []*notify.Delivery `json:"deliveries"`
	Failed     int                `json:"failed"` // of Deliveries
}

func (s *Server) notifyCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "notify",
		Short: "List the webhook subscriptions you may see, with their last deliveries and failures",
		Args:  exactArgs(0, "notify [--json]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			n, err := s.notifier()
			if err != nil {
				return err
			}
			subs, err := n.Store().ListSubscriptions(ctx)
			if err != nil {
				return err
			}
			entries := []notifyEntry{}
			apps := map[string]*conductor.App{}
			for _, sub := range subs {
				var app *conductor.App
				if sub.AppID != 0 {
					if app = apps[sub.App]; app == nil {
						if app, err = s.store.FindApp(ctx, sub.App); err != nil {
							return err
						}
						apps[sub.App] = app
					}
				}
				if s.mayNotify(ctx, app) != nil {
					continue
				}
				ds, err := n.Store().ListDeliveries(ctx, sub.ID, 10)
				if err != nil {
					return err
				}
				e := notifyEntry{Subscription: sub, Deliveries: ds}
				for _, d := range ds {
					if d.Status == notify.StatusFailed {
						e.Failed++
					}
				}
				entries = append(entries, e)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), entries)
			}
			w := cmd.OutOrStdout()
			if len(entries) == 0 {
				fmt.Fprintln(w, "No notifications. Add one with notify:add <url>.")
			}
			for _, e := range entries {
				scope := "all apps"
				if e.App != "" {
					scope = "app " + e.App
				}
				fmt.Fprintf(w, "%d  %s  (%s, %s; %s)\n", e.ID, e.URL, scope, e.Format, strings.Join(e.Events, ","))
				if len(e.Deliveries) == 0 {
					fmt.Fprintln(w, "    no deliveries yet")
				}
				for _, d := range e.Deliveries {
					line := fmt.Sprintf("    %s  %-17s %-9s attempts %d", d.UpdatedAt.UTC().Format(time.RFC3339), d.Event, d.Status, d.Attempts)
					if d.Error != "" {
						line += "  " + d.Error
					} else if d.ResponseCode != 0 {
						line += fmt.Sprintf("  (%d)", d.ResponseCode)
					}
					fmt.Fprintln(w, line)
				}
				if e.Failed > 0 {
					fmt.Fprintf(w, "    %d of the last %d deliveries failed\n", e.Failed, len(e.Deliveries))
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (s *Server) notifyRemoveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "notify:remove <id>",
		Short: "Stop sending events to a webhook subscription",
		Args:  exactArgs(1, "notify:remove <id>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			n, err := s.notifier()
			if err != nil {
				return err
			}
			sub, err := s.findSubscription(ctx, n, args[0])
			if err != nil {
				return err
			}
			if err := n.Store().RemoveSubscription(ctx, sub.ID); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removed subscription %d (%s)\n", sub.ID, redactURL(sub.URL))
			return nil
		},
	}
}

func (s *Server) notifyTestCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "notify:test <id>",
		Short: "Send a test event to a webhook subscription now and show the receiver's answer",
		Args:  exactArgs(1, "notify:test <id> [--json]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			n, err := s.notifier()
			if err != nil {
				return err
			}
			sub, err := s.findSubscription(ctx, n, args[0])
			if err != nil {
				return err
			}
			res, err := n.SendTest(ctx, sub, UserFromContext(ctx).Name)
			if err != nil {
				return err
			}
			if asJSON {
				if err := printJSON(cmd.OutOrStdout(), res); err != nil {
					return err
				}
			} else if res.Error == "" {
				fmt.Fprintf(cmd.OutOrStdout(), "Delivered: the receiver answered %d\n", res.Code)
			}
			if res.Error != "" {
				return conductor.Errorf(conductor.EUNAVAILABLE, "test delivery failed: %s", res.Error)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
