package nginx

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
)

// trafficLogName is the file under Dir where the apps' server blocks log
// their requests as JSON lines (log_format conductor_traffic).
const trafficLogName = "traffic.log"

// SystemTrafficLog is where the host's nginx (system mode) logs the apps'
// requests: beside its own logs, so the host's logrotate (Debian's
// /etc/logrotate.d/nginx) rotates it and has nginx reopen it. A variable
// for tests.
var SystemTrafficLog = "/var/log/nginx/conductor-traffic.log"

// TrafficLog is the file nginx logs every app's requests to, one JSON line
// each (log_format conductor_traffic).
func (n *Nginx) TrafficLog() string {
	if n.System {
		return SystemTrafficLog
	}
	if n.Dir == "" {
		return ""
	}
	return filepath.Join(n.Dir, trafficLogName)
}

// trafficFormat names the log format an app's site logs with: nginx.conf's
// in Conductor's own nginx; in the host's, whose nginx.conf Conductor does
// not write, one each site declares, named after its app so that no two
// sites declare the same.
func (n *Nginx) trafficFormat(app string) string {
	if n.System {
		return "conductor_traffic_" + app
	}
	return "conductor_traffic"
}

// RotateLogs renames each of Conductor's nginx logs (access.log,
// traffic.log) that has grown past maxBytes to <name>.1, replacing the
// previous one, and has the master reopen its logs (SIGUSR1), so the files
// nginx writes never grow without bound. Not in system mode: the host's
// logrotate rotates the host nginx's logs.
func (n *Nginx) RotateLogs(maxBytes int64) error {
	if n.System || maxBytes <= 0 {
		return nil
	}
	rotated := false
	for _, name := range []string{"access.log", trafficLogName} {
		path := filepath.Join(n.Dir, name)
		fi, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("rotate nginx logs: %w", err)
		}
		if !fi.Mode().IsRegular() || fi.Size() <= maxBytes {
			continue
		}
		if err := os.Rename(path, path+".1"); err != nil {
			return fmt.Errorf("rotate nginx log %s: %w", name, err)
		}
		// nginx (as root) would make the new file 0644: it holds every
		// app's requests, so it is made 0640 first.
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscall.O_NOFOLLOW, 0o640)
		if err != nil {
			return fmt.Errorf("rotate nginx log %s: %w", name, err)
		}
		_ = f.Close()
		rotated = true
	}
	if !rotated {
		return nil
	}
	master := n.masterPid()
	if master == 0 {
		return errors.New("rotate nginx logs: nginx is not running")
	}
	if err := syscall.Kill(master, syscall.SIGUSR1); err != nil {
		return fmt.Errorf("rotate nginx logs: reopen (pid %d): %w", master, err)
	}
	slog.Info("rotated nginx logs", "dir", n.Dir, "max_bytes", maxBytes)
	return nil
}
