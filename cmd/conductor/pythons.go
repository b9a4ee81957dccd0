package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/hasadna/conductor/pythons"
)

// The Python interpreters apps' virtualenvs are made with (package
// pythons): python:add, python:list, python:remove. Give them the
// --pythons that serve and worker are given.

func pythonAddCommand() *cobra.Command {
	var dir string
	var force bool
	cmd := &cobra.Command{
		Use:   "python:add [--pythons DIR] [--force] PATH...",
		Short: "Register a CPython installation (its prefix or bin/python3) for apps to use",
		Long: `Register CPython installations for apps' virtualenvs: each PATH is an
installation's prefix (/root/.pyenv/versions/3.12.7) or its interpreter
(.../bin/python3). It is run to learn its version, copied into
DIR/<version> (owned by root, readable by everyone: app users cannot read
/root), made to work from there, and checked as an unprivileged user
before it is listed. A version already registered is left alone unless
--force replaces it. An app gets the newest registered version its
.python-version, runtime.txt or pyproject.toml accepts; an app that names
none gets serve's --python.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			failed := 0
			for _, src := range args {
				in, added, err := pythons.Add(cmd.Context(), dir, src, force)
				switch {
				case err != nil:
					failed++
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: not registered: %v\n", src, err)
				case added:
					fmt.Fprintf(cmd.OutOrStdout(), "Registered Python %s from %s: %s\n", in.Version, src, in.Path)
				default:
					fmt.Fprintf(cmd.OutOrStdout(), "Python %s is already registered (%s); --force replaces it with %s\n", in.Version, in.Path, src)
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d not registered", failed, len(args))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "pythons", pythons.DefaultDir, "directory of the registered interpreters, as given to serve and worker")
	cmd.Flags().BoolVar(&force, "force", false, "replace a registered interpreter of the same version")
	return cmd
}

func pythonListCommand() *cobra.Command {
	var dir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "python:list [--pythons DIR] [--json]",
		Short: "List the Python interpreters registered for apps",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			list, err := pythons.List(dir)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				if list == nil {
					list = []pythons.Interpreter{}
				}
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(list)
			}
			if len(list) == 0 {
				fmt.Fprintf(w, "No Python is registered in %s: apps that name a version cannot deploy. Add one with %s\n", dir, pythons.AddHint)
				return nil
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			for _, in := range list {
				fmt.Fprintf(tw, "%s\t%s\n", in.Version, in.Path)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&dir, "pythons", pythons.DefaultDir, "directory of the registered interpreters, as given to serve and worker")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array of {version, path}")
	return cmd
}

func pythonRemoveCommand() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "python:remove [--pythons DIR] VERSION",
		Short: "Unregister a Python interpreter (apps using it must be redeployed with another first)",
		Long: `Remove DIR/VERSION. Virtualenvs made from it stop working when their
processes next start: redeploy the apps that use it (with another version
in their .python-version) first.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := pythons.Remove(dir, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removed Python %s from %s\n", args[0], dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "pythons", pythons.DefaultDir, "directory of the registered interpreters, as given to serve and worker")
	return cmd
}
