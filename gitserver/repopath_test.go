package gitserver

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hasadna/conductor"
)

func TestAppFromRepoPath(t *testing.T) {
	tests := []struct {
		path string
		want string // "" means refused
	}{
		{"hello", "hello"},
		{"/hello", "hello"},
		{"hello.git", "hello"},
		{"/hello.git", "hello"},
		{"/hello.git/", "hello"},
		{"hello/", "hello"},
		{"my-app2", "my-app2"},
		{"/my-app2.git", "my-app2"},
		{"../x", ""},
		{"/../../etc/passwd", ""},
		{"../../etc/passwd", ""},
		{"..", ""},
		{".", ""},
		{".git", ""},
		{"/.git", ""},
		{"a/b", ""},
		{"/a/b.git", ""},
		{"hello.git.git", ""},
		{"hello.GIT", ""},
		{"", ""},
		{"/", ""},
		{"//", ""},
		{"//hello", ""},
		{"hello//", ""},
		{"ROOT", ""},
		{"root", ""},
		{"/root.git", ""},
		{"nginx", ""},
		{"a;b", ""},
		{"hello;rm -rf /", ""},
		{"hello.git;id", ""},
		{"'hello'", ""},
		{"hello\n", ""},
		{"~hello", ""},
		{"hello%2F..", ""},
		{strings.Repeat("a", 300), ""},
		{"/" + strings.Repeat("a", 31) + ".git", ""},
		{"/" + strings.Repeat("a", 30) + ".git", strings.Repeat("a", 30)},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%.40q", tt.path), func(t *testing.T) {
			got, err := AppFromRepoPath(tt.path)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("AppFromRepoPath(%q) = %q, want an error", tt.path, got)
				}
				if code := conductor.ErrorCode(err); code != conductor.EINVALID {
					t.Errorf("AppFromRepoPath(%q) error code %q, want %q", tt.path, code, conductor.EINVALID)
				}
				if got != "" {
					t.Errorf("AppFromRepoPath(%q) returned %q with its error", tt.path, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("AppFromRepoPath(%q) = %q, %v; want %q", tt.path, got, err, tt.want)
			}
		})
	}
}
