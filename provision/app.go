package provision

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"net"
	"os"
	"strconv"

	"github.com/hasadna/conductor"
)

// PortRange is where app port pairs are allocated.
type PortRange struct{ From, To int }

// NewApp validates and records a new app: its database kind, a free port
// pair and a secret key. Host-side provisioning, the database included,
// happens on its first deploy. Whether a server of that kind is configured
// is Databases.CheckKind's question.
func NewApp(ctx context.Context, store conductor.Store, name, dbKind, host string, ports PortRange) (*conductor.App, error) {
	if err := conductor.ValidateNewAppName(name); err != nil {
		return nil, err
	}
	switch dbKind {
	case conductor.DBSQLite, conductor.DBPostgres, conductor.DBMySQL:
	default:
		return nil, conductor.Errorf(conductor.EINVALID, "unknown database %q: use sqlite, postgres or mysql", dbKind)
	}
	used, err := store.UsedPorts(ctx)
	if err != nil {
		return nil, err
	}
	pair, err := allocatePorts(used, ports)
	if err != nil {
		return nil, err
	}
	app := &conductor.App{Name: name, DBKind: dbKind, Host: host, Ports: pair, SecretKey: RandomString(50)}
	if err := store.CreateApp(ctx, app); err != nil {
		return nil, err
	}
	return app, nil
}

// allocatePorts picks the two lowest ports in the range that no app holds
// and that nothing else is listening on right now.
func allocatePorts(used []int, r PortRange) ([2]int, error) {
	taken := map[int]bool{}
	for _, p := range used {
		taken[p] = true
	}
	var pair [2]int
	n := 0
	for p := r.From; p <= r.To && n < 2; p++ {
		if taken[p] || !portFree(p) {
			continue
		}
		pair[n] = p
		n++
	}
	if n < 2 {
		return pair, conductor.Errorf(conductor.ECONFLICT, "no free ports left in %d-%d", r.From, r.To)
	}
	return pair, nil
}

func portFree(p int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// RandomString returns n random characters from [A-Za-z0-9]: safe in any
// config format, shell-free, and still ~5.95 bits of entropy each.
func RandomString(n int) string {
	b := make([]byte, n)
	for i := range b {
		k, err := rand.Int(rand.Reader, big.NewInt(int64(len(alnum))))
		if err != nil {
			panic(fmt.Sprintf("crypto/rand: %v", err))
		}
		b[i] = alnum[k.Int64()]
	}
	return string(b)
}

// Dirs creates the app's directories, owned by its user. The project dir is
// 0755 so nginx's workers can reach static files; data, logs and run are
// private to the app.
func Dirs(ctx context.Context, l Layout, app string, u *AppUser) error {
	dirs := []struct {
		path string
		mode os.FileMode
	}{
		{l.ProjectDir(app), 0o755},
		{l.ReleasesDir(app), 0o755},
		{l.DataDir(app), 0o711},
		{l.MediaDir(app), 0o755},
		{l.LogDir(app), 0o750},
		{l.RunDir(app), 0o700},
		{l.EnvironmentsDir(app), 0o755},
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			return fmt.Errorf("create %s: %w", d.path, err)
		}
		if err := os.Chmod(d.path, d.mode); err != nil {
			return err
		}
		if err := u.Chown(d.path); err != nil {
			return fmt.Errorf("chown %s: %w", d.path, err)
		}
	}
	return nil
}
