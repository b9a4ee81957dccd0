package circus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/go-zeromq/zmq4"
)

// Circus's control protocol: a JSON request {"id", "command", "properties"}
// on a DEALER socket connected to circusd's ROUTER endpoint; the reply
// carries the same id. Talking it directly costs well under a millisecond,
// where each circusctl run starts a Python interpreter (~0.15 s) — that was
// most of Conductor's overhead on a code-only deploy.

// errnoConflict is circusd's "arbiter is already running <command>": it
// takes one changing command at a time.
const errnoConflict = 5

// circusError is an error reply from circusd.
type circusError struct {
	Command string
	Errno   int
	Reason  string
}

func (e *circusError) Error() string {
	return fmt.Sprintf("circus %s: %s (errno %d)", e.Command, e.Reason, e.Errno)
}

// call sends one command and returns the reply, retrying while circusd is
// busy with another command. Calls are serialized: one socket, one
// request in flight.
func (c *Circus) call(ctx context.Context, command string, props map[string]any) (map[string]any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if props == nil {
		props = map[string]any{}
	}
	for attempt := 0; ; attempt++ {
		reply, err := c.roundTrip(ctx, command, props)
		var ce *circusError
		if err == nil || !asCircusError(err, &ce) || ce.Errno != errnoConflict || attempt >= 240 {
			return reply, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func asCircusError(err error, target **circusError) bool {
	ce, ok := err.(*circusError)
	if ok {
		*target = ce
	}
	return ok
}

func (c *Circus) roundTrip(ctx context.Context, command string, props map[string]any) (map[string]any, error) {
	if c.sock == nil {
		sock := zmq4.NewDealer(context.Background(), zmq4.WithID(zmq4.SocketIdentity(randomID())),
			zmq4.WithDialerTimeout(5*time.Second))
		if err := sock.Dial(c.endpoint()); err != nil {
			sock.Close()
			return nil, fmt.Errorf("connect to circusd: %w", err)
		}
		c.sock = sock
	}
	id := randomID()
	req, err := json.Marshal(map[string]any{"id": id, "command": command, "properties": props})
	if err != nil {
		return nil, err
	}
	// A reply that never comes (circusd restarting) must not hang a deploy:
	// drop the socket and let the next call dial again.
	type result struct {
		reply map[string]any
		err   error
	}
	done := make(chan result, 1)
	sock := c.sock
	go func() {
		if err := sock.Send(zmq4.NewMsg(req)); err != nil {
			done <- result{err: fmt.Errorf("send %s to circusd: %w", command, err)}
			return
		}
		for {
			msg, err := sock.Recv()
			if err != nil {
				done <- result{err: fmt.Errorf("read circusd's answer to %s: %w", command, err)}
				return
			}
			var reply map[string]any
			if err := json.Unmarshal(msg.Frames[len(msg.Frames)-1], &reply); err != nil {
				done <- result{err: fmt.Errorf("circusd's answer to %s: %w", command, err)}
				return
			}
			if reply["id"] == id { // skip late answers to abandoned calls
				done <- result{reply: reply}
				return
			}
		}
	}()
	timeout := time.NewTimer(90 * time.Second)
	defer timeout.Stop()
	select {
	case r := <-done:
		if r.err != nil {
			c.dropSocket()
			return nil, r.err
		}
		if r.reply["status"] == "error" {
			errno, _ := r.reply["errno"].(float64)
			reason, _ := r.reply["reason"].(string)
			return nil, &circusError{Command: command, Errno: int(errno), Reason: reason}
		}
		return r.reply, nil
	case <-ctx.Done():
		c.dropSocket()
		return nil, ctx.Err()
	case <-timeout.C:
		c.dropSocket()
		return nil, fmt.Errorf("circusd did not answer %s within 90s", command)
	}
}

func (c *Circus) dropSocket() {
	if c.sock != nil {
		c.sock.Close()
		c.sock = nil
	}
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
