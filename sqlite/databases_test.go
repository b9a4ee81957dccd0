package sqlite

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/hasadna/conductor"
)

func TestAppDatabases(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	app := mustApp(t, db, "my-app", 9000, 9001)
	other := mustApp(t, db, "other", 9002, 9003)

	_, err := db.FindAppDatabase(ctx, app.ID, conductor.DefaultAlias)
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

	// Another alias is a database of its own, listed after the default.
	metrics, err := db.EnsureAppDatabase(ctx, &conductor.AppDatabase{AppID: app.ID, Alias: "metrics", Kind: conductor.DBMySQL, Name: "my-app_metrics", User: "my-app_metrics", Password: "m"})
	if err != nil || metrics.Password != "m" || metrics.Alias != "metrics" {
		t.Fatalf("EnsureAppDatabase(metrics) = %v, %v", metrics, err)
	}
	all, err := db.AppDatabases(ctx, app.ID)
	if err != nil || len(all) != 2 || all[0].Alias != conductor.DefaultAlias || all[1].Alias != "metrics" || all[1].Kind != conductor.DBMySQL {
		t.Fatalf("AppDatabases = %v, %v", all, err)
	}
	if err := db.SetAppDBKind(ctx, app.ID, conductor.DBPostgres); err != nil {
		t.Fatal(err)
	}
	if a, err := db.FindApp(ctx, "my-app"); err != nil || a.DBKind != conductor.DBPostgres {
		t.Errorf("after SetAppDBKind: %v, %v", a, err)
	}
	wantCode(t, "SetAppDBKind of no app", db.SetAppDBKind(ctx, 9999, conductor.DBPostgres), conductor.ENOTFOUND)

	found, err := db.FindAppDatabase(ctx, app.ID, conductor.DefaultAlias)
	if err != nil || found.Password != "first" {
		t.Fatalf("FindAppDatabase = %v, %v", found, err)
	}
	if err := db.DeleteAppDatabase(ctx, app.ID, conductor.DefaultAlias); err != nil {
		t.Fatal(err)
	}
	_, err = db.FindAppDatabase(ctx, app.ID, conductor.DefaultAlias)
	wantCode(t, "FindAppDatabase after delete", err, conductor.ENOTFOUND)
	if _, err := db.FindAppDatabase(ctx, other.ID, conductor.DefaultAlias); err != nil {
		t.Errorf("deleting one app's database touched another's: %v", err)
	}
	if all, err := db.AppDatabases(ctx, app.ID); err != nil || len(all) != 1 || all[0].Alias != "metrics" {
		t.Errorf("deleting the default touched another alias: %v, %v", all, err)
	}
}

// TestDatabaseAliasesMigration: an app's database recorded before aliases
// (0002's table) becomes its "default" when 0009 runs.
func TestDatabaseAliasesMigration(t *testing.T) {
	ctx := context.Background()
	db, path := openTest(t)
	app := mustApp(t, db, "old-app", 9000, 9001)
	// Back to the table as 0002 made it, with a row in it.
	for _, q := range []string{
		`DROP TABLE app_databases`,
		`CREATE TABLE app_databases (app_id INTEGER PRIMARY KEY REFERENCES apps(id) ON DELETE CASCADE, kind TEXT NOT NULL,
			name TEXT NOT NULL, user TEXT NOT NULL, password TEXT NOT NULL,
			created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))`,
		`INSERT INTO app_databases (app_id, kind, name, user, password) VALUES (` + fmt.Sprint(app.ID) + `, 'postgres', 'old-app', 'old-app', 'pw')`,
		`DELETE FROM schema_migrations WHERE version = 9`,
	} {
		if _, err := db.db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	again, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	got, err := again.FindAppDatabase(ctx, app.ID, conductor.DefaultAlias)
	if err != nil || got.Password != "pw" || got.Name != "old-app" || got.Kind != conductor.DBPostgres || got.Alias != conductor.DefaultAlias {
		t.Fatalf("after 0009: %v, %v", got, err)
	}
}
