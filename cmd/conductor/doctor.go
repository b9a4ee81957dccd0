package main

import (
	"errors"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/hasadna/conductor/deploy"
	"github.com/hasadna/conductor/doctor"
)

// doctorOptions are serve's options that say where things are: doctor
// checks the same binaries, paths, addresses and database servers.
type doctorOptions struct {
	data, sshAddr, httpAddr string
	system, json            bool
	circusBin, nginxBin     string
	python                  string
	databases               databaseOptions
}

func doctorCommand() *cobra.Command {
	var o doctorOptions
	cmd := &cobra.Command{
		Use:   "doctor [--data DIR | --system]",
		Short: "Check this host for what Conductor needs, one line per check with the fix",
		Long: `Check this host for what Conductor needs: nginx, the circus virtualenv and
circusd's control socket, python3 with venv, git, the database servers,
free disk space, the SSH and HTTP ports, the state database and the data
dir's permissions. Give it the flags you give conductor serve. Each line
is ok, warn or FAIL; the command exits non-zero when any check FAILs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.config()
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
	f.BoolVar(&o.system, "system", false, "check the production layout (as conductor serve --system)")
	f.BoolVar(&o.json, "json", false, "print the results as JSON")
	f.StringVar(&o.sshAddr, "ssh-addr", "127.0.0.1:2222", "SSH listen address conductor serve uses")
	f.StringVar(&o.httpAddr, "http-addr", "127.0.0.1:8080", "address of the front nginx")
	f.StringVar(&o.circusBin, "circus-bin", "/opt/conductor/circus/bin", "directory with circusd")
	f.StringVar(&o.nginxBin, "nginx-bin", "/usr/sbin/nginx", "nginx binary")
	f.StringVar(&o.python, "python", "/usr/bin/python3", "Python interpreter for app virtualenvs")
	o.databases.addFlags(f)
	return cmd
}

// errDoctorFailed makes the exit status non-zero once the lines are out.
var errDoctorFailed = errors.New("some checks failed: see the FAIL lines above")

// config turns the flags into the paths doctor checks.
func (o *doctorOptions) config() (doctor.Config, error) {
	if (o.data == "") == !o.system {
		return doctor.Config{}, errors.New("give --data DIR or --system")
	}
	if o.system {
		return doctor.Config{}, errors.New("doctor --system: the system layout is not available yet; use --data")
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
	return doctor.Config{
		Data: data, Srv: filepath.Join(data, "srv"),
		NginxBin: o.nginxBin, NginxPrefix: filepath.Join(data, "nginx"), NginxConf: filepath.Join(data, "nginx", "nginx.conf"),
		CircusBin: o.circusBin, CircusDir: filepath.Join(data, "circus"), CircusPins: deploy.CircusPins(),
		Python: o.python, SSHAddr: o.sshAddr, HTTPAddr: o.httpAddr,
		PostgresDSN: pg, MySQLDSN: my,
	}, nil
}
