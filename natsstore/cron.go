package natsstore

import (
	"context"

	"github.com/hasadna/conductor"
)

// The scheduler of a worker's host reads its apps' cron entries and
// records their runs through these (conductor.CronStore).

func (c *Client) CronEntries(ctx context.Context, appID int64) ([]*conductor.CronEntry, error) {
	var r []*conductor.CronEntry
	return r, c.do(ctx, "CronEntries", &r, appID)
}

func (c *Client) AddCronRun(ctx context.Context, r *conductor.CronRun) error {
	return c.do(ctx, "AddCronRun", r, r)
}

func (c *Client) FinishCronRun(ctx context.Context, r *conductor.CronRun) error {
	return c.do(ctx, "FinishCronRun", r, r)
}

func (c *Client) FailUnfinishedCronRuns(ctx context.Context, host, msg string) (int, error) {
	var n int
	return n, c.do(ctx, "FailUnfinishedCronRuns", &n, host, msg)
}
