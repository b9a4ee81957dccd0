package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/hasadna/conductor/circus"
	"github.com/hasadna/conductor/nginx"
)

// systemOptions are the settings of system mode (`serve --system`, `worker
// --system`): apps under /srv, the host's nginx, and a circusd run by its
// own service, configured by a file (config.go).
type systemOptions struct {
	enabled          bool
	config           string
	srv              string
	nginxSitesDir    string
	nginxConf        string
	nginxPidFile     string
	circusIncludeDir string
}

func (s *systemOptions) addFlags(f *pflag.FlagSet) {
	f.BoolVar(&s.enabled, "system", false, "production layout: /var/lib/conductor, apps in /srv, the host's nginx, the circusd service; settings from --config")
	f.StringVar(&s.config, "config", defaultConfigPath, "with --system: configuration file (TOML; its keys are these flags' names)")
	f.StringVar(&s.srv, "srv", "", "with --system: root of the apps' files, projects/ and environments/ (default /srv)")
	f.StringVar(&s.nginxSitesDir, "nginx-sites-dir", "", "with --system: the host nginx's directory of included sites (default /etc/nginx/sites-enabled)")
	f.StringVar(&s.nginxConf, "nginx-conf", "", "with --system: the host nginx's main configuration, for nginx -t (default /etc/nginx/nginx.conf)")
	f.StringVar(&s.nginxPidFile, "nginx-pid-file", "", "with --system: pid file of the host nginx's master, signalled to reload (default /run/nginx.pid)")
	f.StringVar(&s.circusIncludeDir, "circus-include-dir", "", "with --system: include dir of the circusd service, where app watchers go (default /etc/conductor/circus.d)")
}

// apply sets the flags not given on the command line from the config file
// and system mode's defaults, when --system is set.
func (s *systemOptions) apply(flags *pflag.FlagSet) error {
	if !s.enabled {
		return nil
	}
	return applySystemConfig(flags, s.config)
}

// useSystemCircus points c at the circusd service `conductor install` set
// up: Conductor talks to it and never starts or stops it.
func (s *systemOptions) useSystemCircus(c *circus.Circus) {
	c.System = true
	c.WatchersDir = s.circusIncludeDir
}

// useSystemNginx points n at the host's nginx.
func (s *systemOptions) useSystemNginx(n *nginx.Nginx) {
	n.System = true
	n.SitesDir = s.nginxSitesDir
	n.Conf = s.nginxConf
	n.PidFile = s.nginxPidFile
}

// systemSettings is system mode's configuration as `install` and
// `uninstall` need it, read the way `serve --system` reads it.
type systemSettings struct {
	data, srv, sshAddr, domain string
	circusBin, circusInclude   string
	nginxBin, nginxSitesDir    string
	nginxConf, nginxPidFile    string
}

// loadSystemSettings reads the config file at path (defaults when it is
// missing, unless explicit) through serve's own flags.
func loadSystemSettings(path string, explicit bool) (systemSettings, error) {
	cmd := serveCommand()
	args := []string{"--system"}
	if explicit {
		args = append(args, "--config", path)
	}
	if err := cmd.ParseFlags(args); err != nil {
		return systemSettings{}, err
	}
	f := cmd.Flags()
	if err := applySystemConfig(f, path); err != nil {
		return systemSettings{}, err
	}
	var s systemSettings
	for name, dst := range map[string]*string{
		"data": &s.data, "srv": &s.srv, "ssh-addr": &s.sshAddr, "domain": &s.domain,
		"circus-bin": &s.circusBin, "circus-include-dir": &s.circusInclude,
		"nginx-bin": &s.nginxBin, "nginx-sites-dir": &s.nginxSitesDir,
		"nginx-conf": &s.nginxConf, "nginx-pid-file": &s.nginxPidFile,
	} {
		v, err := f.GetString(name)
		if err != nil {
			return systemSettings{}, fmt.Errorf("read setting %s: %w", name, err)
		}
		*dst = v
	}
	return s, nil
}

// circus is the circusd service's configuration as Conductor sees it.
func (s systemSettings) circus() *circus.Circus {
	c := &circus.Circus{Bin: s.circusBin, Dir: s.data + "/circus", Owner: "root"}
	(&systemOptions{circusIncludeDir: s.circusInclude}).useSystemCircus(c)
	return c
}

// nginx is the host's nginx as Conductor sees it.
func (s systemSettings) nginx() *nginx.Nginx {
	n := &nginx.Nginx{Bin: s.nginxBin, Dir: filepath.Join(s.data, "nginx")}
	(&systemOptions{nginxSitesDir: s.nginxSitesDir, nginxConf: s.nginxConf, nginxPidFile: s.nginxPidFile}).useSystemNginx(n)
	return n
}
