package conductor_test

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hasadna/conductor"
)

// The documented forms of names (design §4 and the validators' doc
// comments), written out independently of names.go.
var (
	documentedApp         = regexp.MustCompile(`^[a-z][a-z0-9-]{0,29}$`)
	documentedUser        = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)
	documentedProcType    = regexp.MustCompile(`^[a-z][a-z0-9_]{0,29}$`)
	documentedHostName    = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	documentedConfigKey   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	documentedFingerprint = regexp.MustCompile(`^SHA256:[A-Za-z0-9+/]{43}$`)
	documentedRef         = regexp.MustCompile(`^refs/(heads|tags)/[A-Za-z0-9._/-]{1,200}$`)
	dnsLabel              = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// isDomain checks a domain label by label, the way the doc comment of
// ValidateDomain describes it.
func isDomain(s string) bool {
	labels := strings.Split(s, ".")
	if len(s) > 253 || len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if !dnsLabel.MatchString(l) {
			return false
		}
	}
	last := labels[len(labels)-1]
	return last[0] >= 'a' && last[0] <= 'z'
}

// FuzzValidateNames feeds any string to every validator: none may panic,
// a refusal is always an EINVALID *Error, and whatever is accepted has the
// documented form. Run in CI with -fuzz for a few seconds (make test).
func FuzzValidateNames(f *testing.F) {
	for _, s := range []string{
		"hello", "my-app2", "a--b", "a-", "root", "Hello", "../x", "a;b", "", strings.Repeat("a", 31),
		"dev_1", "web", "worker_2", "GREETING", "1A", "A B", "www.example.org", "example.org.",
		"1.2.3.4", "xn--p1ai.xn--p1ai", "a..b", "-a.org", "SHA256:" + strings.Repeat("A", 43),
		"refs/heads/main", "refs/heads/../x", "refs/tags/v1.0", "héllo", "a\x00b", "\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		check := func(what string, err error, documented func(string) bool) {
			if err != nil {
				if conductor.ErrorCode(err) != conductor.EINVALID || conductor.ErrorMessage(err) == "" {
					t.Fatalf("%s(%q) refused with %v (code %q), want an EINVALID message", what, s, err, conductor.ErrorCode(err))
				}
				return
			}
			if !documented(s) {
				t.Fatalf("%s accepted %q, which is not of the documented form", what, s)
			}
		}
		check("ValidateAppName", conductor.ValidateAppName(s), func(s string) bool {
			return documentedApp.MatchString(s) && !strings.HasSuffix(s, "-") && !strings.Contains(s, "--")
		})
		check("ValidateUserName", conductor.ValidateUserName(s), documentedUser.MatchString)
		check("ValidateProcessType", conductor.ValidateProcessType(s), documentedProcType.MatchString)
		check("ValidateHostName", conductor.ValidateHostName(s), documentedHostName.MatchString)
		check("ValidateConfigKey", conductor.ValidateConfigKey(s), documentedConfigKey.MatchString)
		check("ValidateDomain", conductor.ValidateDomain(s), isDomain)
		check("ValidateFingerprint", conductor.ValidateFingerprint(s), documentedFingerprint.MatchString)
		check("ValidateRef", conductor.ValidateRef(s), func(s string) bool {
			return documentedRef.MatchString(s) && !strings.Contains(s, "..")
		})
		check("ValidateConfigValue", conductor.ValidateConfigValue("K", s), func(s string) bool {
			return len(s) <= conductor.MaxConfigValue && utf8.ValidString(s) && !strings.ContainsRune(s, 0)
		})
		// The reverse for the strict names: the documented form is accepted
		// (apart from reserved names and existing system users).
		if documentedConfigKey.MatchString(s) && conductor.ValidateConfigKey(s) != nil {
			t.Fatalf("ValidateConfigKey refused the documented %q", s)
		}
		if isDomain(s) && conductor.ValidateDomain(s) != nil {
			t.Fatalf("ValidateDomain refused the documented %q", s)
		}
	})
}
