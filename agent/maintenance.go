package agent

import (
	"context"

	"github.com/hasadna/conductor"
)

// MaintenanceSites renders an app's maintenance mode, as the state records
// it, into its host's nginx site (builder.Builder).
type MaintenanceSites interface {
	ApplyMaintenance(ctx context.Context, app *conductor.App) error
}

// maintenance rewrites the app's site for its recorded maintenance mode and
// answers once nginx serves it.
func (h *Host) maintenance(ctx context.Context, data []byte) (any, error) {
	req, err := decode[appRequest](data)
	if err != nil {
		return nil, err
	}
	if req.App == nil || conductor.ValidateAppName(req.App.Name) != nil {
		return nil, conductor.Errorf(conductor.EINVALID, "maintenance: bad app")
	}
	if h.Maintenance == nil {
		return nil, conductor.Errorf(conductor.EUNAVAILABLE, "host %s does not serve sites", h.Name)
	}
	return nil, h.Maintenance.ApplyMaintenance(ctx, req.App)
}

// ApplyMaintenance has the app's host serve its maintenance mode as the
// state records it (maintenance:on/off set it first), and returns once the
// host's nginx does.
func (c *Client) ApplyMaintenance(ctx context.Context, app *conductor.App) error {
	return c.call(ctx, app.Host, "maintenance", appRequest{App: app}, nil)
}
