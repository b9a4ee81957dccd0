package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// parseServe parses serve's flags from args and applies the config file
// at path, as `serve --system` does.
func parseServe(t *testing.T, path string, args ...string) func(name string) string {
	t.Helper()
	cmd := serveCommand()
	if err := cmd.ParseFlags(append([]string{"--system", "--config", path}, args...)); err != nil {
		t.Fatal(err)
	}
	if err := applySystemConfig(cmd.Flags(), path); err != nil {
		t.Fatalf("apply %s: %v", path, err)
	}
	return func(name string) string {
		t.Helper()
		f := cmd.Flags().Lookup(name)
		if f == nil {
			t.Fatalf("no flag %s", name)
		}
		return f.Value.String()
	}
}

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "conductor.toml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigPrecedence(t *testing.T) {
	path := writeConfig(t, `
domain = "apps.example.org"
keep_releases = 9
log-level = "debug"
nats-tls-name = ["conductor.example.org", "10.0.0.5"]

[ssh]
addr = "127.0.0.1:2022"
max-sessions = 7
idle-timeout = "3m"

[nginx]
sites-dir = "/tmp/sites"
`)
	get := parseServe(t, path, "--log-level", "warn", "--jobs", "2")
	for name, want := range map[string]string{
		"domain":           "apps.example.org",                 // file
		"keep-releases":    "9",                                // file, underscore spelling
		"ssh-addr":         "127.0.0.1:2022",                   // table
		"ssh-max-sessions": "7",                                // table, integer
		"ssh-idle-timeout": "3m0s",                             // duration as a string
		"nginx-sites-dir":  "/tmp/sites",                       // table
		"log-level":        "warn",                             // command line beats file
		"jobs":             "2",                                // command line beats default
		"http-addr":        "0.0.0.0:80",                       // system default beats flag default
		"data":             "/var/lib/conductor",               // system default
		"nginx-pid-file":   "/run/nginx.pid",                   // system default
		"python":           "/usr/bin/python3",                 // flag default
		"nats-tls-name":    "[conductor.example.org,10.0.0.5]", // a list
	} {
		if got := get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for name, content := range map[string]string{
		"unknown key": `no-such-setting = 1`,
		"unknown in a table": `[nginx]
colour = "blue"`,
		"mode key":     `system = true`,
		"config key":   `config = "/etc/other.toml"`,
		"nested table": "[nginx.extra]\nbin = \"x\"",
		"array":        `domain = ["a", "b"]`,
		"list of ints": `nats-tls-name = [1, 2]`,
		"comma inside": `nats-tls-name = ["a,b"]`,
		"float":        `jobs = 1.5`,
		"bad value":    `jobs = "many"`,
		"twice":        "ssh-addr = \"a:1\"\n[ssh]\naddr = \"b:2\"",
		"not toml":     `domain = `,
	} {
		t.Run(name, func(t *testing.T) {
			path := writeConfig(t, content)
			cmd := serveCommand()
			if err := cmd.ParseFlags([]string{"--system", "--config", path}); err != nil {
				t.Fatal(err)
			}
			if err := applySystemConfig(cmd.Flags(), path); err == nil {
				t.Errorf("%q was accepted", content)
			}
		})
	}
}

func TestConfigMissingFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.toml")
	// Named on the command line: an error.
	cmd := serveCommand()
	if err := cmd.ParseFlags([]string{"--system", "--config", missing}); err != nil {
		t.Fatal(err)
	}
	if err := applySystemConfig(cmd.Flags(), missing); err == nil {
		t.Error("a missing --config file was accepted")
	}
	// The default path, absent: the defaults apply.
	cmd = serveCommand()
	if err := cmd.ParseFlags([]string{"--system"}); err != nil {
		t.Fatal(err)
	}
	if err := applySystemConfig(cmd.Flags(), missing); err != nil {
		t.Fatal(err)
	}
	if got := cmd.Flags().Lookup("srv").Value.String(); got != "/srv" {
		t.Errorf("srv = %q without a file, want /srv", got)
	}
}

// A worker host's file may hold serve's keys too, and the other way round.
func TestConfigSharedBetweenServeAndWorker(t *testing.T) {
	path := writeConfig(t, "ssh-addr = \"127.0.0.1:2022\"\nnats-token-file = \"/etc/conductor/nats.token\"\n")
	cmd := workerCommand()
	if err := cmd.ParseFlags([]string{"--system", "--config", path}); err != nil {
		t.Fatal(err)
	}
	if err := applySystemConfig(cmd.Flags(), path); err != nil {
		t.Fatal(err)
	}
	if got := cmd.Flags().Lookup("nats-token-file").Value.String(); got != "/etc/conductor/nats.token" {
		t.Errorf("worker nats-token-file = %q", got)
	}
	if got := cmd.Flags().Lookup("data").Value.String(); got != "/var/lib/conductor" {
		t.Errorf("worker data = %q, want the system default", got)
	}
}

// The file install writes says what the defaults are: it must agree with
// them, and parse.
func TestDefaultConfigMatchesDefaults(t *testing.T) {
	conf, err := renderDefaultConfig("apps.example.org")
	if err != nil {
		t.Fatal(err)
	}
	get := parseServe(t, writeConfig(t, string(conf)))
	for name, want := range systemDefaults {
		if got := get(name); got != want {
			t.Errorf("default config sets %s = %q, but the system default is %q", name, got, want)
		}
	}
	// Every other key it sets is the flag's own default.
	values, err := readConfig(writeConfig(t, string(conf)))
	if err != nil {
		t.Fatal(err)
	}
	flags := serveCommand().Flags()
	for name := range values {
		if _, ok := systemDefaults[name]; ok || name == "domain" {
			continue
		}
		if want := flags.Lookup(name).DefValue; get(name) != want {
			t.Errorf("default config sets %s = %q, but the flag's default is %q", name, get(name), want)
		}
	}
	if got := get("domain"); got != "apps.example.org" {
		t.Errorf("domain = %q", got)
	}
	if _, err := renderDefaultConfig(`a"b`); err == nil {
		t.Error("a domain that is no host name was rendered")
	}
}

// Every key is documented: docs/production.md's Configuration section names
// each flag of serve and worker.
func TestConfigKeysDocumented(t *testing.T) {
	raw, err := os.ReadFile("../../docs/production.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	start := strings.Index(doc, "\n## Configuration\n")
	if start < 0 {
		t.Fatal("docs/production.md has no Configuration section")
	}
	section := doc[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	for key := range configKeys() {
		if !regexp.MustCompile("`" + regexp.QuoteMeta(key) + "`").MatchString(section) {
			t.Errorf("key %q (a flag of serve or worker) is not documented in docs/production.md, section Configuration", key)
		}
	}
}
