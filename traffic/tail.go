package traffic

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// Tailer follows nginx's traffic log into Stats: through rotation (a
// rename and a new file, nginx.RotateLogs) and truncation.
//
// A start reads the last backfillBytes of the file into the buckets only,
// so the charts survive a restart of Conductor, and then hands Observe only
// the lines written after the start: counters that start again from zero
// with the process never count a request twice.
type Tailer struct {
	Path  string
	Stats *Stats
	// Observe is told each request logged after the start (nil: none).
	Observe func(Request)
	// Poll is how often the file is read (0: 250 ms).
	Poll time.Duration

	polls atomic.Int64 // reads of the file so far (tests wait on it)
}

// backfillBytes bounds what a start reads of the log's past.
const backfillBytes = 64 << 20

// maxLine is the longest line read; a longer one is skipped as bad.
const maxLine = 64 << 10

// follower is one open file being read.
type follower struct {
	f       *os.File
	ino     uint64
	off     int64
	partial []byte // a line not ended yet
	skip    bool   // drop until the next newline (an overlong or cut line)
}

// Run follows the log until ctx ends. A missing file is waited for.
func (t *Tailer) Run(ctx context.Context) error {
	poll := t.Poll
	if poll <= 0 {
		poll = 250 * time.Millisecond
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	var cur, prev *follower
	var prevSince time.Time
	defer func() {
		for _, f := range []*follower{cur, prev} {
			if f != nil {
				f.f.Close()
			}
		}
	}()
	first := true
	for {
		if cur == nil {
			f, err := open(t.Path)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				slog.Warn("traffic: open the log", "path", t.Path, "err", err)
			}
			if f != nil {
				cur = f
				if first {
					t.backfill(cur)
				}
			}
			first = false
		}
		if prev != nil {
			// The rotated file: nginx writes to it until it has reopened
			// its logs, so it is read a little longer.
			if n := t.read(prev, true); n == 0 && time.Since(prevSince) > 2*time.Second {
				prev.f.Close()
				prev = nil
			}
		}
		if cur != nil {
			t.read(cur, true)
			if fi, err := os.Stat(t.Path); err != nil || inode(fi) != cur.ino {
				// Rotated: the new file (if there) is read from its start.
				if prev != nil {
					prev.f.Close()
				}
				prev, prevSince, cur = cur, time.Now(), nil
				continue
			}
		}
		t.polls.Add(1)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func open(path string) (*follower, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		if err == nil {
			err = errors.New("not a regular file")
		}
		return nil, err
	}
	return &follower{f: f, ino: inode(fi)}, nil
}

func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

// backfill reads the end of the file as it is at the start into the
// buckets only.
func (t *Tailer) backfill(fl *follower) {
	fi, err := fl.f.Stat()
	if err != nil {
		return
	}
	if fi.Size() > backfillBytes {
		fl.off = fi.Size() - backfillBytes
		fl.skip = true // the first line is cut
	}
	t.read(fl, false)
}

// read takes the complete lines from fl's offset on; observe says whether
// they are new requests. It returns the bytes read.
func (t *Tailer) read(fl *follower, observe bool) int {
	if fi, err := fl.f.Stat(); err == nil && fi.Size() < fl.off {
		// Truncated: start again from the top.
		fl.off, fl.partial, fl.skip = 0, nil, false
	}
	total := 0
	buf := make([]byte, 256<<10)
	for {
		n, err := fl.f.ReadAt(buf, fl.off)
		if n > 0 {
			fl.off += int64(n)
			total += n
			t.lines(fl, buf[:n], observe)
		}
		if err != nil || n < len(buf) {
			if err != nil && !errors.Is(err, io.EOF) {
				slog.Warn("traffic: read the log", "path", t.Path, "err", err)
			}
			return total
		}
	}
}

// lines splits data at newlines, keeping a partial last line for later.
func (t *Tailer) lines(fl *follower, data []byte, observe bool) {
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			if !fl.skip {
				fl.partial = append(fl.partial, data...)
				if len(fl.partial) > maxLine {
					fl.partial, fl.skip = nil, true
					t.Stats.Bad()
				}
			}
			return
		}
		chunk := data[:i]
		data = data[i+1:]
		if fl.skip {
			fl.skip = false
			fl.partial = nil
			continue
		}
		ln := chunk
		if len(fl.partial) > 0 {
			ln = append(fl.partial, chunk...)
			fl.partial = nil
		}
		if len(bytes.TrimSpace(ln)) == 0 {
			continue
		}
		r, err := Parse(ln)
		if err != nil {
			t.Stats.Bad()
			continue
		}
		t.Stats.Add(r)
		if observe && t.Observe != nil {
			t.Observe(r)
		}
	}
}
