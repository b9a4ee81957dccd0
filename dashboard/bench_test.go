package dashboard

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/agent"
	"github.com/hasadna/conductor/queue"
	"github.com/hasadna/conductor/sqlite"
)

// instantHosts answers for the apps' hosts at once: the benchmark measures
// the dashboard's own time (state, templates), not a host's round trip.
type instantHosts struct{}

func (instantHosts) Processes(context.Context, *conductor.App) ([]agent.Process, error) {
	return []agent.Process{{Type: "web", Watcher: "w", Running: 1, State: "active"}, {Type: "worker", Watcher: "x", Running: 1, State: "active"}}, nil
}
func (instantHosts) Hosts(context.Context) ([]*queue.HostInfo, error) { return nil, nil }
func (instantHosts) Follow(context.Context, string, func(string)) (*queue.Result, error) {
	return &queue.Result{OK: true}, nil
}
func (instantHosts) AppLogs(context.Context, string, queue.AppLogsRequest, func(string) error) error {
	return nil
}

// Steps: every deploy's log has the pipeline's headers, a second apart.
func (instantHosts) Steps(context.Context, string) ([]queue.StepTime, time.Time, error) {
	t := time.Now()
	var steps []queue.StepTime
	for i, h := range []string{"Deploying", "Provisioning the app", "Unpacking the source", "Installing dependencies", "Collecting static files", "Running the release phase", "Starting web", "Switching traffic"} {
		steps = append(steps, queue.StepTime{Header: h, At: t.Add(time.Duration(i) * time.Second)})
	}
	return steps, t.Add(8 * time.Second), nil
}

type noCommands struct{}

func (noCommands) RunAs(context.Context, *conductor.User, string, []string, io.Writer) error {
	return nil
}

// benchState fills a real SQLite state with apps×deploys (every fifth
// deploy failed, the others released, each app with a few config vars)
// and logs an admin in; it returns the dashboard and its session cookie.
func benchState(b *testing.B, apps, deploysPerApp int) (*Server, *http.Cookie) {
	b.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "conductor.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	admin, _, err := db.AddUserKey(ctx, "admin", true, "SHA256:bench", "ssh-ed25519 AAAA bench")
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now().Add(-30 * 24 * time.Hour)
	for i := range apps {
		app := &conductor.App{Name: fmt.Sprintf("app-%03d", i), DBKind: conductor.DBSQLite, Ports: [2]int{20000 + 2*i, 20001 + 2*i}, SecretKey: "sk", Host: "local"}
		if err := db.CreateApp(ctx, app); err != nil {
			b.Fatal(err)
		}
		if err := db.SetConfig(ctx, app.ID, map[string]string{"DEBUG": "0", "SENTRY_DSN": "x", "ALLOWED_HOSTS": "*"}); err != nil {
			b.Fatal(err)
		}
		for j := range deploysPerApp {
			id := fmt.Sprintf("%s-%04d", app.Name, j)
			d := &conductor.Deploy{ID: id, AppID: app.ID, Rev: fmt.Sprintf("%040x", j), Ref: "refs/heads/main", Pusher: "admin",
				Status: conductor.DeployRunning, CreatedAt: start.Add(time.Duration(j) * time.Hour)}
			if err := db.CreateDeploy(ctx, d); err != nil {
				b.Fatal(err)
			}
			if j%5 == 4 {
				err = db.FinishDeploy(ctx, id, conductor.DeployFailed, "the health check failed")
			} else {
				err = db.AddRelease(ctx, &conductor.Release{ID: id, AppID: app.ID, Rev: d.Rev, Port: app.Ports[j%2], Dir: "/srv/" + id,
					Pusher: "admin", Description: "deploy of refs/heads/main", Duration: time.Duration(1+j%7) * time.Second})
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	token, cookie := conductor.NewDashboardSecret(), conductor.NewDashboardSecret()
	if err := db.AddDashboardToken(ctx, admin.ID, "SHA256:bench", conductor.HashDashboardSecret(token), time.Now().Add(time.Minute)); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	if _, err := db.UseDashboardToken(ctx, conductor.HashDashboardSecret(token), conductor.HashDashboardSecret(cookie), "bench", now, now.Add(time.Hour)); err != nil {
		b.Fatal(err)
	}
	s, err := New(Config{Store: db, Commands: noCommands{}, Live: instantHosts{}, AppURL: func(a string) string { return "http://" + a + ".example.com/" }})
	if err != nil {
		b.Fatal(err)
	}
	return s, &http.Cookie{Name: cookieName, Value: cookie}
}

// BenchmarkPages renders the apps page and an app's page with 200 apps and
// 10,000 deploys in the state (docs/benchmarks.md, "Dashboard pages").
func BenchmarkPages(b *testing.B) {
	s, cookie := benchState(b, 200, 50)
	for _, path := range []string{"/", "/apps/app-123", "/api/apps", "/audit"} {
		b.Run(path, func(b *testing.B) {
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, path, nil)
				req.AddCookie(cookie)
				rec := httptest.NewRecorder()
				s.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("GET %s: %d\n%s", path, rec.Code, rec.Body)
				}
			}
		})
	}
}
