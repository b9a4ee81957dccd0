package conductor_test

import (
	"testing"
	"time"

	"github.com/hasadna/conductor"
)

func TestParseAppSettings(t *testing.T) {
	set, unset, err := conductor.ParseAppSettings([]string{"timeout.release=30m", "timeout.check=90s", "timeout.build=", "timeout.virtualenv=default"})
	if err != nil {
		t.Fatal(err)
	}
	if set["timeout.release"] != "30m0s" || set["timeout.check"] != "1m30s" || len(set) != 2 {
		t.Errorf("set = %v", set)
	}
	if len(unset) != 2 || unset[0] != "timeout.build" || unset[1] != "timeout.virtualenv" {
		t.Errorf("unset = %v", unset)
	}
	for _, bad := range [][]string{
		{"timeout.release"},                          // not KEY=VALUE
		{"timeout.nope=1m"},                          // unknown key
		{"timeout.release=ten minutes"},              // not a duration
		{"timeout.release=-1m"},                      // negative
		{"timeout.release=+1m"},                      // signs are not durations we print
		{"timeout.release=1s"},                       // below the minimum
		{"timeout.check=2h"},                         // above the maximum
		{"timeout.release=1m", "timeout.release=2m"}, // twice
		{"timeout.release=1m", "bad"},                // one bad argument spoils all
	} {
		if _, _, err := conductor.ParseAppSettings(bad); conductor.ErrorCode(err) != conductor.EINVALID {
			t.Errorf("%q: err = %v, want EINVALID", bad, err)
		}
	}
}

func TestTimeoutsOf(t *testing.T) {
	def := conductor.TimeoutsOf(nil)
	if def != (conductor.Timeouts{Virtualenv: 20 * time.Minute, Build: 20 * time.Minute, Release: 10 * time.Minute, Check: time.Minute}) {
		t.Errorf("defaults = %+v", def)
	}
	got := conductor.TimeoutsOf(map[string]string{"timeout.release": "30m0s", "timeout.check": "garbage"})
	if got.Release != 30*time.Minute || got.Check != time.Minute {
		t.Errorf("TimeoutsOf = %+v", got)
	}
}
