package circus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/go-zeromq/zmq4"
)

// Circus's control protocol: a JSON request {"id", "command", "properties"}
// on a DEALER socket connected to circusd's ROUTER endpoint; the reply
// carries the same id. Talking it directly costs well under a millisecond,
// where each circusctl run starts a Python interpreter (~0.15 s) — that was
// most of Conductor's overhead on a code-only deploy.

// errnoConflict is circusd's "arbiter is already running <command>": it
// takes one changing command at a time, and one still stopping a watcher
// (an rm without waiting) keeps it busy until the processes are gone.
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

// readOnly are the commands circusd answers whatever else it is doing
// (not @synchronized in circus's arbiter): they skip the lane.
var readOnly = map[string]bool{
	"list": true, "status": true, "stats": true, "options": true, "get": true,
	"globaloptions": true, "listsockets": true, "dstats": true, "numwatchers": true, "numprocesses": true,
}

// call sends one command and returns the reply. A command that changes
// circusd's state takes its turn in the lane, so ours never collide with
// each other and none waits a fixed time: it goes as soon as circusd's
// answer to the one before has come (an rm with waiting is answered only
// once the watcher's processes have stopped, when circusd is free again).
func (c *Circus) call(ctx context.Context, command string, props map[string]any) (map[string]any, error) {
	if props == nil {
		props = map[string]any{}
	}
	if readOnly[command] {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.roundTrip(ctx, &c.sock, command, props)
	}
	prev, mine := c.enqueue()
	select {
	case <-prev:
	case <-ctx.Done():
		go func() { <-prev; close(mine) }() // the lane goes on without us
		return nil, ctx.Err()
	}
	defer close(mine)
	return c.change(ctx, command, props)
}

// enqueue takes the next turn in the lane of changing commands: prev is
// closed when the command before has its answer, mine must be closed when
// this one has.
func (c *Circus) enqueue() (prev <-chan struct{}, mine chan struct{}) {
	c.laneMu.Lock()
	defer c.laneMu.Unlock()
	if c.laneTail == nil {
		done := make(chan struct{})
		close(done)
		c.laneTail = done
	}
	prev, mine = c.laneTail, make(chan struct{})
	c.laneTail = mine
	return prev, mine
}

// change runs a changing command at its turn in the lane. circusd can
// still be busy with something of its own (its periodic manage_watchers,
// or a command from circusctl): then the command is sent again, after a
// wait that starts at 2 ms and doubles up to 100 ms — never on our own
// commands, which the lane keeps apart.
func (c *Circus) change(ctx context.Context, command string, props map[string]any) (map[string]any, error) {
	wait := 2 * time.Millisecond
	start := time.Now()
	deadline := start.Add(2 * time.Minute)
	for {
		reply, err := c.roundTrip(ctx, &c.laneSock, command, props)
		var ce *circusError
		if err == nil || !asCircusError(err, &ce) || ce.Errno != errnoConflict || time.Now().After(deadline) {
			return reply, err
		}
		if time.Since(start) > stuckAfter {
			c.dumpStacks(fmt.Sprintf("busy with %q for %s", ce.Reason, time.Since(start).Round(time.Second)))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// background runs a changing command in its turn in the lane without the
// caller waiting for circusd's answer; a failure is logged. It returns
// once the command has its place in the lane, so every command called
// after it goes after it.
func (c *Circus) background(command string, props map[string]any, timeout time.Duration) {
	prev, mine := c.enqueue()
	go func() {
		defer close(mine)
		<-prev
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if _, err := c.change(ctx, command, props); err != nil {
			var ce *circusError
			if asCircusError(err, &ce) && strings.Contains(ce.Reason, "not found") {
				return
			}
			slog.Warn("circus command in the background failed", "command", command, "props", props, "err", err)
		}
	}()
}

// Idle returns once every changing command sent so far has circusd's
// answer (retired watchers have stopped).
func (c *Circus) Idle(ctx context.Context) error {
	c.laneMu.Lock()
	tail := c.laneTail
	c.laneMu.Unlock()
	if tail == nil {
		return nil
	}
	select {
	case <-tail:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func asCircusError(err error, target **circusError) bool {
	ce, ok := err.(*circusError)
	if ok {
		*target = ce
	}
	return ok
}

// roundTrip sends one command on *sockp (dialing it if nil) and waits for
// its answer. The caller owns *sockp until it returns.
func (c *Circus) roundTrip(ctx context.Context, sockp *zmq4.Socket, command string, props map[string]any) (map[string]any, error) {
	if *sockp == nil {
		// zmq4 sleeps its retry interval (250 ms by default) after a
		// failed connect: circusd starting takes ~0.2 s to listen.
		sock := zmq4.NewDealer(context.Background(), zmq4.WithID(zmq4.SocketIdentity(randomID())),
			zmq4.WithDialerTimeout(5*time.Second), zmq4.WithDialerRetry(10*time.Millisecond))
		if err := sock.Dial(c.endpoint()); err != nil {
			sock.Close()
			return nil, fmt.Errorf("connect to circusd: %w", err)
		}
		*sockp = sock
	}
	id := randomID()
	req, err := json.Marshal(map[string]any{"id": id, "command": command, "properties": props})
	if err != nil {
		return nil, err
	}
	// A reply that never comes (circusd restarting) must not hang a deploy:
	// drop the socket and let the next call dial again.
	done := make(chan result, 1)
	sock := *sockp
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
	r, err := c.await(ctx, command, done)
	if err == nil {
		err = r.err
	}
	if err != nil {
		dropSocket(sockp)
		return nil, err
	}
	if r.reply["status"] == "error" {
		errno, _ := r.reply["errno"].(float64)
		reason, _ := r.reply["reason"].(string)
		return nil, &circusError{Command: command, Errno: int(errno), Reason: reason}
	}
	return r.reply, nil
}

// result is circusd's answer to one command, or why there is none.
type result struct {
	reply map[string]any
	err   error
}

// await waits for the answer to command on done, at most 90 s. When it
// takes longer than stuckAfter, circusd is asked for its stacks
// (dumpStacks), so its log says what holds it.
func (c *Circus) await(ctx context.Context, command string, done <-chan result) (result, error) {
	timeout := time.NewTimer(90 * time.Second)
	defer timeout.Stop()
	slow := time.NewTimer(stuckAfter)
	defer slow.Stop()
	for {
		select {
		case r := <-done:
			return r, nil
		case <-slow.C:
			c.dumpStacks(fmt.Sprintf("no answer to %s for %s", command, stuckAfter))
		case <-ctx.Done():
			return result{}, ctx.Err()
		case <-timeout.C:
			return result{}, fmt.Errorf("circusd did not answer %s within 90s", command)
		}
	}
}

func dropSocket(sockp *zmq4.Socket) {
	if *sockp != nil {
		(*sockp).Close()
		*sockp = nil
	}
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
