package gitserver

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/agent"
)

func (s *Server) whoamiCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "whoami",
		Short: "Show who you are authenticated as",
		Args:  exactArgs(0, "whoami [--json]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			u := UserFromContext(ctx)
			role := "developer"
			if u.Admin {
				role = "admin"
			}
			fp := FingerprintFromContext(ctx)
			if asJSON {
				return printJSON(cmd.OutOrStdout(), map[string]string{"user": u.Name, "role": role, "fingerprint": fp})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s (%s), key %s\n", u.Name, role, fp)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// appURL is where an app is served through the front nginx.
func (s *Server) appURL(app string) string {
	host := app + "." + s.cfg.Domain
	if _, port, err := net.SplitHostPort(s.cfg.HTTPAddr); err == nil && port != "80" {
		host += ":" + port
	}
	return "http://" + host + "/"
}

// repoURL is what to push to.
func (s *Server) repoURL(app string) string { return "ssh://git@" + s.cfg.Addr + "/" + app }

func (s *Server) appsCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "apps",
		Short: "List the apps you can access",
		Args:  exactArgs(0, "apps [--json]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			apps, err := s.store.ListApps(ctx)
			if err != nil {
				return err
			}
			type row struct {
				Name string `json:"name"`
				URL  string `json:"url"`
				DB   string `json:"db"`
			}
			rows := []row{}
			for _, a := range apps {
				// Listed only if the user may look at it: the apps:info rule.
				if conductor.Authorize(ctx, s.store, UserFromContext(ctx), "apps:info", a) == nil {
					rows = append(rows, row{a.Name, s.appURL(a.Name), a.DBKind})
				}
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), rows)
			}
			for _, r := range rows {
				fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\n", r.Name, r.URL)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (s *Server) appsCreateCommand() *cobra.Command {
	var db, host string
	cmd := &cobra.Command{
		Use:   "apps:create <app>",
		Short: "Create an app (admin)",
		Args:  exactArgs(1, "apps:create <app> [--db sqlite|postgres|mysql] [--host NAME]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if db == "" {
				db = s.cfg.DefaultDB
			}
			auditFromContext(ctx).App = args[0]
			app, err := s.createApp(ctx, args[0], db, host)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Created %s on host %s (database: %s)\nPush to it: git push %s main\n", app.Name, app.Host, app.DBKind, s.repoURL(app.Name))
			return nil
		},
	}
	cmd.Flags().StringVar(&db, "db", "", "database: sqlite, postgres or mysql")
	cmd.Flags().StringVar(&host, "host", "", "host to run it on (default: the live host with the fewest apps)")
	return cmd
}

// processInfo is one watcher of an app as ps and apps:info show it.
type processInfo struct {
	Type    string `json:"type"`
	Watcher string `json:"watcher"`
	Wanted  int    `json:"wanted"`
	Running int    `json:"running"`
	State   string `json:"state"`
	Limits  string `json:"limits,omitempty"` // ps:limit, as the running spec has them
}

// processes lists an app's watchers with their state, asked of the app's
// host, and how many of each type are wanted.
func (s *Server) processes(ctx context.Context, app *conductor.App) ([]processInfo, error) {
	procs, err := s.cfg.Agents.Processes(ctx, app)
	if err != nil {
		return nil, err
	}
	scale, err := s.store.ProcessScale(ctx, app.ID)
	if err != nil {
		return nil, err
	}
	out := []processInfo{}
	for _, p := range procs {
		wanted, ok := scale[p.Type]
		if !ok {
			wanted = 1
		}
		out = append(out, processInfo{Type: p.Type, Watcher: p.Watcher, Wanted: wanted, Running: p.Running, State: p.State, Limits: p.Limits})
	}
	return out, nil
}

