package gitserver

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/provision"
)

// redisInfo is what `redis <app>` shows: never the password (the app's
// REDIS_URL has it; `run <app> -- printenv REDIS_URL` shows it to those
// who may run code as the app anyway).
type redisInfo struct {
	App       string    `json:"app"`
	Host      string    `json:"host"`
	Port      int       `json:"port"`
	MaxMemory string    `json:"maxmemory"`
	Policy    string    `json:"policy"`
	Env       string    `json:"env"`
	State     string    `json:"state"`
	Running   int       `json:"running"`
	CreatedAt time.Time `json:"created_at"`
}

func (s *Server) redisCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "redis <app>",
		Short: "Show an app's Redis: port, memory limit, policy, state (never its password)",
		Args:  exactArgs(1, "redis <app> [--json]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			r, err := s.store.AppRedis(ctx, app.ID)
			if err != nil {
				return err
			}
			info := redisInfo{App: app.Name, Host: "127.0.0.1", Port: r.Port, MaxMemory: r.MaxMemory, Policy: r.Policy,
				Env: "REDIS_URL", State: "unknown", CreatedAt: r.CreatedAt}
			procs, err := s.cfg.Agents.Processes(ctx, app)
			if err != nil {
				return err
			}
			info.State = "stopped"
			for _, p := range procs {
				if p.Watcher == app.Name+"_redis-server" {
					info.State, info.Running = p.State, p.Running
				}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, info)
			}
			fmt.Fprintf(out, "Redis of %s: 127.0.0.1:%d, %s (%d running), maxmemory %s, policy %s\n",
				app.Name, r.Port, info.State, info.Running, r.MaxMemory, r.Policy)
			fmt.Fprintf(out, "The app's processes have its URL in REDIS_URL; created %s\n", r.CreatedAt.UTC().Format(time.RFC3339))
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (s *Server) redisCreateCommand() *cobra.Command {
	var maxMemory, policy string
	var noRestart bool
	cmd := &cobra.Command{
		Use:   "redis:create <app>",
		Short: "Run a private Redis server for an app and give its processes REDIS_URL (admin)",
		Long: "Run a Redis server for the app on its host, as the app's user, bound to 127.0.0.1 on a port\n" +
			"from Conductor's range, with a generated password, a memory limit (--maxmemory, default\n" +
			"64mb) and an eviction policy (--policy, default noeviction: a Celery broker must not lose\n" +
			"tasks; allkeys-lru suits a cache), its RDB snapshot and append-only file in the app's data\n" +
			"dir. The app restarts with REDIS_URL=redis://:<password>@127.0.0.1:<port>/0.",
		Args: exactArgs(1, "redis:create <app> [--maxmemory 64mb] [--policy noeviction] [--no-restart]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			mem, err := conductor.ParseRedisMaxMemory(maxMemory)
			if err != nil {
				return err
			}
			if err := conductor.ValidateRedisPolicy(policy); err != nil {
				return err
			}
			if _, err := s.store.AppRedis(ctx, app.ID); err == nil {
				return conductor.Errorf(conductor.ECONFLICT, "%s has a Redis already: see redis %s", app.Name, app.Name)
			} else if conductor.ErrorCode(err) != conductor.ENOTFOUND {
				return err
			}
			used, err := s.store.UsedPorts(ctx)
			if err != nil {
				return err
			}
			r, err := provision.NewRedis(ctx, s.store, used, app, mem, policy, s.cfg.Ports)
			if err != nil {
				return err
			}
			if err := s.cfg.Agents.StartRedis(ctx, app, r); err != nil {
				// Nothing half made is kept: a second redis:create starts afresh.
				_ = s.cfg.Agents.StopRedis(ctx, app, true)
				_ = s.store.DeleteAppRedis(ctx, app.ID)
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Created Redis for %s on 127.0.0.1:%d (maxmemory %s, policy %s): REDIS_URL\n", app.Name, r.Port, r.MaxMemory, r.Policy)
			if noRestart {
				fmt.Fprintln(out, "Not restarted: the app's processes get REDIS_URL at the next ps:restart, config change or push")
				return nil
			}
			return s.redeploy(ctx, app, "redis:create", out)
		},
	}
	cmd.Flags().StringVar(&maxMemory, "maxmemory", conductor.DefaultRedisMaxMemory, "memory limit: 64mb, 1gb...")
	cmd.Flags().StringVar(&policy, "policy", conductor.DefaultRedisPolicy, "maxmemory-policy: noeviction, allkeys-lru...")
	cmd.Flags().BoolVar(&noRestart, "no-restart", false, "do not restart the app now")
	return cmd
}

func (s *Server) redisDestroyCommand() *cobra.Command {
	var confirm, noRestart bool
	cmd := &cobra.Command{
		Use:   "redis:destroy <app> --confirm",
		Short: "Stop an app's Redis and delete its data (admin)",
		Long:  "Stop the app's Redis server, delete its data and restart the app without REDIS_URL.",
		Args:  exactArgs(1, "redis:destroy <app> --confirm [--no-restart]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			if _, err := s.store.AppRedis(ctx, app.ID); err != nil {
				return err
			}
			if !confirm {
				return conductor.Errorf(conductor.EINVALID, "this deletes the data of %s's Redis: confirm with redis:destroy %s --confirm", app.Name, app.Name)
			}
			// Stopped first: a failure here leaves the record, so the
			// command can be run again.
			if err := s.cfg.Agents.StopRedis(ctx, app, true); err != nil {
				return err
			}
			if err := s.store.DeleteAppRedis(ctx, app.ID); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Destroyed the Redis of %s and its data\n", app.Name)
			if noRestart {
				fmt.Fprintln(out, "Not restarted: the app's processes keep a REDIS_URL that no longer answers until the next restart or push")
				return nil
			}
			return s.redeploy(ctx, app, "redis:destroy", out)
		},
	}
	cmd.Flags().BoolVar(&confirm, "confirm", false, "delete the data")
	cmd.Flags().BoolVar(&noRestart, "no-restart", false, "do not restart the app now")
	return cmd
}
