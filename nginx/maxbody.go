package nginx

import (
	"fmt"

	"github.com/hasadna/conductor/internal/lazyre"
)

// DefaultMaxBody is an app's client_max_body_size unless its Site says
// otherwise (conductor.DefaultMaxBody, CONDUCTOR_MAX_BODY).
const DefaultMaxBody = "100m"

// sizeRE is nginx's size syntax. conductor.ValidateMaxBody checks the
// user's value with its bounds; this only keeps anything else out of the
// configuration.
var sizeRE = lazyre.New(`^[0-9]{1,12}[kKmMgG]?$`)

func siteMaxBody(v string) (string, error) {
	if v == "" {
		return DefaultMaxBody, nil
	}
	if !sizeRE.MatchString(v) {
		return "", fmt.Errorf("nginx: invalid client_max_body_size %q", v)
	}
	return v, nil
}