func (s *Server) appsInfoCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "apps:info <app>",
		Short: "Show an app's repository, URLs, database, processes and release",
		Args:  exactArgs(1, "apps:info <app> [--json]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			domains, err := s.store.Domains(ctx, app.ID)
			if err != nil {
				return err
			}
			procs, err := s.processes(ctx, app)
			if err != nil {
				return err
			}
			type release struct {
				ID      string    `json:"id"`
				Rev     string    `json:"rev"`
				Created time.Time `json:"created"`
			}
			info := struct {
				Name      string        `json:"name"`
				Host      string        `json:"host"`
				Repo      string        `json:"repo"`
				URL       string        `json:"url"`
				Domains   []string      `json:"domains"`
				DB        string        `json:"db"`
				Database  any           `json:"database,omitempty"` // engine, name, host; never the password
				Processes []processInfo `json:"processes"`
				Release   *release      `json:"release"`
				Redis     *redisInfo    `json:"redis,omitempty"` // redis:create's; never the password
				Created   time.Time     `json:"created"`
			}{Name: app.Name, Host: app.Host, Repo: s.repoURL(app.Name), URL: s.appURL(app.Name), Domains: domains, DB: app.DBKind, Processes: procs, Created: app.CreatedAt}
			dbDesc := app.DBKind
			if s.cfg.Databases != nil {
				d, err := s.cfg.Databases.Describe(ctx, app)
				if err != nil {
					return err
				}
				info.Database = d
				dbDesc = fmt.Sprintf("%s (%s %s", d.Kind, d.Engine, d.Name)
				if d.Port != "" {
					dbDesc += " on " + net.JoinHostPort(d.Host, d.Port)
				} else if d.Host != "" {
					dbDesc += " on " + d.Host // a unix socket
				}
				dbDesc += ")"
			}
			if r, err := s.store.AppRedis(ctx, app.ID); err == nil {
				info.Redis = &redisInfo{App: app.Name, Host: "127.0.0.1", Port: r.Port, MaxMemory: r.MaxMemory, Policy: r.Policy, Env: "REDIS_URL", CreatedAt: r.CreatedAt}
				info.Redis.State = "stopped"
				for _, p := range procs {
					if p.Watcher == app.Name+"_redis-server" {
						info.Redis.State, info.Redis.Running = p.State, p.Running
					}
				}
			} else if conductor.ErrorCode(err) != conductor.ENOTFOUND {
				return err
			}
			cur, err := s.store.CurrentRelease(ctx, app.ID)
			if err == nil {
				info.Release = &release{cur.ID, cur.Rev, cur.CreatedAt}
			} else if conductor.ErrorCode(err) != conductor.ENOTFOUND {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), info)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "=== %s\n", app.Name)
			fmt.Fprintf(w, "Host:        %s\n", app.Host)
			fmt.Fprintf(w, "Repository:  %s\n", info.Repo)
			fmt.Fprintf(w, "URL:         %s\n", info.URL)
			fmt.Fprintf(w, "Domains:     %s\n", orNone(strings.Join(domains, ", ")))
			fmt.Fprintf(w, "Database:    %s\n", dbDesc)
			var ps []string
			for _, p := range procs {
				ps = append(ps, fmt.Sprintf("%s=%d (%s)", p.Type, p.Running, p.State))
			}
			fmt.Fprintf(w, "Processes:   %s\n", orNone(strings.Join(ps, ", ")))
			if info.Redis != nil {
				fmt.Fprintf(w, "Redis:       127.0.0.1:%d (maxmemory %s, %s), REDIS_URL\n", info.Redis.Port, info.Redis.MaxMemory, info.Redis.Policy)
			}
			if info.Release != nil {
				fmt.Fprintf(w, "Release:     %s (rev %.8s, %s)\n", cur.ID, cur.Rev, cur.CreatedAt.Format(time.RFC3339))
			} else {
				fmt.Fprintf(w, "Release:     none: push to deploy\n")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func (s *Server) appsDestroyCommand() *cobra.Command {
	var confirm string
	cmd := &cobra.Command{
		Use:   "apps:destroy <app> --confirm <app>",
		Short: "Destroy an app: processes, vhost, files, repository, databases, unix user (admin)",
		Args:  exactArgs(1, "apps:destroy <app> --confirm <app>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			if confirm != app.Name {
				return conductor.Errorf(conductor.EINVALID,
					"this destroys %s with its data, repository and databases: confirm with apps:destroy %s --confirm %s", app.Name, app.Name, app.Name)
			}
			if err := s.destroyApp(ctx, app, cmd.OutOrStdout()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Destroyed %s\n", app.Name)
			return nil
		},
	}
	cmd.Flags().StringVar(&confirm, "confirm", "", "the app's name, to confirm")
	return cmd
}

// destroyApp undoes everything Conductor made for an app. Each step is
// idempotent and the app's record goes last, so a destroy that fails
// halfway can simply be run again.
func (s *Server) destroyApp(ctx context.Context, app *conductor.App, out io.Writer) error {
	step := func(what string) { fmt.Fprintf(out, "-----> %s\n", what) }
	fmt.Fprintf(out, "-----> Removing %s from host %s\n", app.Name, app.Host)
	steps, err := s.cfg.Agents.Destroy(ctx, app)
	for _, st := range steps {
		step(st)
	}
	if err != nil {
		return err
	}
	step("Removing the repository")
	if err := agent.RemoveInside(s.RepoDir(app.Name), s.cfg.ReposDir); err != nil {
		return err
	}
	domains, err := s.store.Domains(ctx, app.ID)
	if err != nil {
		return err
	}
	if err := s.store.DeleteApp(ctx, app.ID); err != nil {
		return err
	}
	// Certificate files go once their records have (with the domains).
	s.forgetCerts(ctx, app, domains)
	slog.Info("app destroyed", "app", app.Name, "user", UserFromContext(ctx).Name)
	return nil
}

func (s *Server) deploysCommand() *cobra.Command {
	var asJSON bool
	var limit int
	cmd := &cobra.Command{
		Use:   "deploys <app>",
		Short: "Show an app's deploys: who started each, with which key, and how it ended",
		Args:  exactArgs(1, "deploys <app> [-n N] [--json]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			if limit < 1 || limit > 10000 {
				return conductor.Errorf(conductor.EINVALID, "-n must be between 1 and 10000")
			}
			deploys, err := s.store.ListDeploys(ctx, app.ID)
			if err != nil {
				return err
			}
			// The key comes from the audit trail: the entry of the push or
			// command that started the deploy.
			entries, err := s.store.ListAudit(ctx, app.Name, 100000)
			if err != nil {
				return err
			}
			byDeploy := map[string]*conductor.AuditEntry{}
			for _, e := range entries {
				if e.DeployID != "" {
					byDeploy[e.DeployID] = e
				}
			}
			type row struct {
				ID          string     `json:"id"`
				Created     time.Time  `json:"created"`
				Finished    *time.Time `json:"finished,omitempty"`
				Status      string     `json:"status"`
				Ref         string     `json:"ref"`
				Rev         string     `json:"rev"`
				User        string     `json:"user"`
				Fingerprint string     `json:"fingerprint"`
				Error       string     `json:"error,omitempty"`
			}
			rows := []row{}
			for i, d := range deploys {
				if i >= limit {
					break
				}
				r := row{ID: d.ID, Created: d.CreatedAt, Status: d.Status, Ref: d.Ref, Rev: d.Rev, User: d.Pusher, Error: d.Error}
				if !d.FinishedAt.IsZero() {
					f := d.FinishedAt
					r.Finished = &f
				}
				if e := byDeploy[d.ID]; e != nil {
					r.Fingerprint = e.Fingerprint
				}
				rows = append(rows, r)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), rows)
			}
			w := cmd.OutOrStdout()
			for _, r := range rows {
				fmt.Fprintf(w, "%s  %s  %-9s  %-16s %.8s  by %s %s\n", r.ID, r.Created.Format(time.RFC3339), r.Status,
					strings.TrimPrefix(r.Ref, "refs/heads/"), r.Rev, r.User, orNone(r.Fingerprint))
				if r.Error != "" {
					fmt.Fprintf(w, "    %s\n", firstLine(r.Error))
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().IntVarP(&limit, "num", "n", 20, "number of deploys")
	return cmd
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func (s *Server) auditCommand() *cobra.Command {
	var asJSON bool
	var limit int
	var app string
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show the audit trail: every push and state-changing command (admin)",
		Args:  exactArgs(0, "audit [--app APP] [-n N] [--json]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if app != "" {
				if err := conductor.ValidateAppName(app); err != nil {
					return err
				}
			}
			if limit < 1 || limit > 10000 {
				return conductor.Errorf(conductor.EINVALID, "-n must be between 1 and 10000")
			}
			entries, err := s.store.ListAudit(ctx, app, limit)
			if err != nil {
				return err
			}
			if asJSON {
				type row struct {
					At          time.Time `json:"at"`
					TookMS      int64     `json:"took_ms"`
					User        string    `json:"user"`
					Fingerprint string    `json:"fingerprint"`
					App         string    `json:"app,omitempty"`
					Op          string    `json:"op"`
					Detail      string    `json:"detail,omitempty"`
					Outcome     string    `json:"outcome"`
					Error       string    `json:"error,omitempty"`
					DeployID    string    `json:"deploy,omitempty"`
				}
				rows := []row{}
				for _, e := range entries {
					rows = append(rows, row{e.At, e.Took.Milliseconds(), e.User, e.Fingerprint, e.App, e.Op, e.Detail, e.Outcome, e.Error, e.DeployID})
				}
				return printJSON(cmd.OutOrStdout(), rows)
			}
			w := cmd.OutOrStdout()
			for _, e := range entries {
				fmt.Fprintf(w, "%s  %-7s %s (%s)  %s %s %s\n", e.At.Format(time.RFC3339), e.Outcome, e.User, e.Fingerprint, e.Op, e.App, e.Detail)
				if e.Error != "" {
					fmt.Fprintf(w, "    %s\n", firstLine(e.Error))
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().IntVarP(&limit, "num", "n", 50, "number of entries")
	cmd.Flags().StringVar(&app, "app", "", "only this app's entries")
	return cmd
}
