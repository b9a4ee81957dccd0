package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/template"

	"github.com/spf13/cobra"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/deploy"
	"github.com/hasadna/conductor/deploy/systemd"
	"github.com/hasadna/conductor/nginx"
)

//go:embed default-config.toml
var defaultConfig string

var defaultConfigTmpl = template.Must(template.New("conductor.toml").Parse(defaultConfig))

// unitDir is where install writes the units (the admin's unit directory).
const unitDir = "/etc/systemd/system"

// unitMarker is in every unit Conductor ships: a unit file without it is
// someone else's and is left alone.
const unitMarker = "Installed by `conductor install`"

// logrotatePath is where install puts the rotation of Conductor's own logs.
const logrotatePath = "/etc/logrotate.d/conductor"

// manifestName is the list, in the data dir, of the files and directories
// install created, so uninstall removes those and nothing else.
const manifestName = "install-manifest.json"

// installPaths are the fixed paths of an install, read from the shipped
// units so they cannot disagree with what systemd runs.
type installPaths struct {
	bin       string // the conductor binary the units run
	circusd   string // circusd, as its unit runs it
	circusIni string // circusd's configuration
	logDir    string // the units' log files
}

func shippedPaths() (installPaths, error) {
	var p installPaths
	cu, err := systemd.Find(systemd.Conductor)
	if err != nil {
		return p, err
	}
	argv, err := systemd.ExecStart(cu.Text)
	if err != nil {
		return p, err
	}
	p.bin = argv[0]
	p.logDir = filepath.Dir(systemd.AppendOutput(cu.Text))
	ccu, err := systemd.Find(systemd.Circusd)
	if err != nil {
		return p, err
	}
	argv, err = systemd.ExecStart(ccu.Text)
	if err != nil {
		return p, err
	}
	p.circusd, p.circusIni = argv[0], argv[len(argv)-1]
	return p, nil
}

type installOptions struct {
	config, adminKey, adminName, domain string
	worker                              string // install a worker of another host's conductor, under this name
}

