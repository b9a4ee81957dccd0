package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hasadna/conductor/builder"
	"github.com/hasadna/conductor/cgroup"
	"github.com/hasadna/conductor/circus"
	"github.com/hasadna/conductor/nginx"
)

// stopAllCommand stops what a self-contained `serve` or `worker` leaves
// running on purpose when it stops or dies: its nginx and its circusd, and
// so every app. The next serve or worker on the data dir starts them
// afresh.
func stopAllCommand() *cobra.Command {
	var data, circusBin, nginxBin string
	cmd := &cobra.Command{
		Use:   "stop-all --data DIR",
		Short: "Stop the apps, circusd and nginx that a self-contained serve or worker on DIR left running",
		Long: "conductor serve and conductor worker (without --system) leave their circusd, nginx and apps\n" +
			"running when they stop, crash or are upgraded; the next start adopts them. stop-all stops them\n" +
			"(each only if it is the one Conductor started for DIR). In system mode circusd and nginx are\n" +
			"services: stop those with systemctl.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if data == "" {
				return errors.New("--data is required")
			}
			abs, err := filepath.Abs(data)
			if err != nil {
				return err
			}
			if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
				return fmt.Errorf("--data %s: not a directory", data)
			}
			out := cmd.OutOrStdout()
			c := &circus.Circus{Bin: circusBin, Dir: filepath.Join(abs, "circus")}
			n := &nginx.Nginx{Bin: nginxBin, Dir: filepath.Join(abs, "nginx")}
			// The apps' cgroups are below circusd's: find them while it runs.
			apps := cgroup.Disabled("no circusd")
			if pid, err := c.Pid(); err == nil && c.Ours(pid) {
				apps = cgroup.Open(pid)
			}
			if pid := n.Shutdown(); pid != 0 {
				fmt.Fprintf(out, "stopped nginx (pid %d)\n", pid)
			} else {
				fmt.Fprintln(out, "no nginx of this data dir runs")
			}
			if pid := c.Shutdown(); pid != 0 {
				fmt.Fprintf(out, "stopped circusd (pid %d) and its apps\n", pid)
			} else {
				fmt.Fprintln(out, "no circusd of this data dir runs")
			}
			// What the apps left in their cgroups goes with them.
			if id, err := os.ReadFile(filepath.Join(abs, "instance-id")); err == nil && apps.Enabled() {
				b := &builder.Builder{AppCgroups: apps, Cgroups: apps, Instance: strings.TrimSpace(string(id))}
				b.DestroyCgroups(cmd.Context())
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&data, "data", "", "the data directory of the serve or worker")
	f.StringVar(&circusBin, "circus-bin", "/opt/conductor/circus/bin", "directory with circusd (as given to serve or worker)")
	f.StringVar(&nginxBin, "nginx-bin", "/usr/sbin/nginx", "nginx binary (as given to serve or worker)")
	return cmd
}
