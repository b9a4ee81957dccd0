package main

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/hasadna/conductor/deploy"
	"github.com/hasadna/conductor/doctor"
	"github.com/hasadna/conductor/pythons"
)

// doctorOptions are serve's options that say where things are: doctor
// checks the same binaries, paths, addresses and database servers.
type doctorOptions struct {
	data, sshAddr, httpAddr string
	system, json            bool
	config                  string
	circusBin, nginxBin     string
	python, pythons         string
	databases               databaseOptions
}

func doctorCommand() *cobra.Command {
	var o doctorOptions
	cmd := &cobra.Command{
		Use:   "doctor [--data DIR | --system]",
		Short: "Check this host for what Conductor needs, one line per check with the fix",
		Long: `Check this host for what Conductor needs: nginx, the circus virtualenv and
circusd's control socket, python3 with venv, the registered Python
interpreters, git, the database servers, free disk space, the SSH and HTTP
ports, the state database and the data dir's permissions. Give it the
flags you give conductor serve; with --system it reads serve's
configuration file as serve --system does (flags given here win). Each
line is ok, warn or FAIL; the command exits non-zero when any check FAILs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.doctorConfig(cmd.Flags())
			if err != nil {
				return err
			}
			rs := doctor.Run(cmd.Context(), c)
			if o.json {
				err = doctor.WriteJSON(cmd.OutOrStdout(), rs)
			} else {
				err = doctor.WriteText(cmd.OutOrStdout(), rs)
			}
			if err != nil {
				return err
			}
			if doctor.Failed(rs) {
				return errDoctorFailed
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.data, "data", "", "data directory, as given to conductor serve")
	f.BoolVar(&o.system, "system", false, "check the production layout, configured as conductor serve --system is")
	f.StringVar(&o.config, "config", defaultConfigPath, "with --system: serve's configuration file")
	f.BoolVar(&o.json, "json", false, "print the results as JSON")
	f.StringVar(&o.sshAddr, "ssh-addr", "127.0.0.1:2222", "SSH listen address conductor serve uses")
	f.StringVar(&o.httpAddr, "http-addr", "127.0.0.1:8080", "address of the front nginx")
	f.StringVar(&o.circusBin, "circus-bin", "/opt/conductor/circus/bin", "directory with circusd")
	f.StringVar(&o.nginxBin, "nginx-bin", "/usr/sbin/nginx", "nginx binary")
	f.StringVar(&o.python, "python", "/usr/bin/python3", "Python interpreter for app virtualenvs")
	f.StringVar(&o.pythons, "pythons", pythons.DefaultDir, "directory of the registered Python interpreters, as given to conductor serve")
	o.databases.addFlags(f)
	return cmd
}

// errDoctorFailed makes the exit status non-zero once the lines are out.
var errDoctorFailed = errors.New("some checks failed: see the FAIL lines above")

// doctorConfig turns the flags into the paths doctor checks.
func (o *doctorOptions) doctorConfig(flags *pflag.FlagSet) (doctor.Config, error) {
	if (o.data == "") == !o.system {
		return doctor.Config{}, errors.New("give --data DIR or --system")
	}
	var sys *pflag.FlagSet
	if o.system {
		var err error
		if sys, err = fromSystemConfig(flags, o.config); err != nil {
			return doctor.Config{}, err
		}
	}
	data, err := filepath.Abs(o.data)
	if err != nil {
		return doctor.Config{}, err
	}
	pg, err := readDSN("postgres-dsn", o.databases.postgresDSN, o.databases.postgresDSNFile)
	if err != nil {
		return doctor.Config{}, err
	}
	my, err := readDSN("mysql-dsn", o.databases.mysqlDSN, o.databases.mysqlDSNFile)
	if err != nil {
		return doctor.Config{}, err
	}
	c := doctor.Config{
		Data: data, Srv: filepath.Join(data, "srv"),
		NginxBin: o.nginxBin, NginxPrefix: filepath.Join(data, "nginx"), NginxConf: filepath.Join(data, "nginx", "nginx.conf"),
		NginxPidFile: filepath.Join(data, "nginx", "nginx.pid"), NginxOwner: "Conductor's nginx",
		CircusBin: o.circusBin, CircusDir: filepath.Join(data, "circus"), CircusPins: deploy.CircusPins(),
		Python: o.python, Pythons: o.pythons, SSHAddr: o.sshAddr, HTTPAddr: o.httpAddr,
		PostgresDSN: pg, MySQLDSN: my,
	}
	if sys != nil {
		// The host's nginx, with Conductor's sites in its sites dir.
		c.System, c.Srv = true, systemSetting(sys, "srv")
		c.NginxPrefix, c.NginxConf = "", systemSetting(sys, "nginx-conf")
		c.NginxPidFile, c.NginxOwner = systemSetting(sys, "nginx-pid-file"), "the host's nginx, which serves Conductor's sites"
	}
	return c, nil
}

// fromSystemConfig reads serve's settings in system mode, as `serve
// --system` does (its defaults, then the config file), and gives each flag
// of this command that was not set on the command line the value of
// serve's flag of the same name. It returns serve's settings.
func fromSystemConfig(flags *pflag.FlagSet, config string) (*pflag.FlagSet, error) {
	serve := serveCommand()
	args := []string{"--system"}
	if flags.Changed("config") {
		args = append(args, "--config", config)
	}
	if err := serve.ParseFlags(args); err != nil {
		return nil, err
	}
	sys := serve.Flags()
	if err := applySystemConfig(sys, config); err != nil {
		return nil, err
	}
	var err error
	flags.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || f.Name == "system" || f.Name == "config" {
			return
		}
		if s := sys.Lookup(f.Name); s != nil && s.Value.Type() == f.Value.Type() {
			if serr := f.Value.Set(s.Value.String()); serr != nil {
				err = fmt.Errorf("setting %s: %w", f.Name, serr)
			}
		}
	})
	return sys, err
}

// systemSetting is one of serve's string settings.
func systemSetting(sys *pflag.FlagSet, name string) string {
	v, _ := sys.GetString(name)
	return v
}
