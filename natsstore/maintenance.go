package natsstore

import (
	"context"
	"encoding/json"

	"github.com/hasadna/conductor"
)

// clearMaintenance serves ClearMaintenance (one argument, no result).
func clearMaintenance(s Backend) handler {
	return func(ctx context.Context, args []json.RawMessage) (any, error) {
		id, err := arg[int64](args, 0)
		if err != nil {
			return nil, err
		}
		return nil, s.ClearMaintenance(ctx, id)
	}
}

// Maintenance is the app's maintenance mode; ENOTFOUND when it is off.
func (c *Client) Maintenance(ctx context.Context, appID int64) (*conductor.Maintenance, error) {
	var m conductor.Maintenance
	if err := c.do(ctx, "Maintenance", &m, appID); err != nil {
		return nil, err
	}
	return &m, nil
}

// SetMaintenance turns the app's maintenance mode on (db:restore on a
// worker's host).
func (c *Client) SetMaintenance(ctx context.Context, m *conductor.Maintenance) error {
	return c.do(ctx, "SetMaintenance", nil, m)
}

// ClearMaintenance turns the app's maintenance mode off.
func (c *Client) ClearMaintenance(ctx context.Context, appID int64) error {
	return c.do(ctx, "ClearMaintenance", nil, appID)
}
