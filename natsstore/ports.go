package natsstore

import (
	"context"
	"encoding/json"

	"github.com/hasadna/conductor"
)

// portMover is the store's MoveAppPort (the SQLite store has it).
type portMover interface {
	MoveAppPort(ctx context.Context, appID int64, from int, candidates []int) (int, error)
}

// MoveAppPort moves an app's port to a free one among candidates (a
// worker found another program listening on it).
func (c *Client) MoveAppPort(ctx context.Context, appID int64, from int, candidates []int) (int, error) {
	var p int
	err := c.do(ctx, "MoveAppPort", &p, appID, from, candidates)
	return p, err
}

func moveAppPort(s Backend) handler {
	return func(ctx context.Context, args []json.RawMessage) (any, error) {
		m, ok := s.(portMover)
		if !ok {
			return nil, conductor.Errorf(conductor.EINVALID, "this conductor's state cannot move ports")
		}
		appID, err := arg[int64](args, 0)
		if err != nil {
			return nil, err
		}
		from, err := arg[int](args, 1)
		if err != nil {
			return nil, err
		}
		candidates, err := arg[[]int](args, 2)
		if err != nil {
			return nil, err
		}
		return m.MoveAppPort(ctx, appID, from, candidates)
	}
}
