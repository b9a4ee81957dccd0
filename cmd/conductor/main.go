// Command conductor is the whole of Conductor in one binary: the server
// (`serve`), its setup (`init`), remote builders (`worker`), the git hook git
// runs on push (`hook`), and the launcher circus starts app processes with
// (`run-process`). All wiring of packages happens here.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/hasadna/conductor"
)

// The main goroutine stays on the process's main thread, so run-process
// execs the app's command from it. An exec from another thread makes the
// kernel retire the main thread first, and for that moment /proc/<pid>/stat
// calls the process a zombie: circus took such a live app process for dead
// (left it out of its list, or dropped it and started a second one).
func init() { runtime.LockOSThread() }

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	root := &cobra.Command{
		Use:           "conductor",
		Short:         "Conductor: git push deploys for Django apps",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(initCommand(), serveCommand(), workerCommand(), hookCommand(), runProcessCommand(), versionCommand())
	root.AddCommand(doctorCommand(), backupCommand(), restoreCommand())
	root.AddCommand(installCommand(), uninstallCommand(), stopAllCommand())
	root.AddCommand(pythonAddCommand(), pythonListCommand(), pythonRemoveCommand())
	root.AddCommand(databasesInitLocalCommand())
	if err := root.ExecuteContext(context.Background()); err != nil {
		var cerr *conductor.Error
		if errors.As(err, &cerr) {
			fmt.Fprintf(os.Stderr, "error: %s\n", cerr.Message)
		} else {
			fmt.Fprintf(os.Stderr, "error: %v\n", err)
		}
		os.Exit(1)
	}
}

func versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "conductor %s\n", version)
		},
	}
}

func setupLogging(level string) error {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})))
	return nil
}
