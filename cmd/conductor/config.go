package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The configuration file of system mode. Its keys are the long names of
// `conductor serve`'s flags, so there is one list of settings, documented
// once (docs/production.md, "Configuration"), with one meaning on the
// command line and in the file. A table prefixes its keys: `bin` in
// [nginx] is the flag --nginx-bin.

// defaultConfigPath is where `serve --system` and `install` read it.
const defaultConfigPath = "/etc/conductor/conductor.toml"

// systemDefaults are the values --system starts from, before the config
// file and then the command line override them.
var systemDefaults = map[string]string{
	"data":               "/var/lib/conductor",
	"srv":                "/srv",
	"ssh-addr":           "0.0.0.0:2222",
	"http-addr":          "0.0.0.0:80",
	"nginx-sites-dir":    "/etc/nginx/sites-enabled",
	"nginx-conf":         "/etc/nginx/nginx.conf",
	"nginx-pid-file":     "/run/nginx.pid",
	"circus-include-dir": "/etc/conductor/circus.d",
}

// notInFile are flags that choose the file or the mode: the file cannot
// set them.
var notInFile = map[string]bool{"system": true, "config": true, "help": true}

// applySystemConfig sets every flag not given on the command line from the
// config file at path, or else from systemDefaults. A missing file is
// fine unless the user named it (--config): the defaults then apply.
func applySystemConfig(flags *pflag.FlagSet, path string) error {
	given := map[string]bool{}
	flags.Visit(func(f *pflag.Flag) { given[f.Name] = true })
	for name, v := range systemDefaults {
		if given[name] || flags.Lookup(name) == nil {
			continue
		}
		if err := flags.Set(name, v); err != nil {
			return fmt.Errorf("system default %s=%s: %w", name, v, err)
		}
	}
	values, err := readConfig(path)
	if errors.Is(err, fs.ErrNotExist) && !given["config"] {
		return nil
	}
	if err != nil {
		return err
	}
	known := configKeys()
	for _, name := range sortedKeys(values) {
		if notInFile[name] || !known[name] {
			return fmt.Errorf("%s: unknown key %q (the keys are listed in docs/production.md)", path, name)
		}
		f := flags.Lookup(name)
		if given[name] || f == nil {
			continue // the command line wins; a key of the other command is not ours
		}
		if strings.HasPrefix(values[name], listMark) {
			if f.Value.Type() != "stringSlice" {
				return fmt.Errorf("%s: %s takes one value, not a list", path, name)
			}
			values[name] = strings.TrimPrefix(values[name], listMark)
		}
		if err := flags.Set(name, values[name]); err != nil {
			return fmt.Errorf("%s: %s: %w", path, name, err)
		}
	}
	return nil
}

// configKeys are the keys the file may hold: the flags of serve and of
// worker, so one file can serve a host that runs both.
func configKeys() map[string]bool {
	keys := map[string]bool{}
	for _, cmd := range []*cobra.Command{serveCommand(), workerCommand()} {
		cmd.Flags().VisitAll(func(f *pflag.Flag) {
			if !notInFile[f.Name] {
				keys[f.Name] = true
			}
		})
	}
	return keys
}

// readConfig reads a TOML config file into flag name → value.
func readConfig(path string) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := toml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	values := map[string]string{}
	var add func(prefix string, m map[string]any) error
	add = func(prefix string, m map[string]any) error {
		for k, v := range m {
			name := prefix + strings.ReplaceAll(k, "_", "-")
			if table, ok := v.(map[string]any); ok {
				if prefix != "" {
					return fmt.Errorf("%s: [%s] is nested too deep: one level of tables only", path, name)
				}
				if err := add(name+"-", table); err != nil {
					return err
				}
				continue
			}
			s, err := flagValue(v)
			if err != nil {
				return fmt.Errorf("%s: %s: %w", path, name, err)
			}
			if _, dup := values[name]; dup {
				return fmt.Errorf("%s: %s is set twice (once in a table)", path, name)
			}
			values[name] = s
		}
		return nil
	}
	if err := add("", doc); err != nil {
		return nil, err
	}
	return values, nil
}

// listMark starts the value of a TOML list, which only list flags take. A
// NUL byte: no TOML string reaching flagValue can hold one unnoticed (and
// none is a valid value of any flag).
const listMark = "\x00list:"

// flagValue renders a TOML value the way the flag parses it.
func flagValue(v any) (string, error) {
	switch v := v.(type) {
	case string:
		if strings.Contains(v, "\x00") {
			return "", errors.New("a NUL byte in a value")
		}
		return v, nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case bool:
		return strconv.FormatBool(v), nil
	case []any: // a list flag (nats-tls-name): comma-separated, as on the command line
		items := make([]string, len(v))
		for i, item := range v {
			s, ok := item.(string)
			if !ok || strings.ContainsAny(s, ",\"\x00") {
				return "", fmt.Errorf("want a list of strings without commas or quotes, not %v", v)
			}
			items[i] = s
		}
		return listMark + strings.Join(items, ","), nil
	default:
		return "", fmt.Errorf("want a string, an integer, a boolean or a list of strings, not %T", v)
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
