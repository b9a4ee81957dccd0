package conductor_test

import (
	"strings"
	"testing"

	"github.com/hasadna/conductor"
)

// TestRedactCommand: no config:set value survives, however the command is
// spelled, while what is not a value stays readable.
func TestRedactCommand(t *testing.T) {
	tests := []struct {
		name  string
		words []string
		want  string
	}{
		{"plain", []string{"config:set", "app", "TOKEN=s3cret"}, "config:set app TOKEN=…"},
		{"several, flag after", []string{"config:set", "app", "TOKEN=s3cret value", "B=2", "--no-restart"}, "config:set app TOKEN=… B=… --no-restart"},
		{"flag before the app", []string{"config:set", "--no-restart", "app", "K=s3cret"}, "config:set --no-restart app K=…"},
		{"unknown flag before the app", []string{"config:set", "--foo", "app", "K=s3cret"}, "config:set … app K=…"},
		{"flag with a value", []string{"config:set", "--no-restart=s3cret", "app", "K=v"}, "config:set … app K=…"},
		{"flags before the command word", []string{"--foo", "config:set", "app", "K=s3cret"}, "--foo config:set app K=…"},
		{"after --", []string{"--", "config:set", "app", "K=s3cret"}, "-- config:set app K=…"},
		{"upper case", []string{"CONFIG:SET", "app", "K=s3cret"}, "CONFIG:SET app K=…"},
		{"value split on an unquoted space", []string{"config:set", "app", "K=my", "s3cret", "phrase"}, "config:set app K=… … …"},
		{"value without KEY=", []string{"config:set", "app", "s3cret"}, "config:set app …"},
		{"value that looks like an app name", []string{"config:set", "app", "K=v", "hunter"}, "config:set app K=… …"},
		{"value with =", []string{"config:set", "app", "DSN=postgres://u:p@h/db?sslmode=require"}, "config:set app DSN=…"},
		{"empty value", []string{"config:set", "app", "K="}, "config:set app K=…"},
		{"invalid key", []string{"config:set", "app", "1X=s3cret", "A B=s3cret"}, "config:set app … …"},
		{"no app", []string{"config:set", "K=s3cret"}, "config:set K=…"},
		{"bad app name", []string{"config:set", "../s3cret", "K=v"}, "config:set … K=…"},
		{"config:set as a value", []string{"config:set", "app", "A=config:set", "B=s3cret"}, "config:set app A=… B=…"},
		{"inside run", []string{"run", "app", "--", "sh", "-c", "config:set", "x", "K=s3cret"}, "run app -- sh -c config:set x K=…"},
		{"help", []string{"config:set", "--help"}, "config:set --help"},
		{"other command", []string{"config:get", "app", "TOKEN"}, "config:get app TOKEN"},
		{"ps:scale keeps its counts", []string{"ps:scale", "app", "web=2"}, "ps:scale app web=2"},
		{"empty", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := append([]string(nil), tt.words...)
			got := strings.Join(conductor.RedactCommand(tt.words), " ")
			if got != tt.want {
				t.Errorf("RedactCommand(%q) = %q, want %q", tt.words, got, tt.want)
			}
			if strings.Contains(got, "s3cret") || strings.Contains(got, "phrase") || strings.Contains(got, "hunter") {
				t.Errorf("a value survived: %q", got)
			}
			if strings.Join(orig, "\x00") != strings.Join(tt.words, "\x00") {
				t.Errorf("RedactCommand modified its input: %q", tt.words)
			}
		})
	}
}
