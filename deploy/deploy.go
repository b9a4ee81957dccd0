// Package deploy carries the files Conductor installs next to itself, so
// the binary alone knows them: the pinned requirements of the circus
// virtualenv and the logrotate configuration of Conductor's own logs.
package deploy

import (
	_ "embed" // CircusRequirements
	"strings"
)

// Logrotate is logrotate.conf, which `conductor install` writes to
// /etc/logrotate.d/conductor for Conductor's own log files.
//
//go:embed logrotate.conf
var Logrotate string

// CircusRequirements is circus-requirements.txt: circus and its
// dependencies, each pinned with ==.
//
//go:embed circus-requirements.txt
var CircusRequirements string

// CircusPins returns the pinned version of each package in
// CircusRequirements, by package name as written there.
func CircusPins() map[string]string {
	pins := map[string]string{}
	for _, line := range strings.Split(CircusRequirements, "\n") {
		line, _, _ = strings.Cut(line, "#")
		name, version, ok := strings.Cut(strings.TrimSpace(line), "==")
		if ok {
			pins[strings.TrimSpace(name)] = strings.TrimSpace(version)
		}
	}
	return pins
}
