package sqlite

import (
	"context"
	"sync"
	"testing"

	"github.com/hasadna/conductor"
)

func TestAppDatabases(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	app := mustApp(t, db, "my-app", 9000, 9001)
	other := mustApp(t, db, "other", 9002, 9003)

	_, err := db.FindAppDatabase(ctx, app.ID)
	wantCode(t, "FindAppDatabase before provisioning", err, conductor.ENOTFOUND)

	first := &conductor.AppDatabase{AppID: app.ID, Kind: conductor.DBPostgres, Name: "my-app", User: "my-app", Password: "first"}
	got, err := db.EnsureAppDatabase(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if got.Password != "first" || got.Name != "my-app" || got.User != "my-app" || got.Kind != conductor.DBPostgres || got.CreatedAt.IsZero() {
		t.Fatalf("EnsureAppDatabase = %#v (password %q)", got, got.Password)
	}
	// A retried provision generates new credentials: the stored ones win.
	again, err := db.EnsureAppDatabase(ctx, &conductor.AppDatabase{AppID: app.ID, Kind: conductor.DBPostgres, Name: "my-app", User: "my-app", Password: "second"})
	if err != nil {
		t.Fatal(err)
	}
	if again.Password != "first" {
		t.Errorf("second EnsureAppDatabase changed the password to %q", again.Password)
	}

	// Concurrent provisions all get the same credentials.
	var wg sync.WaitGroup
	passwords := make([]string, 8)
	for i := range passwords {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := db.EnsureAppDatabase(ctx, &conductor.AppDatabase{AppID: other.ID, Kind: conductor.DBMySQL, Name: "other", User: "other", Password: string(rune('a' + i))})
			if err != nil {
				t.Error(err)
				return
			}
			passwords[i] = d.Password
		}()
	}
	wg.Wait()
	for _, p := range passwords {
		if p != passwords[0] {
			t.Fatalf("concurrent provisions got different passwords: %q", passwords)
		}
	}

	found, err := db.FindAppDatabase(ctx, app.ID)
	if err != nil || found.Password != "first" {
		t.Fatalf("FindAppDatabase = %v, %v", found, err)
	}
	if err := db.DeleteAppDatabase(ctx, app.ID); err != nil {
		t.Fatal(err)
	}
	_, err = db.FindAppDatabase(ctx, app.ID)
	wantCode(t, "FindAppDatabase after delete", err, conductor.ENOTFOUND)
	if _, err := db.FindAppDatabase(ctx, other.ID); err != nil {
		t.Errorf("deleting one app's database touched another's: %v", err)
	}
}
