package sqlite

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/hasadna/conductor"
)

func TestConfigFiles(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	app := mustApp(t, db, "hello", 20000, 20001)
	other := mustApp(t, db, "other", 20002, 20003)

	f, err := db.PutConfigFile(ctx, app.ID, "secrets.json", []byte(`{"k": 1}`), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if f.Size != 8 || len(f.SHA256) != 64 || f.UpdatedAt.IsZero() || f.UpdatedBy != "alice" {
		t.Errorf("PutConfigFile = %+v", f)
	}
	if _, err := db.PutConfigFile(ctx, app.ID, "secrets.json", []byte("v2"), "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PutConfigFile(ctx, app.ID, "conf/a.pem", []byte{0, 1, 2}, "bob"); err != nil {
		t.Fatal(err)
	}
	list, err := db.ConfigFiles(ctx, app.ID)
	if err != nil || len(list) != 2 || list[0].Path != "conf/a.pem" || list[1].Path != "secrets.json" || list[1].Size != 2 || list[1].UpdatedBy != "bob" {
		t.Fatalf("ConfigFiles = %+v, %v", list, err)
	}
	if c, err := db.ConfigFileContent(ctx, app.ID, "conf/a.pem"); err != nil || !bytes.Equal(c, []byte{0, 1, 2}) {
		t.Errorf("ConfigFileContent = %q, %v", c, err)
	}
	_, err = db.ConfigFileContent(ctx, other.ID, "secrets.json")
	wantCode(t, "another app's file", err, conductor.ENOTFOUND)
	if l, _ := db.ConfigFiles(ctx, other.ID); len(l) != 0 {
		t.Errorf("another app lists %+v", l)
	}
	wantCode(t, "remove a missing file", db.RemoveConfigFile(ctx, app.ID, "nope"), conductor.ENOTFOUND)
	if err := db.RemoveConfigFile(ctx, app.ID, "conf/a.pem"); err != nil {
		t.Fatal(err)
	}
	_, err = db.ConfigFileContent(ctx, app.ID, "conf/a.pem")
	wantCode(t, "a removed file", err, conductor.ENOTFOUND)

	// At most MaxConfigFiles per app; replacing one is still allowed.
	for i := 1; i < conductor.MaxConfigFiles; i++ {
		if _, err := db.PutConfigFile(ctx, app.ID, fmt.Sprintf("f%d", i), []byte("x"), "a"); err != nil {
			t.Fatal(err)
		}
	}
	_, err = db.PutConfigFile(ctx, app.ID, "one-too-many", []byte("x"), "a")
	wantCode(t, "one file too many", err, conductor.EINVALID)
	if _, err := db.PutConfigFile(ctx, app.ID, "secrets.json", []byte("v3"), "a"); err != nil {
		t.Errorf("replacing a file at the limit: %v", err)
	}

	// Placements are per directory.
	if err := db.SetPlacedConfigFiles(ctx, app.ID, "/r/1", []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	if err := db.SetPlacedConfigFiles(ctx, app.ID, "/r/2", []string{"c"}); err != nil {
		t.Fatal(err)
	}
	if err := db.SetPlacedConfigFiles(ctx, app.ID, "/r/1", []string{"b"}); err != nil {
		t.Fatal(err)
	}
	if p, err := db.PlacedConfigFiles(ctx, app.ID, "/r/1"); err != nil || fmt.Sprint(p) != "[b]" {
		t.Errorf("PlacedConfigFiles(/r/1) = %v, %v", p, err)
	}
	if p, _ := db.PlacedConfigFiles(ctx, app.ID, "/r/2"); fmt.Sprint(p) != "[c]" {
		t.Errorf("PlacedConfigFiles(/r/2) = %v", p)
	}

	// Everything goes with the app.
	if err := db.DeleteApp(ctx, app.ID); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.db.QueryRow(`SELECT (SELECT count(*) FROM config_files) + (SELECT count(*) FROM config_file_placements)`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d rows left after DeleteApp (%v)", n, err)
	}
}
