package gitserver

import (
	"fmt"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// hostsCommand lists the live builder hosts, with the apps placed on each.
func (s *Server) hostsCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "hosts",
		Short: "List the builder hosts: live ones with capacity and version, and down ones that have apps (admin)",
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
				Name     string     `json:"name"`
				State    string     `json:"state"` // "up", or "down": apps are placed on it but no worker answers
				Capacity int        `json:"capacity,omitempty"`
				Version  string     `json:"version,omitempty"`
				Address  string     `json:"address,omitempty"`
				HTTPS    string     `json:"https,omitempty"` // where it serves custom domains over TLS
				Apps     int        `json:"apps"`
				Started  *time.Time `json:"started,omitempty"`
				Seen     *time.Time `json:"seen,omitempty"`
			}
			rows := []row{}
			live := map[string]bool{}
			for _, h := range hosts {
				live[h.Name] = true
				rows = append(rows, row{h.Name, "up", h.Capacity, h.Version, h.Address, h.HTTPS, count[h.Name], &h.StartedAt, &h.SeenAt})
			}
			for name, n := range count {
				if !live[name] {
					rows = append(rows, row{Name: name, State: "down", Apps: n})
				}
			}
			sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
			if asJSON {
				return printJSON(cmd.OutOrStdout(), rows)
			}
			if len(rows) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "No live hosts: start a worker (conductor worker --host NAME …)")
				return nil
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "HOST\tSTATE\tJOBS\tAPPS\tVERSION\tADDRESS\tHTTPS\tUP SINCE")
			for _, r := range rows {
				if r.State == "down" {
					fmt.Fprintf(w, "%s\tdown\t-\t%d\t-\t-\t-\t-\n", r.Name, r.Apps)
					continue
				}
				https := r.HTTPS
				if https == "" {
					https = "-"
				}
				fmt.Fprintf(w, "%s\tup\t%d\t%d\t%s\t%s\t%s\t%s\n", r.Name, r.Capacity, r.Apps, r.Version, r.Address, https, r.Started.Format(time.RFC3339))
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
