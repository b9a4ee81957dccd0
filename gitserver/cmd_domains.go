package gitserver

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hasadna/conductor"
)

// domainArg validates a domain given to domains:add/remove. Names under the
// server's own domain are refused: <app>.<domain> is how every app is
// reached, so one app must not take another's (or a future app's) name.
func (s *Server) domainArg(arg string) (string, error) {
	host := strings.ToLower(arg) // DNS names are case-insensitive
	if err := conductor.ValidateDomain(host); err != nil {
		return "", err
	}
	if host == s.cfg.Domain || strings.HasSuffix(host, "."+s.cfg.Domain) {
		return "", conductor.Errorf(conductor.EINVALID, "domain %s is under %s, which Conductor gives to apps as <app>.%s", host, s.cfg.Domain, s.cfg.Domain)
	}
	return host, nil
}

func (s *Server) domainsCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "domains <app>",
		Short: "List the host names an app is served at",
		Args:  exactArgs(1, "domains <app> [--json]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			custom, err := s.store.Domains(ctx, app.ID)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), map[string]any{"default": app.Name + "." + s.cfg.Domain, "custom": custom})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s.%s (default)\n", app.Name, s.cfg.Domain)
			for _, d := range custom {
				fmt.Fprintln(cmd.OutOrStdout(), d)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (s *Server) domainsAddCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "domains:add <app> <domain>",
		Short: "Serve an app at another host name too (nginx server_name and ALLOWED_HOSTS)",
		Long: "Serve an app at another host name too: it is added to the app's nginx server_name and\n" +
			"Django's ALLOWED_HOSTS, and the app restarts with the same zero-downtime switch as a deploy.",
		Args: exactArgs(2, "domains:add <app> <domain>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			host, err := s.domainArg(args[1])
			if err != nil {
				return err
			}
			if err := s.store.AddDomain(ctx, app.ID, host); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Added %s to %s\n", host, app.Name)
			return s.redeploy(ctx, app, "domains:add", cmd.OutOrStdout())
		},
	}
}

func (s *Server) domainsRemoveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "domains:remove <app> <domain>",
		Short: "Stop serving an app at a host name",
		Args:  exactArgs(2, "domains:remove <app> <domain>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			host, err := s.domainArg(args[1])
			if err != nil {
				return err
			}
			if err := s.store.RemoveDomain(ctx, app.ID, host); err != nil {
				if conductor.ErrorCode(err) == conductor.ENOTFOUND {
					return conductor.Errorf(conductor.ENOTFOUND, "%s has no domain %s", app.Name, host)
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removed %s from %s\n", host, app.Name)
			return s.redeploy(ctx, app, "domains:remove", cmd.OutOrStdout())
		},
	}
}
