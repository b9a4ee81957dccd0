package doctor

import (
	"strings"

	"github.com/hasadna/conductor/pythons"
)

// Pythons lists the interpreters registered for apps that name a Python
// version (package pythons). None is a warning: such apps cannot deploy,
// while apps that name none get --python.
func Pythons(dir string) Result {
	const name = "pythons"
	list, err := pythons.List(dir)
	if err != nil {
		return fail(name, "fix the directory as the message says, or give serve another --pythons", "%s: %v", dir, err)
	}
	if len(list) == 0 {
		return warn(name, pythons.AddHint+", or make setup (it registers pyenv's)",
			"no Python registered in %s: apps that name a version (.python-version, runtime.txt, requires-python) cannot deploy", dir)
	}
	vs := make([]string, len(list))
	for i, in := range list {
		vs[i] = in.Version
	}
	return ok(name, "Python %s in %s", strings.Join(vs, ", "), dir)
}
