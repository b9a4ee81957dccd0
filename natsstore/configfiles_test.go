package natsstore_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/hasadna/conductor"
)

// TestConfigFilesOverNATS: a worker reads config files over NATS, the
// largest allowed one included (it must fit one reply of the server's
// default payload limit), and records where it placed them.
func TestConfigFilesOverNATS(t *testing.T) {
	ctx := context.Background()
	db, c, _ := startState(t)

	app := &conductor.App{Name: "shop", DBKind: conductor.DBSQLite, Host: "h1", Ports: [2]int{20000, 20001}, SecretKey: "s3cret"}
	if err := db.CreateApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	// Binary content, every byte value, at the size limit: base64 in JSON.
	big := make([]byte, conductor.MaxConfigFileSize)
	for i := range big {
		big[i] = byte(i * 7)
	}
	if _, err := db.PutConfigFile(ctx, app.ID, "keys/big.bin", big, "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PutConfigFile(ctx, app.ID, "secrets.json", []byte(`{"k": "v"}`), "admin"); err != nil {
		t.Fatal(err)
	}
	files, err := c.ConfigFiles(ctx, app.ID)
	if err != nil || len(files) != 2 || files[0].Path != "keys/big.bin" || files[0].Size != int64(len(big)) || files[1].SHA256 == "" || files[1].UpdatedAt.IsZero() {
		t.Fatalf("ConfigFiles over NATS = %+v, %v", files, err)
	}
	got, err := c.ConfigFileContent(ctx, app.ID, "keys/big.bin")
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("ConfigFileContent of a %d-byte file over NATS: %d bytes, %v", len(big), len(got), err)
	}
	if _, err := c.ConfigFileContent(ctx, app.ID, "nope"); conductor.ErrorCode(err) != conductor.ENOTFOUND {
		t.Errorf("ConfigFileContent(nope) = %v, want ENOTFOUND", err)
	}
	if err := c.SetPlacedConfigFiles(ctx, app.ID, "/srv/r1", []string{"keys/big.bin", "secrets.json"}); err != nil {
		t.Fatal(err)
	}
	if p, err := c.PlacedConfigFiles(ctx, app.ID, "/srv/r1"); err != nil || fmt.Sprint(p) != "[keys/big.bin secrets.json]" {
		t.Errorf("PlacedConfigFiles over NATS = %v, %v", p, err)
	}
}
