package conductor_test

import (
	"errors"
	"fmt"
	"os/user"
	"strings"
	"testing"

	"github.com/hasadna/conductor"
)

// wantInvalid fails unless err is an *conductor.Error with code EINVALID.
func wantInvalid(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: got nil error, want %s", what, conductor.EINVALID)
	}
	var e *conductor.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: error %v (%T) is not a *conductor.Error", what, err, err)
	}
	if e.Code != conductor.EINVALID {
		t.Fatalf("%s: code = %q, want %q", what, e.Code, conductor.EINVALID)
	}
}

func TestValidateAppName(t *testing.T) {
	name30 := "a" + strings.Repeat("b", 29)
	tests := []struct {
		name    string
		ok      bool
		errPart string // a substring of the error message when !ok
	}{
		{"hello", true, ""},
		{"my-app2", true, ""},
		{"a", true, ""},
		{"a1-b2-c3", true, ""},
		{name30, true, ""},
		{"", false, "invalid app name"},
		{"../x", false, "invalid app name"},
		{"a/b", false, "invalid app name"},
		{"a;b", false, "invalid app name"},
		{"a b", false, "invalid app name"},
		{"a.b", false, "invalid app name"},
		{"Hello", false, "invalid app name"},
		{"HELLO", false, "invalid app name"},
		{"1abc", false, "invalid app name"},
		{"-abc", false, "invalid app name"},
		{"a_b", false, "invalid app name"},
		{"a--b", false, "invalid app name"},
		{"a-", false, "invalid app name"},
		{"hello\n", false, "invalid app name"},
		{"héllo", false, "invalid app name"},
		{name30 + "c", false, "invalid app name"},
		{strings.Repeat("a", 300), false, "invalid app name"},
		{"root", false, "reserved"},
		{"admin", false, "reserved"},
		{"nginx", false, "reserved"},
		{"git", false, "reserved"},
		{"conductor", false, "reserved"},
		{"daemon", false, "reserved"},
		{"nobody", false, "reserved"},
		{"postgres", false, "reserved"},
		{"localhost", false, "reserved"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%.40q", tt.name), func(t *testing.T) {
			err := conductor.ValidateAppName(tt.name)
			if tt.ok {
				if err != nil {
					t.Fatalf("ValidateAppName(%q) = %v, want nil", tt.name, err)
				}
				return
			}
			wantInvalid(t, fmt.Sprintf("ValidateAppName(%q)", tt.name), err)
			if msg := conductor.ErrorMessage(err); !strings.Contains(msg, tt.errPart) {
				t.Errorf("message %q does not contain %q", msg, tt.errPart)
			}
		})
	}
}

// TestValidateNewAppNameSystemUsers checks that a new app may not take the
// name of an existing unix user that Conductor did not create, reserved or
// not, while ValidateAppName (every command on an existing app) does not
// read the user database.
func TestValidateNewAppNameSystemUsers(t *testing.T) {
	for _, name := range []string{"bin", "sys", "daemon", "www-data"} {
		u, err := user.Lookup(name)
		if err != nil {
			t.Fatalf("this test needs the standard system user %q: %v", name, err)
		}
		if u.Name == conductor.AppUserComment {
			t.Fatalf("system user %q unexpectedly has the conductor comment", name)
		}
		err = conductor.ValidateNewAppName(name)
		wantInvalid(t, fmt.Sprintf("ValidateNewAppName(%q)", name), err)
		msg := conductor.ErrorMessage(err)
		if !strings.Contains(msg, "system user") && !strings.Contains(msg, "reserved") {
			t.Errorf("ValidateNewAppName(%q) message %q mentions neither a system user nor a reserved name", name, msg)
		}
	}
	// "bin" is not in the reserved list: only the user lookup refuses it.
	if msg := conductor.ErrorMessage(conductor.ValidateNewAppName("bin")); !strings.Contains(msg, "a system user has that name") {
		t.Errorf(`ValidateNewAppName("bin") message = %q, want the system-user message`, msg)
	}
	if err := conductor.ValidateAppName("bin"); err != nil {
		t.Errorf(`ValidateAppName("bin") = %v, want nil: only a new app's name is checked against unix users`, err)
	}
	// The syntax rules still come first.
	wantInvalid(t, `ValidateNewAppName("Bin")`, conductor.ValidateNewAppName("Bin"))
	if err := conductor.ValidateNewAppName("no-such-user-xq"); err != nil {
		t.Errorf(`ValidateNewAppName("no-such-user-xq") = %v, want nil`, err)
	}
}

