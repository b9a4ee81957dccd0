package gitserver

import (
	"context"

	"github.com/hasadna/conductor"
)

// placeApp picks the host a new app runs on, for good: the one asked for,
// which must be up, or else the live host running the fewest apps. With no
// live host at all (no worker has announced itself yet) it is this server's
// own host, whose jobs wait in the queue for it.
func (s *Server) placeApp(ctx context.Context, want string) (string, error) {
	hosts, err := s.queue.Hosts(ctx)
	if err != nil {
		return "", err
	}
	if want != "" {
		if err := conductor.ValidateHostName(want); err != nil {
			return "", err
		}
		for _, h := range hosts {
			if h.Name == want {
				return want, nil
			}
		}
		return "", conductor.Errorf(conductor.EINVALID, "host %s is not up: `hosts` lists the live ones", want)
	}
	if len(hosts) == 0 {
		return s.cfg.Host, nil
	}
	apps, err := s.store.ListApps(ctx)
	if err != nil {
		return "", err
	}
	load := map[string]int{}
	for _, a := range apps {
		load[a.Host]++
	}
	best := hosts[0].Name // hosts are sorted by name: ties go to the first
	for _, h := range hosts[1:] {
		if load[h.Name] < load[best] {
			best = h.Name
		}
	}
	return best, nil
}
