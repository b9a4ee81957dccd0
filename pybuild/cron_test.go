package pybuild

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCronEntriesNameTheLine(t *testing.T) {
	dir := t.TempDir()
	if got, err := CronEntries(dir); err != nil || got != nil {
		t.Fatalf("no app.json: %v %v", got, err)
	}
	doc := `{
  "name": "x",
  "healthchecks": {"web": [{"type": "startup", "path": "/"}]},
  "cron": [
    {"command": "echo a", "schedule": "@daily"},

    {"command": "echo b",
     "schedule": "0 0 * * 8"}
  ]
}`
	if err := os.WriteFile(filepath.Join(dir, "app.json"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := CronEntries(dir)
	if err == nil || !strings.Contains(err.Error(), `app.json line 7: cron entry 2 (schedule "0 0 * * 8"): schedule: `) {
		t.Fatalf("got %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "app.json"), []byte(`{"cron": {"command": "x"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := CronEntries(dir); err == nil || !strings.Contains(err.Error(), "cron must be a list") {
		t.Fatalf("got %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "app.json"), []byte(`{"cron": [{"command": "echo a", "schedule": "*/5 * * * *"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := CronEntries(dir); err != nil || len(got) != 1 || got[0].Schedule != "*/5 * * * *" {
		t.Fatalf("got %+v %v", got, err)
	}
}
