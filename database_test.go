package conductor

import (
	"strings"
	"testing"
)

func TestValidateDatabaseAlias(t *testing.T) {
	for _, ok := range []string{"default", "metrics", "legacy_db", "a", "x1", strings.Repeat("a", 30)} {
		if err := ValidateDatabaseAlias(ok); err != nil {
			t.Errorf("ValidateDatabaseAlias(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "Metrics", "1x", "_x", "a-b", "a.b", "a b", "a;b", "é", strings.Repeat("a", 31), "a\n", "metrics\x00"} {
		if err := ValidateDatabaseAlias(bad); ErrorCode(err) != EINVALID {
			t.Errorf("ValidateDatabaseAlias(%q) = %v, want EINVALID", bad, err)
		}
	}
}

func TestDatabaseURLVar(t *testing.T) {
	for alias, want := range map[string]string{"default": "DATABASE_URL", "metrics": "METRICS_DATABASE_URL", "legacy_db": "LEGACY_DB_DATABASE_URL"} {
		if got := DatabaseURLVar(alias); got != want {
			t.Errorf("DatabaseURLVar(%q) = %q, want %q", alias, got, want)
		}
		if err := ValidateConfigKey(DatabaseURLVar(alias)); err != nil {
			t.Errorf("%s is not a valid variable name: %v", DatabaseURLVar(alias), err)
		}
	}
}

// The password stays out of every way an AppDatabase is printed.
func TestAppDatabaseHidesPassword(t *testing.T) {
	d := AppDatabase{Alias: "metrics", Kind: DBPostgres, Name: "a_metrics", User: "a_metrics", Password: "s3cretPassw0rd"}
	for _, s := range []string{d.String(), d.GoString(), d.LogValue().String()} {
		if strings.Contains(s, d.Password) {
			t.Errorf("%q shows the password", s)
		}
	}
}
