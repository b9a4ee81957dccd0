// Package applogs reads an app's runtime logs on its host: one file per
// process type, written by circus, merged by time and named web.1,
// worker.1… from the line each process writes when it starts.
package applogs

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/hasadna/conductor/internal/lazyre"
	"github.com/hasadna/conductor/internal/safefs"
	"github.com/hasadna/conductor/process"
)

// Reader reads an app's process logs: one file per process type
// (<type>.log, written by circus), each line "<time> [<pid> <name>] | <text>".
type Reader struct {
	dir, process string
	files        map[string]*processLog // by path
}

// processLog is one process type's log, with the names of its pids learned
// from the line each process writes when it starts (process.StartLinePrefix).
type processLog struct {
	typ, path string
	names     map[string]string // pid → "web.1"
	offset    int64
}

// Open reads the logs in dir, of one process type or ("") all of them.
func Open(dir, process string) *Reader {
	l := &Reader{dir: dir, process: process, files: map[string]*processLog{}}
	l.scan()
	return l
}

// scan picks up log files, including those of process types that started
// after the command did.
func (l *Reader) scan() {
	pattern := "*.log"
	if l.process != "" {
		pattern = l.process + ".log"
	}
	paths, _ := filepath.Glob(filepath.Join(l.dir, pattern))
	for _, p := range paths {
		if _, ok := l.files[p]; !ok {
			l.files[p] = &processLog{typ: strings.TrimSuffix(filepath.Base(p), ".log"), path: p, names: map[string]string{}}
		}
	}
}

// circusLineRE matches "<time> [<pid>] | text" and, as circus.LineFileStream
// writes it once the process has said its name, "<time> [<pid> web.1] | text".
var circusLineRE = lazyre.New(`^(\S+) \[(\d+)(?: ([a-z][a-z0-9_]*\.\d+))?\] \| (.*)$`)

var startLineRE = lazyre.New(`^` + regexp.QuoteMeta(process.StartLinePrefix) + `([a-z][a-z0-9_]*\.\d+) \(pid (\d+)\)`)

// format turns a circus line into "<time> web.1: <text>" and returns its
// time for ordering.
func (f *processLog) format(line string) (ts, out string) {
	m := circusLineRE.FindStringSubmatch(line)
	if m == nil {
		return "", f.typ + ": " + line
	}
	ts, pid, name, text := m[1], m[2], m[3], m[4]
	if name != "" {
		return ts, ts + " " + name + ": " + text
	}
	// A file written by circus's FileStream (before Conductor named lines):
	// the pid's name comes from its start line, if the file still has it.
	if s := startLineRE.FindStringSubmatch(text); s != nil && s[2] == pid {
		f.names[pid] = s[1]
	}
	name = f.names[pid]
	if name == "" {
		name = f.typ
	}
	return ts, ts + " " + name + ": " + text
}

// openLog opens a log file the way root may in an app's project dir: the
// logs dir and the file are reached without symlinks, and the file must be
// a regular file written by circusd, which runs as this process's user; a
// link or file the app planted (when the dir was once its own) is skipped.
func openLog(path string) (*os.File, error) {
	dir := filepath.Dir(path)
	f, err := safefs.Open(filepath.Dir(dir), filepath.Base(dir)+"/"+filepath.Base(path))
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Geteuid() {
			err = fmt.Errorf("%s is not circusd's", path)
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func readLog(path string) ([]byte, error) {
	f, err := openLog(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// Recent returns the last n lines of all the files, interleaved by time.
func (l *Reader) Recent(n int) []string {
	type line struct{ ts, text string }
	var all []line
	for _, f := range l.sorted() {
		data, err := readLog(f.path)
		if err != nil {
			continue
		}
		// Only complete lines: a line being written has no newline yet, and
		// Follow reads it from offset once it has.
		if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
			data = data[:i+1]
		} else {
			data = nil
		}
		f.offset = int64(len(data))
		// A file that rotated a moment ago holds few lines: the rest of the
		// last n are in the rotated ones (<type>.log.1, .2…, newest first).
		raws := strings.Split(string(data), "\n")
		for k := 1; len(raws) <= n; k++ {
			older, err := readLog(fmt.Sprintf("%s.%d", f.path, k))
			if err != nil {
				break
			}
			raws = append(strings.Split(string(older), "\n"), raws...)
		}
		var mine []line
		for _, raw := range raws {
			if raw == "" {
				continue
			}
			ts, text := f.format(raw) // every line, so pid names are learned
			mine = append(mine, line{ts, text})
		}
		if len(mine) > n {
			mine = mine[len(mine)-n:]
		}
		all = append(all, mine...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].ts < all[j].ts })
	if len(all) > n {
		all = all[len(all)-n:]
	}
	out := make([]string, len(all))
	for i, l := range all {
		out[i] = l.text
	}
	return out
}

func (l *Reader) sorted() []*processLog {
	files := make([]*processLog, 0, len(l.files))
	for _, f := range l.files {
		files = append(files, f)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].path < files[j].path })
	return files
}

// Follow writes lines appended to the files until ctx ends (the client
// disconnects) or a write fails. A file that shrank was rotated: it is read
// again from its start.
func (l *Reader) Follow(ctx context.Context, out io.Writer, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l.scan()
		for _, f := range l.sorted() {
			if err := f.copyNew(out); err != nil {
				return
			}
		}
	}
}

// copyNew writes the complete lines added since the last read.
func (f *processLog) copyNew(out io.Writer) error {
	fh, err := openLog(f.path)
	if err != nil {
		return nil
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil || fi.Size() == f.offset {
		return nil
	}
	if fi.Size() < f.offset {
		f.offset = 0
	}
	if _, err := fh.Seek(f.offset, io.SeekStart); err != nil {
		return nil
	}
	r := bufio.NewReader(fh)
	for {
		raw, err := r.ReadString('\n')
		if err != nil {
			return nil // a partial line waits for its newline
		}
		f.offset += int64(len(raw))
		_, text := f.format(strings.TrimRight(raw, "\n"))
		if _, err := fmt.Fprintln(out, text); err != nil {
			return err
		}
	}
}

// Send sends the last n lines of the logs in dir, in batches, then (with
// follow) each new line until ctx ends or send fails. It is what a host's
// worker runs for a `logs` request.
func Send(ctx context.Context, dir, process string, n int, follow bool, send func([]string) error) error {
	r := Open(dir, process)
	lines := r.Recent(n)
	for len(lines) > 0 {
		k := min(len(lines), 500)
		if err := send(lines[:k]); err != nil {
			return err
		}
		lines = lines[k:]
	}
	if follow {
		r.Follow(ctx, lineSender(send), 250*time.Millisecond)
	}
	return nil
}

// lineSender turns Follow's one-line writes into sends.
type lineSender func([]string) error

func (s lineSender) Write(p []byte) (int, error) {
	if err := s([]string{strings.TrimSuffix(string(p), "\n")}); err != nil {
		return 0, err
	}
	return len(p), nil
}
