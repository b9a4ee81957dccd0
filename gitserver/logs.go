package gitserver

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hasadna/conductor"
)

func (s *Server) logsCommand() *cobra.Command {
	var (
		lines   int
		follow  bool
		process string
	)
	cmd := &cobra.Command{
		Use:   "logs <app>",
		Short: "Show the recent output of an app's processes",
		Args:  exactArgs(1, "logs <app> [-n N] [-f] [--process TYPE]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			if process != "" {
				if err := conductor.ValidateProcessType(process); err != nil {
					return err
				}
			}
			if lines < 0 || lines > 100000 {
				return conductor.Errorf(conductor.EINVALID, "-n must be between 0 and 100000")
			}
			files, err := s.logFiles(app.Name, process)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, l := range recentLines(files, lines) {
				fmt.Fprintln(out, l)
			}
			if follow {
				return followLogs(ctx, files, out)
			}
			return nil
		},
	}
	cmd.Flags().IntVarP(&lines, "num", "n", 100, "number of lines")
	cmd.Flags().BoolVarP(&follow, "tail", "f", false, "keep printing new lines")
	cmd.Flags().StringVarP(&process, "process", "p", "", "only this process type")
	return cmd
}

// logFile is one process type's log.
type logFile struct {
	typ, path string
}

// logFiles lists an app's process logs (<type>.log in its log dir).
func (s *Server) logFiles(app, process string) ([]logFile, error) {
	pattern := "*.log"
	if process != "" {
		pattern = process + ".log"
	}
	paths, err := filepath.Glob(filepath.Join(s.cfg.Layout.LogDir(app), pattern))
	if err != nil {
		return nil, err
	}
	var files []logFile
	for _, p := range paths {
		files = append(files, logFile{typ: strings.TrimSuffix(filepath.Base(p), ".log"), path: p})
	}
	return files, nil
}

// recentLines returns the last n lines over all files, each prefixed with
// its process type like Heroku's "app[web]:", ordered by the timestamp circus
// put at the start of each line.
func recentLines(files []logFile, n int) []string {
	type line struct{ ts, text string }
	var all []line
	for _, f := range files {
		data, err := os.ReadFile(f.path)
		if err != nil {
			continue
		}
		ls := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(ls) > n {
			ls = ls[len(ls)-n:]
		}
		for _, l := range ls {
			if l == "" {
				continue
			}
			ts, _, _ := strings.Cut(l, " ")
			all = append(all, line{ts, formatLine(f.typ, l)})
		}
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

func formatLine(typ, l string) string {
	ts, rest, ok := strings.Cut(l, " ")
	if !ok {
		return "[" + typ + "] " + l
	}
	return ts + " [" + typ + "] " + rest
}

// followLogs prints lines appended to the files until ctx ends (the client
// disconnects). Rotation is noticed when a file shrinks.
func followLogs(ctx context.Context, files []logFile, out io.Writer) error {
	offsets := map[string]int64{}
	for _, f := range files {
		if fi, err := os.Stat(f.path); err == nil {
			offsets[f.path] = fi.Size()
		}
	}
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for _, f := range files {
			fi, err := os.Stat(f.path)
			if err != nil {
				continue
			}
			off := offsets[f.path]
			if fi.Size() < off {
				off = 0
			}
			if fi.Size() == off {
				continue
			}
			fh, err := os.Open(f.path)
			if err != nil {
				continue
			}
			_, _ = fh.Seek(off, io.SeekStart)
			r := bufio.NewReader(fh)
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					break // a partial line waits for its newline
				}
				off += int64(len(l))
				if _, werr := fmt.Fprintln(out, formatLine(f.typ, strings.TrimRight(l, "\n"))); werr != nil {
					fh.Close()
					return nil
				}
			}
			fh.Close()
			offsets[f.path] = off
		}
	}
}
