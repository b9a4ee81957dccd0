package gitserver

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hasadna/conductor"
)

func (s *Server) accessCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "access <app>",
		Short: "List who may push to and operate an app (admin)",
		Args:  exactArgs(1, "access <app> [--json]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			granted, err := s.store.ListAccess(ctx, app.ID)
			if err != nil {
				return err
			}
			users, err := s.store.ListUsers(ctx)
			if err != nil {
				return err
			}
			type row struct {
				User string `json:"user"`
				Role string `json:"role"`
				Via  string `json:"via"` // "admin" or "grant"
			}
			rows := []row{}
			for _, u := range users {
				if u.Admin {
					rows = append(rows, row{u.Name, "admin", "admin"})
				}
			}
			for _, u := range granted {
				if !u.Admin {
					rows = append(rows, row{u.Name, "developer", "grant"})
				}
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), rows)
			}
			for _, r := range rows {
				fmt.Fprintf(cmd.OutOrStdout(), "%-16s %-9s (%s)\n", r.User, r.Role, r.Via)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (s *Server) accessGrantCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "access:grant <app> <user>",
		Short: "Let a developer push to and operate an app (admin)",
		Args:  exactArgs(2, "access:grant <app> <user>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			if err := conductor.ValidateUserName(args[1]); err != nil {
				return err
			}
			u, err := s.store.FindUser(ctx, args[1])
			if err != nil {
				return err
			}
			if err := s.store.GrantAccess(ctx, app.ID, u.ID); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Granted %s access to %s\n", u.Name, app.Name)
			return nil
		},
	}
}

func (s *Server) accessRevokeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "access:revoke <app> <user>",
		Short: "Take back a developer's access to an app (admin)",
		Args:  exactArgs(2, "access:revoke <app> <user>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			if err := conductor.ValidateUserName(args[1]); err != nil {
				return err
			}
			u, err := s.store.FindUser(ctx, args[1])
			if err != nil {
				return err
			}
			if err := s.store.RevokeAccess(ctx, app.ID, u.ID); err != nil {
				if conductor.ErrorCode(err) == conductor.ENOTFOUND {
					return conductor.Errorf(conductor.ENOTFOUND, "%s has no grant on %s", u.Name, app.Name)
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Revoked %s's access to %s\n", u.Name, app.Name)
			return nil
		},
	}
}
