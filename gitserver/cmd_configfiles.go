package gitserver

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hasadna/conductor"
)

// config:file, config:files, config:file:remove and config:file:get: files
// an app reads (a secrets.json) placed in every release by the builder's
// settings step (builder/configfiles.go). Content arrives on stdin and is
// never printed, logged or audited; only config:file:get (admin) gives it
// back.

func (s *Server) configFileCommand() *cobra.Command {
	var noRestart bool
	cmd := &cobra.Command{
		Use:   "config:file <app> <PATH>",
		Short: "Store a file (on stdin) placed at PATH in every release",
		Long: "Store a file, read from stdin, that every release of the app gets at PATH (relative to the app\n" +
			"directory, where manage.py is), mode 0600, owned by the app's user; a repository file at PATH is\n" +
			"replaced. Then restart the app with it, like config:set (--no-restart to batch changes).\n" +
			fmt.Sprintf("At most %d KiB per file and %d files per app. Example: config:file app secrets.json < secrets.json",
				conductor.MaxConfigFileSize>>10, conductor.MaxConfigFiles),
		Args: exactArgs(2, "config:file <app> <PATH> [--no-restart] < FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			p := args[1]
			if err := conductor.ValidateConfigFilePath(p); err != nil {
				return err
			}
			content, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), conductor.MaxConfigFileSize+1))
			if err != nil {
				return fmt.Errorf("read the file from stdin: %w", err)
			}
			switch {
			case len(content) > conductor.MaxConfigFileSize:
				return conductor.Errorf(conductor.EINVALID, "the file is larger than %d KiB, the most a config file may hold", conductor.MaxConfigFileSize>>10)
			case len(content) == 0:
				return conductor.Errorf(conductor.EINVALID, "no file on stdin: config:file %s %s < FILE", app.Name, p)
			}
			f, err := s.store.PutConfigFile(ctx, app.ID, p, content, UserFromContext(ctx).Name)
			if err != nil {
				return err
			}
			auditFromContext(ctx).Detail = fmt.Sprintf("%s (%d bytes, sha256 %s)", p, f.Size, shortSum(f.SHA256))
			fmt.Fprintf(cmd.OutOrStdout(), "Stored %s on %s (%d bytes, sha256 %s)\n", p, app.Name, f.Size, shortSum(f.SHA256))
			if noRestart {
				fmt.Fprintf(cmd.OutOrStdout(), "Not restarted: the app sees the file after its next restart or deploy\n")
				return nil
			}
			return s.redeploy(ctx, app, "config:file", cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&noRestart, "no-restart", false, "only store the file")
	return cmd
}

func (s *Server) configFilesCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "config:files <app>",
		Short: "List an app's config files (never their content)",
		Args:  exactArgs(1, "config:files <app> [--json]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			files, err := s.store.ConfigFiles(ctx, appFromContext(ctx).ID)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), files)
			}
			if len(files) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "No config files")
				return nil
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "PATH\tSIZE\tSHA256\tUPDATED\tBY")
			for _, f := range files {
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\n", f.Path, f.Size, shortSum(f.SHA256), f.UpdatedAt.UTC().Format(time.RFC3339), f.UpdatedBy)
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (s *Server) configFileRemoveCommand() *cobra.Command {
	var noRestart bool
	cmd := &cobra.Command{
		Use:   "config:file:remove <app> <PATH>",
		Short: "Forget a config file and restart the app without it",
		Long: "Forget a config file and restart the app: the file goes from the serving release (and from any\n" +
			"release a rollback runs again); a push brings back the repository's file at PATH, if it has one.",
		Args: exactArgs(2, "config:file:remove <app> <PATH> [--no-restart]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			p := args[1]
			if err := conductor.ValidateConfigFilePath(p); err != nil {
				return err
			}
			if err := s.store.RemoveConfigFile(ctx, app.ID, p); err != nil {
				if conductor.ErrorCode(err) == conductor.ENOTFOUND {
					return conductor.Errorf(conductor.ENOTFOUND, "%s has no config file %s", app.Name, p)
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removed %s from %s\n", p, app.Name)
			if noRestart {
				fmt.Fprintf(cmd.OutOrStdout(), "Not restarted: the file goes at the app's next restart or deploy\n")
				return nil
			}
			return s.redeploy(ctx, app, "config:file:remove", cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&noRestart, "no-restart", false, "only forget the file")
	return cmd
}

func (s *Server) configFileGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "config:file:get <app> <PATH>",
		Short: "Print a config file's content as stored (admin)",
		Args:  exactArgs(2, "config:file:get <app> <PATH> > FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			p := args[1]
			if err := conductor.ValidateConfigFilePath(p); err != nil {
				return err
			}
			content, err := s.store.ConfigFileContent(ctx, app.ID, p)
			if conductor.ErrorCode(err) == conductor.ENOTFOUND {
				return conductor.Errorf(conductor.ENOTFOUND, "%s has no config file %s", app.Name, p)
			} else if err != nil {
				return err
			}
			// As stored, byte for byte, for a redirect to a file: the
			// admin asked for the content itself.
			_, err = cmd.OutOrStdout().Write(content)
			return err
		},
	}
}

// shortSum is the first 12 hex digits of a SHA-256, enough to tell
// versions apart in a listing.
func shortSum(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}
