package process

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ConfigUptime is the config var setting how long (in seconds) every
// process of a release's non-web types must stay up after its start for
// the deploy's check to pass (builder/processes.go).
const ConfigUptime = "CONDUCTOR_CHECK_UPTIME"

// MaxUptime bounds the uptime an app may ask for.
const MaxUptime = 10 * time.Minute

// ParseUptime reads an uptime: a number of seconds from 0 to MaxUptime.
func ParseUptime(s string) (time.Duration, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || f < 0 || f > MaxUptime.Seconds() {
		return 0, fmt.Errorf("want a number of seconds from 0 to %d", int(MaxUptime.Seconds()))
	}
	return time.Duration(f * float64(time.Second)), nil
}