func installCommand() *cobra.Command {
	var o installOptions
	cmd := &cobra.Command{
		Use:   "install [--admin-key FILE.pub]",
		Short: "Install Conductor as a system service, or upgrade an installed one in place (as root)",
		Long: `Install Conductor on this host in system mode: directories, the binary in
/usr/local/bin, the config file (if absent), the state (conductor init, the
first time: --admin-key is then required), circusd's configuration and the
systemd units, then enable and start them when systemd runs.

Run again with a new binary to upgrade: the binary and units are replaced and
only conductor.service restarts (it migrates the state as it starts); the
circusd service, and so the apps, keep running.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runInstall(cmd.Context(), o, cmd)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.config, "config", defaultConfigPath, "configuration file (written with defaults if absent)")
	f.StringVar(&o.adminKey, "admin-key", "", "public key file of the first admin (first install only)")
	f.StringVar(&o.adminName, "admin-name", "admin", "name of the first admin")
	f.StringVar(&o.domain, "domain", "", "domain written into a new config file (default: this host's name)")
	f.StringVar(&o.worker, "worker", "", "install this host as the worker NAME of another host's conductor: no state of its own, conductor-worker@NAME instead of conductor.service")
	return cmd
}

// installer records what an install creates.
type installer struct {
	out     io.Writer
	created []string // paths that did not exist before
}

// mkdir creates dir and any missing parents, recording each one made.
func (in *installer) mkdir(dir string, mode os.FileMode) error {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		d := missing[i]
		m := os.FileMode(0o755)
		if d == dir {
			m = mode
		}
		if err := os.Mkdir(d, m); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
		if err := os.Chmod(d, m); err != nil { // past the umask
			return err
		}
		in.created = append(in.created, d)
	}
	return nil
}

// writeFile writes data to path atomically unless it already holds it, and
// tells whether the file changed.
func (in *installer) writeFile(path string, data []byte, mode os.FileMode) (bool, error) {
	old, err := os.ReadFile(path)
	switch {
	case err == nil && bytes.Equal(old, data):
		return false, os.Chmod(path, mode)
	case errors.Is(err, fs.ErrNotExist):
		in.created = append(in.created, path)
	case err != nil:
		return false, err
	}
	tmp := path + ".conductor-tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return false, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return false, fmt.Errorf("install %s: %w", path, err)
	}
	return true, nil
}

func runInstall(ctx context.Context, o installOptions, cmd *cobra.Command) error {
	if os.Geteuid() != 0 {
		return errors.New("conductor install must run as root (it writes /etc, /usr/local/bin and systemd units)")
	}
	out := cmd.OutOrStdout()
	paths, err := shippedPaths()
	if err != nil {
		return err
	}
	in := &installer{out: out}
	// The unit that runs Conductor here, and restarts on an upgrade.
	service, err := systemd.Find(systemd.Conductor)
	if err != nil {
		return err
	}
	if o.worker != "" {
		if err := conductor.ValidateHostName(o.worker); err != nil || o.worker == "local" {
			return fmt.Errorf("--worker %q: name this host (not \"local\", the conductor's own): %v", o.worker, err)
		}
		if service, err = systemd.Instance(systemd.Worker, o.worker); err != nil {
			return err
		}
	}

	// The config file: the admin's once written, never overwritten.
	if err := in.mkdir(filepath.Dir(o.config), 0o755); err != nil {
		return err
	}
	if _, err := os.Stat(o.config); errors.Is(err, fs.ErrNotExist) {
		conf, err := renderDefaultConfig(o.domain)
		if err != nil {
			return err
		}
		if _, err := in.writeFile(o.config, conf, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(out, "Wrote %s (edit it to change the domain, addresses and paths)\n", o.config)
	} else if err != nil {
		return err
	}
	s, err := loadSystemSettings(o.config, true)
	if err != nil {
		return err
	}
	if err := s.checkHost(paths); err != nil {
		return err
	}

	for _, d := range []struct {
		path string
		mode os.FileMode
	}{
		{s.data, 0o711}, // app users traverse it to run bin/conductor
		{filepath.Join(s.data, "circus"), 0o700},
		{paths.logDir, 0o750},
		{s.circusInclude, 0o700},
		{filepath.Join(s.srv, "projects"), 0o755},
		{filepath.Join(s.srv, "environments"), 0o755},
	} {
		if err := in.mkdir(d.path, d.mode); err != nil {
			return err
		}
	}

	if err := in.installBinary(paths.bin); err != nil {
		return err
	}

	// State: made once; an existing one is migrated by the new binary when
	// conductor.service restarts.
	upgrade := true
	if o.worker != "" {
		// A worker keeps its state on the conductor's host.
		upgrade = fileExists(filepath.Join(unitDir, systemd.Circusd))
	} else if _, err := os.Stat(filepath.Join(s.data, "conductor.db")); errors.Is(err, fs.ErrNotExist) {
		upgrade = false
		if o.adminKey == "" {
			return errors.New("first install: --admin-key FILE.pub is required (the first admin's public key)")
		}
		if err := runInit(ctx, s.data, o.adminKey, o.adminName, cmd); err != nil {
			return err
		}
	} else if err != nil {
		return err
	} else if o.adminKey != "" {
		fmt.Fprintln(out, "State exists: --admin-key is ignored (add keys with `keys:add`)")
	}

	ini, err := s.circus().Config()
	if err != nil {
		return err
	}
	existed := fileExists(paths.circusIni)
	changed, err := in.writeFile(paths.circusIni, ini, 0o600)
	if err != nil {
		return err
	}
	if changed && existed {
		fmt.Fprintf(out, "Updated %s: circusd reads it when conductor-circusd restarts, which restarts the apps; Conductor does not restart it\n", paths.circusIni)
	}

	if err := in.mkdir(unitDir, 0o755); err != nil {
		return err
	}
	for _, u := range systemd.Units() {
		path := filepath.Join(unitDir, u.Name)
		if raw, err := os.ReadFile(path); err == nil && !strings.Contains(string(raw), unitMarker) {
			return fmt.Errorf("%s exists and was not installed by Conductor: move it away first", path)
		}
		if _, err := in.writeFile(path, []byte(u.Text), 0o644); err != nil {
			return err
		}
	}
	// Conductor's own logs grow without end otherwise (the units append).
	if raw, err := os.ReadFile(logrotatePath); err == nil && !strings.Contains(string(raw), unitMarker) {
		return fmt.Errorf("%s exists and was not installed by Conductor: move it away first", logrotatePath)
	}
	if err := in.mkdir(filepath.Dir(logrotatePath), 0o755); err != nil {
		return err
	}
	if _, err := in.writeFile(logrotatePath, []byte(deploy.Logrotate), 0o644); err != nil {
		return err
	}
	if err := in.saveManifest(s.data); err != nil {
		return err
	}

	if systemdRunning() {
		steps := [][]string{{"daemon-reload"}, {"enable", "--now", systemd.Circusd, service.Name}}
		if upgrade {
			// Only Conductor: circusd, and so every app, keeps running.
			steps = append(steps, []string{"restart", service.Name})
		}
		for _, args := range steps {
			if out, err := exec.CommandContext(ctx, "systemctl", args...).CombinedOutput(); err != nil {
				return fmt.Errorf("systemctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
			}
		}
		fmt.Fprintf(out, "Started %s and %s\n", systemd.Circusd, service.Name)
	} else {
		printManualStart(out, paths, upgrade, service)
	}

	what := "Installed"
	if upgrade {
		what = "Upgraded"
	}
	if o.worker != "" {
		fmt.Fprintf(out, "\n%s Conductor %s as worker %s (%s). It needs nats-url, nats-token-file and nats-ca-file in %s (docs/production.md, Moving to several hosts).\n",
			what, version, o.worker, paths.bin, o.config)
		return nil
	}
	fmt.Fprintf(out, "\n%s Conductor %s (%s; state in %s).\n", what, version, paths.bin, s.data)
	fmt.Fprintf(out, "Add a remote to an app's repository and push:\n  git remote add conductor ssh://git@%s/<app>\n  git push conductor main\nApps are served at http://<app>.%s/\n",
		sshHostPort(s.sshAddr), s.domain)
	return nil
}

// checkHost finds what the units need: nginx with its sites dir, circusd.
func (s systemSettings) checkHost(paths installPaths) error {
	if fi, err := os.Stat(s.nginxSitesDir); err != nil || !fi.IsDir() {
		return fmt.Errorf("nginx's %s is missing: install nginx first (apt-get install nginx-light)", s.nginxSitesDir)
	}
	if _, err := exec.LookPath(s.nginxBin); err != nil {
		return fmt.Errorf("nginx (%s): %w", s.nginxBin, err)
	}
	if _, err := os.Stat(nginx.DefaultJSModule); err != nil {
		return fmt.Errorf("nginx's njs module is missing: apt-get install libnginx-mod-http-js (app sites read their route through it): %w", err)
	}
	if _, err := os.Stat(paths.circusd); err != nil {
		return fmt.Errorf("circusd (%s, run by %s) is missing: install it with make setup: %w", paths.circusd, systemd.Circusd, err)
	}
	return nil
}

// installBinary copies the running binary to bin, unless it is bin.
func (in *installer) installBinary(bin string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if self, err = filepath.EvalSymlinks(self); err != nil {
		return err
	}
	if self == bin {
		return nil
	}
	raw, err := os.ReadFile(self)
	if err != nil {
		return fmt.Errorf("read this binary: %w", err)
	}
	if err := in.mkdir(filepath.Dir(bin), 0o755); err != nil {
		return err
	}
	// A running conductor keeps its old inode: the file is replaced by a
	// rename, never rewritten in place.
	_, err = in.writeFile(bin, raw, 0o755)
	return err
}

func renderDefaultConfig(domain string) ([]byte, error) {
	if domain == "" {
		domain = "localhost"
		if h, err := os.Hostname(); err == nil && nginx.ValidateHost(h) == nil && strings.Contains(h, ".") {
			domain = h
		}
	}
	if err := nginx.ValidateHost(domain); err != nil {
		return nil, fmt.Errorf("--domain: %w", err)
	}
	var buf bytes.Buffer
	if err := defaultConfigTmpl.Execute(&buf, map[string]string{"Domain": domain}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// manifest is what install created, in the order it did.
type manifest struct {
	Created []string `json:"created"`
}

func readManifest(data string) (manifest, error) {
	var m manifest
	raw, err := os.ReadFile(filepath.Join(data, manifestName))
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, fmt.Errorf("read %s: %w", manifestName, err)
	}
	return m, nil
}

func writeManifest(data string, m manifest) error {
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(data, manifestName)
	if err := os.WriteFile(path+".tmp", append(raw, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

// saveManifest adds what this run created to what earlier runs did.
func (in *installer) saveManifest(data string) error {
	m, err := readManifest(data)
	if err != nil {
		return err
	}
	for _, p := range in.created {
		if !slices.Contains(m.Created, p) {
			m.Created = append(m.Created, p)
		}
	}
	return writeManifest(data, m)
}

// systemdRunning tells whether systemd is the service manager, as
// sd_booted(3) does.
func systemdRunning() bool {
	fi, err := os.Stat("/run/systemd/system")
	return err == nil && fi.IsDir()
}

func printManualStart(out io.Writer, paths installPaths, upgrade bool, service systemd.Unit) {
	fmt.Fprintln(out, "\nsystemd is not running on this machine, so nothing was enabled or started.")
	if upgrade {
		fmt.Fprintln(out, "Restart Conductor by hand (only it: leave circusd running, and the apps with it):")
		for _, pid := range runningConductors(paths.bin) {
			fmt.Fprintf(out, "  kill -TERM %d   # the running conductor; wait for it to exit\n", pid)
		}
	} else {
		fmt.Fprintln(out, "Start it by hand, as the units would, circusd first:")
	}
	circusd, err := systemd.Find(systemd.Circusd)
	if err != nil {
		return
	}
	units := []systemd.Unit{circusd, service}
	if upgrade {
		units = units[1:]
	}
	for _, u := range units {
		argv, err := systemd.ExecStart(u.Text)
		if err != nil {
			continue
		}
		fmt.Fprintf(out, "  %s >>%s 2>&1 &\n", strings.Join(argv, " "), systemd.AppendOutput(u.Text))
	}
}

// runningConductors lists the pids of conductor serve/worker processes run
// from bin (or from a copy a server made of it), found through /proc.
func runningConductors(bin string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if len(argv) < 2 || argv[0] != bin || (argv[1] != "serve" && argv[1] != "worker") {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// sshHostPort is how a client reaches the SSH address: a wildcard listen
// address is replaced by this host's name.
func sshHostPort(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return net.JoinHostPort(host, port)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
