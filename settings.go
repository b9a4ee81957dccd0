package conductor

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// App settings (apps:set, apps:get) tune how Conductor treats one app, as
// opposed to config vars, which are the app's own environment. Each key is
// validated here; an app that sets none gets the defaults.

// AppSetting describes one key apps:set accepts.
type AppSetting struct {
	Key     string
	Default string
	Help    string
	// Min and Max bound a duration setting.
	Min, Max time.Duration
}

// AppSettings are the keys apps:set accepts, in the order apps:get lists
// them. The timeouts bound each deploy step that runs the app's code, so
// one app cannot hold a build slot of its host for ever.
var AppSettings = []AppSetting{
	{Key: "timeout.virtualenv", Default: "20m", Min: time.Minute, Max: 6 * time.Hour,
		Help: "creating the virtualenv and installing dependencies (uv or pip)"},
	{Key: "timeout.build", Default: "20m", Min: time.Minute, Max: 6 * time.Hour,
		Help: "each other build step: bin/pre_compile, npm, collectstatic, bin/post_compile"},
	{Key: "timeout.release", Default: "10m", Min: 5 * time.Second, Max: 6 * time.Hour,
		Help: "the release phase (the Procfile's release command, or migrate)"},
	{Key: "timeout.check", Default: "60s", Min: 5 * time.Second, Max: 30 * time.Minute,
		Help: "the health check of a new release"},
}

// FindAppSetting returns the setting named key.
func FindAppSetting(key string) (AppSetting, error) {
	for _, s := range AppSettings {
		if s.Key == key {
			return s, nil
		}
	}
	keys := make([]string, len(AppSettings))
	for i, s := range AppSettings {
		keys[i] = s.Key
	}
	return AppSetting{}, Errorf(EINVALID, "unknown setting %q (known: %s)", truncate(key), strings.Join(keys, ", "))
}

// Normalize validates a value of the setting and returns it as stored
// ("30m" stays "30m"; "1h30m" becomes "1h30m0s").
func (s AppSetting) Normalize(value string) (string, error) {
	d, err := time.ParseDuration(value)
	if err != nil || strings.HasPrefix(value, "+") {
		return "", Errorf(EINVALID, "%s: %q is not a duration (e.g. 90s, 30m, 1h)", s.Key, truncate(value))
	}
	if d < s.Min || d > s.Max {
		return "", Errorf(EINVALID, "%s: %s is out of range (%s to %s)", s.Key, d, s.Min, s.Max)
	}
	return d.String(), nil
}

// ParseAppSettings reads apps:set's KEY=VALUE arguments: the values to
// store, and the keys to reset (KEY= or KEY=default). Nothing is changed
// when any argument is wrong.
func ParseAppSettings(args []string) (set map[string]string, unset []string, err error) {
	set = map[string]string{}
	seen := map[string]bool{}
	for _, a := range args {
		key, value, ok := strings.Cut(a, "=")
		if !ok {
			return nil, nil, Errorf(EINVALID, "%q is not KEY=VALUE (e.g. timeout.release=30m; KEY= resets a key)", truncate(a))
		}
		s, err := FindAppSetting(key)
		if err != nil {
			return nil, nil, err
		}
		if seen[key] {
			return nil, nil, Errorf(EINVALID, "%s is given twice", key)
		}
		seen[key] = true
		if value == "" || value == "default" {
			unset = append(unset, key)
			continue
		}
		if set[key], err = s.Normalize(value); err != nil {
			return nil, nil, err
		}
	}
	slices.Sort(unset)
	return set, unset, nil
}

// Timeouts are the per-step time bounds of an app's deploys.
type Timeouts struct {
	Virtualenv, Build, Release, Check time.Duration
}

// TimeoutsOf gives an app's timeouts from its stored settings; a value
// that no longer parses (it was validated when stored) gives the default.
func TimeoutsOf(settings map[string]string) Timeouts {
	get := func(key string) time.Duration {
		s, err := FindAppSetting(key)
		if err != nil {
			panic(fmt.Sprintf("TimeoutsOf: no setting %s", key))
		}
		if v, ok := settings[key]; ok {
			if n, err := s.Normalize(v); err == nil {
				d, _ := time.ParseDuration(n)
				return d
			}
		}
		d, _ := time.ParseDuration(s.Default)
		return d
	}
	return Timeouts{
		Virtualenv: get("timeout.virtualenv"),
		Build:      get("timeout.build"),
		Release:    get("timeout.release"),
		Check:      get("timeout.check"),
	}
}
