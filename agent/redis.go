package agent

import (
	"context"

	"github.com/hasadna/conductor"
)

// RedisServers runs apps' Redis servers on this host (builder.Builder).
type RedisServers interface {
	StartRedis(ctx context.Context, app *conductor.App, r *conductor.Redis) error
	StopRedis(ctx context.Context, app *conductor.App, purge bool) error
}

type redisRequest struct {
	App   *conductor.App   `json:"app"`
	Redis *conductor.Redis `json:"redis,omitempty"`
	Purge bool             `json:"purge,omitempty"`
}

func (h *Host) redisRequest(data []byte) (redisRequest, error) {
	req, err := decode[redisRequest](data)
	if err != nil {
		return req, err
	}
	if req.App == nil || conductor.ValidateAppName(req.App.Name) != nil {
		return req, conductor.Errorf(conductor.EINVALID, "redis: bad app")
	}
	if h.Redis == nil {
		return req, conductor.Errorf(conductor.EUNAVAILABLE, "host %s runs no Redis servers", h.Name)
	}
	return req, nil
}

// redisStart (re)starts an app's Redis from the state's record.
func (h *Host) redisStart(ctx context.Context, data []byte) (any, error) {
	req, err := h.redisRequest(data)
	if err != nil {
		return nil, err
	}
	if req.Redis == nil {
		return nil, conductor.Errorf(conductor.EINVALID, "redis: no server given")
	}
	return nil, h.Redis.StartRedis(ctx, req.App, req.Redis)
}

// redisStop stops an app's Redis and, with purge, deletes its data.
func (h *Host) redisStop(ctx context.Context, data []byte) (any, error) {
	req, err := h.redisRequest(data)
	if err != nil {
		return nil, err
	}
	return nil, h.Redis.StopRedis(ctx, req.App, req.Purge)
}

// StartRedis has the app's host (re)start its Redis server.
func (c *Client) StartRedis(ctx context.Context, app *conductor.App, r *conductor.Redis) error {
	return c.call(ctx, app.Host, "redis-start", redisRequest{App: app, Redis: r}, nil)
}

// StopRedis has the app's host stop its Redis server; purge deletes its data.
func (c *Client) StopRedis(ctx context.Context, app *conductor.App, purge bool) error {
	return c.call(ctx, app.Host, "redis-stop", redisRequest{App: app, Purge: purge}, nil)
}
