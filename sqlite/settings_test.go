package sqlite

import (
	"context"
	"maps"
	"testing"
)

func TestAppSettings(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	app := mustApp(t, db, "tuned", 9000, 9001)
	other := mustApp(t, db, "other", 9002, 9003)
	if got, err := db.AppSettings(ctx, app.ID); err != nil || len(got) != 0 {
		t.Fatalf("new app's settings: %v %v", got, err)
	}
	if err := db.SetAppSettings(ctx, app.ID, map[string]string{"timeout.release": "30m0s", "timeout.check": "1m30s"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.SetAppSettings(ctx, app.ID, map[string]string{"timeout.release": "1h0m0s"}, []string{"timeout.check", "timeout.build"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.AppSettings(ctx, app.ID); !maps.Equal(got, map[string]string{"timeout.release": "1h0m0s"}) {
		t.Errorf("settings = %v", got)
	}
	if got, _ := db.AppSettings(ctx, other.ID); len(got) != 0 {
		t.Errorf("another app's settings = %v", got)
	}
	if err := db.DeleteApp(ctx, app.ID); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.db.QueryRow(`SELECT count(*) FROM app_settings`).Scan(&n); err != nil || n != 0 {
		t.Errorf("settings left after apps:destroy: %d %v", n, err)
	}
}
