// Package process describes an app's processes: the Procfile that declares
// them, and the spec that circus starts each one from.
package process

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/internal/safefs"
)

// Procfile maps process types to their command lines.
type Procfile map[string]string

// ReadProcfile parses the Procfile at path. A missing Procfile is not an
// error: it returns nil, and the caller applies the Django default.
func ReadProcfile(path string) (Procfile, error) {
	return ReadProcfileAt(filepath.Dir(path), filepath.Base(path))
}

// ReadProcfileAt parses the Procfile at base/rel, reached from base
// without following a symlink (the release is the app user's and the
// Procfile came from a repository: a link is refused, never followed).
func ReadProcfileAt(base, rel string) (Procfile, error) {
	src, err := safefs.ReadFile(base, rel, 1<<20)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if errors.Is(err, safefs.ErrSymlink) || errors.Is(err, safefs.ErrNotRegular) {
		return nil, conductor.Errorf(conductor.EINVALID, "%s %v: it must be a regular file", rel, errors.Unwrap(err))
	} else if err != nil {
		return nil, err
	}
	return ParseProcfile(src)
}

// ParseProcfile parses "type: command" lines; blank lines and # comments
// are skipped.
func ParseProcfile(src []byte) (Procfile, error) {
	pf := Procfile{}
	sc := bufio.NewScanner(bytes.NewReader(src))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, cmd, ok := strings.Cut(line, ":")
		name, cmd = strings.TrimSpace(name), strings.TrimSpace(cmd)
		if !ok || cmd == "" {
			return nil, conductor.Errorf(conductor.EINVALID, "Procfile line %d: want \"type: command\"", n)
		}
		if err := conductor.ValidateProcessType(name); err != nil {
			return nil, conductor.Errorf(conductor.EINVALID, "Procfile line %d: %s", n, conductor.ErrorMessage(err))
		}
		if _, dup := pf[name]; dup {
			return nil, conductor.Errorf(conductor.EINVALID, "Procfile line %d: process type %q declared twice", n, name)
		}
		if err := ValidateCommand(cmd); err != nil {
			return nil, conductor.Errorf(conductor.EINVALID, "Procfile line %d: %v", n, err)
		}
		pf[name] = cmd
	}
	if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
		// The user's mistake, not ours: say so plainly (found by FuzzParseProcfile).
		return nil, conductor.Errorf(conductor.EINVALID, "Procfile: a line is longer than %d KiB", bufio.MaxScanTokenSize>>10)
	} else if err != nil {
		return nil, fmt.Errorf("read Procfile: %w", err)
	}
	return pf, nil
}

// Types returns the long-running process types in a stable order, web
// first. The release type runs once per deploy and is not among them.
func (pf Procfile) Types() []string {
	var types []string
	for t := range pf {
		if t != "release" {
			types = append(types, t)
		}
	}
	sort.Slice(types, func(i, j int) bool {
		if (types[i] == "web") != (types[j] == "web") {
			return types[i] == "web"
		}
		return types[i] < types[j]
	})
	return types
}