func TestValidateAppNameTruncatesLongNames(t *testing.T) {
	long := strings.Repeat("x", 300)
	msg := conductor.ErrorMessage(conductor.ValidateAppName(long))
	if strings.Contains(msg, long) {
		t.Fatalf("message repeats the whole 300-char name: %q", msg)
	}
	if !strings.Contains(msg, strings.Repeat("x", 40)+"…") {
		t.Fatalf("message %q does not hold the name truncated to 40 chars", msg)
	}
}

func TestValidateUserName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"alice", true},
		{"bob_smith-2", true},
		{"a" + strings.Repeat("b", 31), true},
		{"a" + strings.Repeat("b", 32), false},
		{"", false},
		{"Alice", false},
		{"1alice", false},
		{"al ice", false},
		{"al;ice", false},
		{"../alice", false},
	}
	for _, tt := range tests {
		err := conductor.ValidateUserName(tt.name)
		if tt.ok && err != nil {
			t.Errorf("ValidateUserName(%q) = %v, want nil", tt.name, err)
		}
		if !tt.ok {
			wantInvalid(t, fmt.Sprintf("ValidateUserName(%q)", tt.name), err)
		}
	}
}

func TestValidateConfigKey(t *testing.T) {
	tests := []struct {
		key string
		ok  bool
	}{
		{"DATABASE_URL", true},
		{"_PRIVATE", true},
		{"lower_case", true},
		{"A1", true},
		{"X", true},
		{"A" + strings.Repeat("B", 127), true},
		{"A" + strings.Repeat("B", 128), false},
		{"", false},
		{"1ABC", false},
		{"A-B", false},
		{"A B", false},
		{"A=B", false},
		{"A;B", false},
		{"A$B", false},
		{"A\nB", false},
		{"Ä", false},
	}
	for _, tt := range tests {
		err := conductor.ValidateConfigKey(tt.key)
		if tt.ok && err != nil {
			t.Errorf("ValidateConfigKey(%q) = %v, want nil", tt.key, err)
		}
		if !tt.ok {
			wantInvalid(t, fmt.Sprintf("ValidateConfigKey(%.40q)", tt.key), err)
		}
	}
}

func TestValidateProcessType(t *testing.T) {
	tests := []struct {
		typ string
		ok  bool
	}{
		{"web", true},
		{"worker", true},
		{"worker_2", true},
		{"release", true},
		{"a" + strings.Repeat("b", 29), true},
		{"a" + strings.Repeat("b", 30), false},
		{"my-worker", false}, // dashes would make watcher names ambiguous
		{"Web", false},
		{"1web", false},
		{"_web", false},
		{"", false},
		{"web worker", false},
		{"web:", false},
		{"w/eb", false},
	}
	for _, tt := range tests {
		err := conductor.ValidateProcessType(tt.typ)
		if tt.ok && err != nil {
			t.Errorf("ValidateProcessType(%q) = %v, want nil", tt.typ, err)
		}
		if !tt.ok {
			wantInvalid(t, fmt.Sprintf("ValidateProcessType(%q)", tt.typ), err)
		}
	}
}

func TestValidateRef(t *testing.T) {
	tests := []struct {
		ref string
		ok  bool
	}{
		{"refs/heads/main", true},
		{"refs/heads/master", true},
		{"refs/heads/feature/x", true},
		{"refs/heads/fix-1.2_b", true},
		{"refs/tags/v1.0", true},
		{"refs/heads/../x", false},
		{"refs/heads/a..b", false},
		{"refs/heads/a//b", false},
		{"HEAD", false},
		{"main", false},
		{"refs/heads/", false},
		{"refs/heads/a b", false},
		{"refs/heads/a;b", false},
		{"refs/heads/a\nb", false},
		{"refs/heads/$(id)", false},
		{"refs/remotes/origin/main", false},
		{"refs/notes/commits", false},
		{"/refs/heads/main", false},
		{"refs/heads/" + strings.Repeat("a", 201), false},
	}
	for _, tt := range tests {
		err := conductor.ValidateRef(tt.ref)
		if tt.ok && err != nil {
			t.Errorf("ValidateRef(%q) = %v, want nil", tt.ref, err)
		}
		if !tt.ok {
			wantInvalid(t, fmt.Sprintf("ValidateRef(%.40q)", tt.ref), err)
		}
	}
}

