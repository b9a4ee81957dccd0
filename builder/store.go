package builder

import (
	"context"

	"github.com/hasadna/conductor"
)

// Store is the state a builder reads and records. On the conductor's own
// host it is the SQLite store; a worker on another host reaches the same
// state over NATS (package natsstore).
type Store interface {
	FindApp(ctx context.Context, name string) (*conductor.App, error)
	ListApps(ctx context.Context) ([]*conductor.App, error)
	Config(ctx context.Context, appID int64) (map[string]string, error)
	ReplaceConfig(ctx context.Context, appID int64, vars map[string]string) error
	Domains(ctx context.Context, appID int64) ([]string, error)
	ProcessScale(ctx context.Context, appID int64) (map[string]int, error)

	CreateDeploy(ctx context.Context, d *conductor.Deploy) error
	FinishDeploy(ctx context.Context, id, status, errMsg string) error
	FailUnfinishedDeploys(ctx context.Context, host, msg string) ([]string, error)

	AddRelease(ctx context.Context, r *conductor.Release) error
	CurrentRelease(ctx context.Context, appID int64) (*conductor.Release, error)
	ListReleases(ctx context.Context, appID int64) ([]*conductor.Release, error)
	FindRelease(ctx context.Context, appID int64, ref string) (*conductor.Release, error)
}
