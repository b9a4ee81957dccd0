package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/hooks"
	"github.com/hasadna/conductor/process"
	"github.com/hasadna/conductor/queue"
)

// hookCommand is run by git inside receive-pack, with the environment the
// SSH server set; people do not run it.
func hookCommand() *cobra.Command {
	hook := &cobra.Command{Use: "hook", Short: "Git hooks (run by git)", Hidden: true}
	hook.AddCommand(&cobra.Command{
		Use:   "pre-receive",
		Short: "Deploy the pushed deploy branch; reject the push if the deploy fails",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			repo, err := os.Getwd() // git runs hooks in a bare repo's GIT_DIR
			if err != nil {
				return err
			}
			h := &hooks.PreReceive{
				NATS:    queue.Conn{URLs: os.Getenv(hooks.EnvNATSURL), Token: os.Getenv(hooks.EnvNATSToken), CAFile: os.Getenv(hooks.EnvNATSCA)},
				App:     os.Getenv(hooks.EnvApp),
				User:    os.Getenv(hooks.EnvUser),
				Host:    os.Getenv(hooks.EnvHost),
				RepoDir: repo,
				Out:     os.Stderr,
			}
			if h.NATS.URLs == "" || h.App == "" || h.Host == "" {
				return errors.New("conductor hook must be run by conductor's git server")
			}
			if err := h.Run(cmd.Context(), os.Stdin); err != nil {
				// git shows our stderr as "remote:" lines and then rejects the push.
				msg := conductor.ErrorMessage(err)
				if conductor.ErrorCode(err) == conductor.EINTERNAL {
					msg = err.Error()
				}
				for _, line := range strings.Split(strings.TrimSpace(msg), "\n") {
					fmt.Fprintf(os.Stderr, " !     %s\n", line)
				}
				os.Exit(1)
			}
			return nil
		},
	})
	return hook
}

// runProcessCommand is what circus runs for every app process: it execs the
// command of a process spec (see package process).
func runProcessCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "run-process SPEC.json [WID]",
		Short:  "Exec an app process from its spec (run by circus)",
		Hidden: true,
		Args:   cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			wid := ""
			if len(args) == 2 {
				wid = args[1]
			}
			return process.Exec(args[0], wid)
		},
	}
}
