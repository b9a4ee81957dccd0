// Package systemd holds the systemd units `conductor install` writes, so the
// files next to this one are exactly what a production host runs, and reads
// the few directives Conductor and its tests need from a unit file.
package systemd

import (
	"bufio"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/google/shlex"
)

//go:embed *.service
var unitFS embed.FS

// Unit names.
const (
	Conductor = "conductor.service"
	Circusd   = "conductor-circusd.service"
	Worker    = "conductor-worker@.service"
)

// Unit is one unit file.
type Unit struct {
	Name string
	Text string
}

// Units returns the shipped units, by name.
func Units() []Unit {
	names, err := fs.Glob(unitFS, "*.service")
	if err != nil {
		panic(err) // the pattern is constant
	}
	sort.Strings(names)
	units := make([]Unit, 0, len(names))
	for _, n := range names {
		raw, err := unitFS.ReadFile(n)
		if err != nil {
			panic(err) // embedded
		}
		units = append(units, Unit{Name: n, Text: string(raw)})
	}
	return units
}

// Find returns the shipped unit called name.
func Find(name string) (Unit, error) {
	for _, u := range Units() {
		if u.Name == name {
			return u, nil
		}
	}
	return Unit{}, fmt.Errorf("no unit %s is shipped", name)
}

// Instance returns the unit of a template (name@.service) for one
// instance: its name and its %i specifiers filled in.
func Instance(template, instance string) (Unit, error) {
	if !strings.HasSuffix(template, "@.service") {
		return Unit{}, fmt.Errorf("%s is not a template unit", template)
	}
	u, err := Find(template)
	if err != nil {
		return Unit{}, err
	}
	return Unit{
		Name: strings.TrimSuffix(template, "@.service") + "@" + instance + ".service",
		Text: strings.ReplaceAll(u.Text, "%i", instance),
	}, nil
}

// Directive returns the value of the last key= line in [section] ("" if
// none): later lines override earlier ones in systemd too.
func Directive(text, section, key string) string {
	var value, cur string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			cur = strings.Trim(line, "[]")
		case cur == section:
			if k, v, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == key {
				value = strings.TrimSpace(v)
			}
		}
	}
	return value
}

// ExecStart returns the argv of a unit's ExecStart= line: the command a
// service manager runs. systemd's prefixes (-, @, +, !) are dropped;
// specifiers and $VARIABLES are refused, since only systemd can expand them.
func ExecStart(text string) ([]string, error) {
	line := Directive(text, "Service", "ExecStart")
	if line == "" {
		return nil, fmt.Errorf("unit has no ExecStart")
	}
	line = strings.TrimLeft(line, "-@+!:")
	if strings.ContainsAny(line, "%$") {
		return nil, fmt.Errorf("ExecStart %q needs systemd to expand it", line)
	}
	argv, err := shlex.Split(line)
	if err != nil {
		return nil, fmt.Errorf("parse ExecStart %q: %w", line, err)
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("unit has an empty ExecStart")
	}
	return argv, nil
}

// AppendOutput returns the file a unit appends its standard output to
// (StandardOutput=append:FILE), or "".
func AppendOutput(text string) string {
	v, ok := strings.CutPrefix(Directive(text, "Service", "StandardOutput"), "append:")
	if !ok {
		return ""
	}
	return v
}
