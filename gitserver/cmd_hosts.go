package gitserver

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// hostsCommand lists the live builder hosts, with the apps placed on each.
func (s *Server) hostsCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "hosts",
		Short: "List the live builder hosts: capacity, version, apps (admin)",
		Args:  exactArgs(0, "hosts [--json]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			hosts, err := s.queue.Hosts(ctx)
			if err != nil {
				return err
			}
			apps, err := s.store.ListApps(ctx)
			if err != nil {
				return err
			}
			count := map[string]int{}
			for _, a := range apps {
				count[a.Host]++
			}
			type row struct {
				Name     string    `json:"name"`
				Capacity int       `json:"capacity"`
				Version  string    `json:"version"`
				Address  string    `json:"address"`
				Apps     int       `json:"apps"`
				Started  time.Time `json:"started"`
				Seen     time.Time `json:"seen"`
			}
			rows := []row{}
			for _, h := range hosts {
				rows = append(rows, row{h.Name, h.Capacity, h.Version, h.Address, count[h.Name], h.StartedAt, h.SeenAt})
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), rows)
			}
			if len(rows) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "No live hosts: start a worker (conductor worker --host NAME …)")
				return nil
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "HOST\tJOBS\tAPPS\tVERSION\tADDRESS\tUP SINCE")
			for _, r := range rows {
				fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%s\t%s\n", r.Name, r.Capacity, r.Apps, r.Version, r.Address, r.Started.Format(time.RFC3339))
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
