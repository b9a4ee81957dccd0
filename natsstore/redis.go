package natsstore

import (
	"context"

	"github.com/hasadna/conductor"
)

// AppRedis is the app's Redis (redis:create), for REDIS_URL.
func (c *Client) AppRedis(ctx context.Context, appID int64) (*conductor.Redis, error) {
	var r conductor.Redis
	if err := c.do(ctx, "AppRedis", &r, appID); err != nil {
		return nil, err
	}
	return &r, nil
}
