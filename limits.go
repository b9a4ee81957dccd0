package conductor

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ProcessLimits hold each process of one process type (`ps:limit`): memory
// (swap included), CPU time and the number of processes and threads. They
// apply to every process of the type on its own, as a Heroku dyno's size or
// Dokku's resource limits do, so `ps:scale web=2` runs two processes of that
// size. Zero means no limit.
type ProcessLimits struct {
	MemoryBytes int64 `json:"memory_bytes,omitempty"`
	CPUMillis   int64 `json:"cpu_millis,omitempty"` // thousandths of a CPU: 1500 is 1.5 CPUs
	Pids        int64 `json:"pids,omitempty"`
}

// Bounds of what ps:limit accepts: below these a Python process cannot
// start, which would only look like a crashing release.
const (
	MinMemoryBytes = 16 << 20
	MaxMemoryBytes = 1 << 40
	MinCPUMillis   = 10
	MaxCPUMillis   = 1024 * 1000
	MinPids        = 8
	MaxPids        = 1 << 22
)

// IsZero tells whether no limit is set.
func (l ProcessLimits) IsZero() bool { return l == ProcessLimits{} }

// String gives the limits as ps:limit takes them, e.g.
// "memory=512M cpu=1.5 pids=256", or "none".
func (l ProcessLimits) String() string {
	var parts []string
	if l.MemoryBytes > 0 {
		parts = append(parts, "memory="+FormatBytes(l.MemoryBytes))
	}
	if l.CPUMillis > 0 {
		parts = append(parts, "cpu="+strconv.FormatFloat(float64(l.CPUMillis)/1000, 'f', -1, 64))
	}
	if l.Pids > 0 {
		parts = append(parts, "pids="+strconv.FormatInt(l.Pids, 10))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// FormatBytes writes a size with the largest binary unit that divides it:
// 512M, 1G, 1536K.
func FormatBytes(n int64) string {
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// ApplyLimits reads KEY=VALUE arguments (memory=512M cpu=1.5 pids=256) onto
// l. A value of "none" lifts that limit. Memory takes bytes or a K, M, G or
// T suffix (powers of 1024, as docker and Dokku read them; "512m", "512Mi"
// and "512MB" mean the same); cpu is a number of CPUs, fractions allowed.
func ApplyLimits(l ProcessLimits, args []string) (ProcessLimits, error) {
	if len(args) == 0 {
		return l, Errorf(EINVALID, "give at least one of memory=SIZE cpu=CPUS pids=N")
	}
	for _, arg := range args {
		key, value, ok := strings.Cut(arg, "=")
		if !ok || value == "" {
			return l, Errorf(EINVALID, "%q is not KEY=VALUE (memory=512M cpu=1 pids=256, or KEY=none)", short(arg))
		}
		none := strings.EqualFold(value, "none")
		switch strings.ToLower(key) {
		case "memory", "mem":
			if none {
				l.MemoryBytes = 0
				continue
			}
			n, err := parseBytes(value)
			if err != nil || n < MinMemoryBytes || n > MaxMemoryBytes {
				return l, Errorf(EINVALID, "memory=%s: give a size from %s to %s, like 512M or 1G", short(value), FormatBytes(MinMemoryBytes), FormatBytes(MaxMemoryBytes))
			}
			l.MemoryBytes = n
		case "cpu", "cpus":
			if none {
				l.CPUMillis = 0
				continue
			}
			f, err := strconv.ParseFloat(value, 64)
			millis := math.Round(f * 1000)
			if err != nil || math.IsNaN(f) || millis < MinCPUMillis || millis > MaxCPUMillis {
				return l, Errorf(EINVALID, "cpu=%s: give a number of CPUs from 0.01 to %d, like 1 or 0.5", short(value), MaxCPUMillis/1000)
			}
			l.CPUMillis = int64(millis)
		case "pids":
			if none {
				l.Pids = 0
				continue
			}
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n < MinPids || n > MaxPids {
				return l, Errorf(EINVALID, "pids=%s: give a number of processes and threads from %d to %d", short(value), MinPids, MaxPids)
			}
			l.Pids = n
		default:
			return l, Errorf(EINVALID, "unknown limit %q: the limits are memory, cpu and pids", short(key))
		}
	}
	return l, nil
}

func parseBytes(s string) (int64, error) {
	t := strings.ToUpper(s)
	t = strings.TrimSuffix(t, "B")
	t = strings.TrimSuffix(t, "I")
	mult := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			t = t[:len(t)-1]
		}
	}
	if strings.ContainsAny(t, ".eE") {
		f, err := strconv.ParseFloat(t, 64)
		if err != nil || f <= 0 || f*float64(mult) > float64(MaxMemoryBytes) {
			return 0, fmt.Errorf("bad size %q", s)
		}
		return int64(f * float64(mult)), nil
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > MaxMemoryBytes/mult {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

func short(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
