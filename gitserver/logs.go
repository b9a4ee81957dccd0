package gitserver

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/process"
)

func (s *Server) logsCommand() *cobra.Command {
	var (
		lines   int
		follow  bool
		process string
		build   bool
	)
	cmd := &cobra.Command{
		Use:   "logs <app> [--build [<deploy>]]",
		Short: "Show the output of an app's processes, or the build log of a deploy",
		Args: func(cmd *cobra.Command, args []string) error {
			return rangeArgs(args, 1, 2, "logs <app> [-n N] [-f] [--process TYPE] | logs <app> --build [<deploy>]")
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			if build {
				deploy := ""
				if len(args) == 2 {
					deploy = args[1]
				}
				return s.buildLog(ctx, app, deploy, cmd.OutOrStdout())
			}
			if len(args) == 2 {
				return conductor.Errorf(conductor.EINVALID, "a deploy id goes with --build")
			}
			if process != "" {
				if err := conductor.ValidateProcessType(process); err != nil {
					return err
				}
			}
			if lines < 0 || lines > 100000 {
				return conductor.Errorf(conductor.EINVALID, "-n must be between 0 and 100000")
			}
			logs := newAppLogs(s.cfg.Layout.LogDir(app.Name), process)
			out := cmd.OutOrStdout()
			for _, l := range logs.recent(lines) {
				if _, err := fmt.Fprintln(out, l); err != nil {
					return nil // the client went away
				}
			}
			if follow {
				logs.follow(ctx, out, 250*time.Millisecond)
			}
			return nil
		},
	}
	cmd.Flags().IntVarP(&lines, "num", "n", 100, "number of lines")
	cmd.Flags().BoolVarP(&follow, "tail", "f", false, "keep printing new lines until you disconnect")
	cmd.Flags().StringVarP(&process, "process", "p", "", "only this process type")
	cmd.Flags().BoolVar(&build, "build", false, "show the build log of the newest (or the given) deploy")
	return cmd
}

// buildLog replays a deploy's build output from the job log stream: the
// whole log of a finished deploy, and live to its end for a running one.
func (s *Server) buildLog(ctx context.Context, app *conductor.App, id string, out io.Writer) error {
	deploys, err := s.store.ListDeploys(ctx, app.ID)
	if err != nil {
		return err
	}
	var d *conductor.Deploy
	for _, x := range deploys {
		if id == "" || x.ID == id {
			d = x
			break
		}
	}
	if d == nil && id == "" {
		return conductor.Errorf(conductor.ENOTFOUND, "%s has no deploys yet", app.Name)
	} else if d == nil {
		return conductor.Errorf(conductor.ENOTFOUND, "%s has no deploy %q", app.Name, id)
	}
	finished := d.Status == conductor.DeploySucceeded || d.Status == conductor.DeployFailed
	if finished {
		ok, err := s.queue.HasLog(ctx, d.ID)
		if err != nil {
			return err
		}
		if !ok {
			return conductor.Errorf(conductor.ENOTFOUND, "the build log of %s is no longer kept", d.ID)
		}
	}
	fmt.Fprintf(out, "Build log of deploy %s (%s, %s by %s)\n", d.ID, d.Ref, d.Status, d.Pusher)
	res, err := s.queue.Follow(ctx, d.ID, func(line string) { fmt.Fprintln(out, line) })
	if err != nil {
		return err
	}
	if res.OK {
		fmt.Fprintln(out, "-----> Deploy succeeded")
	} else {
		fmt.Fprintf(out, " !     Deploy failed: %s\n", res.Message)
	}
	return nil
}

// appLogs reads an app's process logs: one file per process type
// (<type>.log, written by circus), each line "<time> [<pid>] | <text>".
type appLogs struct {
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

func newAppLogs(dir, process string) *appLogs {
	l := &appLogs{dir: dir, process: process, files: map[string]*processLog{}}
	l.scan()
	return l
}

// scan picks up log files, including those of process types that started
// after the command did.
func (l *appLogs) scan() {
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

var circusLineRE = regexp.MustCompile(`^(\S+) \[(\d+)\] \| (.*)$`)

var startLineRE = regexp.MustCompile(`^` + regexp.QuoteMeta(process.StartLinePrefix) + `([a-z][a-z0-9_]*\.\d+) \(pid (\d+)\)`)

// format turns a circus line into "<time> web.1: <text>" and returns its
// time for ordering.
func (f *processLog) format(line string) (ts, out string) {
	m := circusLineRE.FindStringSubmatch(line)
	if m == nil {
		return "", f.typ + ": " + line
	}
	ts, pid, text := m[1], m[2], m[3]
	if s := startLineRE.FindStringSubmatch(text); s != nil && s[2] == pid {
		f.names[pid] = s[1]
	}
	name := f.names[pid]
	if name == "" {
		name = f.typ
	}
	return ts, ts + " " + name + ": " + text
}

// recent returns the last n lines of all the files, interleaved by time.
func (l *appLogs) recent(n int) []string {
	type line struct{ ts, text string }
	var all []line
	for _, f := range l.sorted() {
		data, err := os.ReadFile(f.path)
		if err != nil {
			continue
		}
		f.offset = int64(len(data))
		var mine []line
		for _, raw := range strings.Split(string(data), "\n") {
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

func (l *appLogs) sorted() []*processLog {
	files := make([]*processLog, 0, len(l.files))
	for _, f := range l.files {
		files = append(files, f)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].path < files[j].path })
	return files
}

// follow prints lines appended to the files until ctx ends (the client
// disconnects) or a write fails. A file that shrank was rotated: it is read
// again from its start.
func (l *appLogs) follow(ctx context.Context, out io.Writer, every time.Duration) {
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
	fi, err := os.Stat(f.path)
	if err != nil || fi.Size() == f.offset {
		return nil
	}
	if fi.Size() < f.offset {
		f.offset = 0
	}
	fh, err := os.Open(f.path)
	if err != nil {
		return nil
	}
	defer fh.Close()
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
