package conductor

import "testing"

func TestApplyLimits(t *testing.T) {
	start := ProcessLimits{MemoryBytes: 1 << 30, CPUMillis: 2000, Pids: 100}
	for _, tc := range []struct {
		args []string
		want ProcessLimits
		str  string
	}{
		{[]string{"memory=512M", "cpu=1", "pids=256"}, ProcessLimits{512 << 20, 1000, 256}, "memory=512M cpu=1 pids=256"},
		{[]string{"memory=512m"}, ProcessLimits{512 << 20, 2000, 100}, "memory=512M cpu=2 pids=100"},
		{[]string{"memory=512Mi"}, ProcessLimits{512 << 20, 2000, 100}, ""},
		{[]string{"memory=1.5G"}, ProcessLimits{1536 << 20, 2000, 100}, "memory=1536M cpu=2 pids=100"},
		{[]string{"MEMORY=2gb", "cpu=0.25"}, ProcessLimits{2 << 30, 250, 100}, "memory=2G cpu=0.25 pids=100"},
		{[]string{"memory=67108864"}, ProcessLimits{64 << 20, 2000, 100}, ""},
		{[]string{"memory=none", "cpu=none"}, ProcessLimits{0, 0, 100}, "pids=100"},
		{[]string{"memory=none", "cpu=NONE", "pids=none"}, ProcessLimits{}, "none"},
	} {
		got, err := ApplyLimits(start, tc.args)
		if err != nil || got != tc.want {
			t.Errorf("ApplyLimits(%v) = %+v, %v; want %+v", tc.args, got, err, tc.want)
		}
		if tc.str != "" && got.String() != tc.str {
			t.Errorf("String() = %q, want %q", got.String(), tc.str)
		}
	}
	for _, bad := range [][]string{
		nil, {"memory"}, {"memory="}, {"memory=1M"}, {"memory=2T"}, {"memory=-5G"}, {"memory=lots"},
		{"memory=9999999999999999999G"}, {"cpu=0"}, {"cpu=0.001"}, {"cpu=NaN"}, {"cpu=-1"}, {"cpu=5000"},
		{"pids=1"}, {"pids=1e3"}, {"disk=1G"}, {"memory=512M", "swap=1G"},
	} {
		got, err := ApplyLimits(start, bad)
		if ErrorCode(err) != EINVALID {
			t.Errorf("ApplyLimits(%q) = %+v, %v; want EINVALID", bad, got, err)
		}
	}
}