func TestIsDeployBranch(t *testing.T) {
	tests := []struct {
		ref  string
		want bool
	}{
		{"refs/heads/main", true},
		{"refs/heads/master", true},
		{"refs/heads/main2", false},
		{"refs/heads/feature/main", false},
		{"refs/tags/main", false},
		{"main", false},
		{"refs/heads/Main", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := conductor.IsDeployBranch(tt.ref); got != tt.want {
			t.Errorf("IsDeployBranch(%q) = %v, want %v", tt.ref, got, tt.want)
		}
	}
}

func TestErrorCodeAndMessage(t *testing.T) {
	notFound := conductor.Errorf(conductor.ENOTFOUND, "app %q not found", "x")
	tests := []struct {
		name     string
		err      error
		wantCode string
		wantMsg  string
	}{
		{"nil", nil, "", ""},
		{"conductor error", notFound, conductor.ENOTFOUND, `app "x" not found`},
		{"wrapped once", fmt.Errorf("find: %w", notFound), conductor.ENOTFOUND, `app "x" not found`},
		{"wrapped twice", fmt.Errorf("deploy: %w", fmt.Errorf("find: %w", notFound)), conductor.ENOTFOUND, `app "x" not found`},
		{"joined", errors.Join(errors.New("boom"), conductor.Errorf(conductor.ECONFLICT, "taken")), conductor.ECONFLICT, "taken"},
		{"plain", errors.New("disk on fire at /secret/path"), conductor.EINTERNAL, "internal error"},
		{"wrapped plain", fmt.Errorf("open: %w", errors.New("permission denied")), conductor.EINTERNAL, "internal error"},
		{"formatted without %w", fmt.Errorf("x: %v", notFound), conductor.EINTERNAL, "internal error"},
		{"unauthorized", conductor.Errorf(conductor.EUNAUTHORIZED, "no"), conductor.EUNAUTHORIZED, "no"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := conductor.ErrorCode(tt.err); got != tt.wantCode {
				t.Errorf("ErrorCode = %q, want %q", got, tt.wantCode)
			}
			if got := conductor.ErrorMessage(tt.err); got != tt.wantMsg {
				t.Errorf("ErrorMessage = %q, want %q", got, tt.wantMsg)
			}
		})
	}
	if got := notFound.Error(); got != `app "x" not found` {
		t.Errorf("Error() = %q", got)
	}
}

func TestAccessLevelString(t *testing.T) {
	tests := []struct {
		l    conductor.AccessLevel
		want string
	}{
		{conductor.NoAccess, "no-access"},
		{conductor.ReadOnly, "read-only"},
		{conductor.ReadWrite, "read-write"},
		{conductor.Admin, "admin"},
		{conductor.AccessLevel(42), "no-access"},
	}
	for _, tt := range tests {
		if got := tt.l.String(); got != tt.want {
			t.Errorf("AccessLevel(%d).String() = %q, want %q", int(tt.l), got, tt.want)
		}
	}
	if !(conductor.NoAccess < conductor.ReadOnly && conductor.ReadOnly < conductor.ReadWrite && conductor.ReadWrite < conductor.Admin) {
		t.Error("access levels are not ordered")
	}
}

func TestValidateHostName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"local", true},
		{"h1", true},
		{"app-host-2", true},
		{"1st", true},
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), false},
		{"", false},
		{"-h", false},
		{"H1", false},
		{"h.1", false}, // a dot would split the NATS subject deploy.<host>.<app>
		{"h*", false},
		{"h>", false},
		{"h 1", false},
		{"h_1", false},
	}
	for _, tt := range tests {
		if err := conductor.ValidateHostName(tt.name); (err == nil) != tt.ok {
			t.Errorf("ValidateHostName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}
