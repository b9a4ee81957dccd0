package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser starts a headless Debian chromium for the test; it runs as root,
// hence no sandbox.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed (make setup installs it): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.Headless,
		chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// newBrowserContext opens a tab with its own cookies (a browser context),
// first without a timeout: a timeout on a tab's first run would close it.
func newBrowserContext(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	c, cancel := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(c, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("new browser context: %v", err)
	}
	return c
}

// within runs a browser step with a timeout, failing the test on error.
func within(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// pollPage waits (up to timeout) until the JavaScript expression is true
// in the tab's page. chromedp's Poll runs in the execution context it last
// saw for the page; just after a navigation that can still be the previous
// page's, which Chrome has destroyed ("Cannot find context with specified
// id", a CI failure). The poll is then run again, in the new page's
// context once chromedp has its event.
func pollPage(expr string, timeout time.Duration) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tab *chromedp.Target) (chromedp.Void, error) {
		deadline := time.Now().Add(timeout)
		for {
			v, err := chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(time.Until(deadline)))(ctx, tab)
			if err == nil || time.Now().After(deadline) || !(strings.Contains(err.Error(), "Cannot find context with specified id") ||
				strings.Contains(err.Error(), "Execution context was destroyed")) {
				return v, err
			}
			select {
			case <-ctx.Done():
				return v, ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
}

// text is the text of the first element matching sel ("" if none).
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(c, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {innerText: ""}).innerText`, sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// evalString evaluates a JavaScript expression in the page.
func evalString(t *testing.T, ctx context.Context, expr string) string {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(c, chromedp.Evaluate[string](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return s
}

// status navigates to url and returns the HTTP status of the document.
func status(t *testing.T, ctx context.Context, url string) int64 {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := chromedp.Run(c, chromedp.NavigateResponse(url))
	if err != nil {
		t.Fatalf("navigate to %s: %v", url, err)
	}
	return resp.Status
}

var loginURLRE = regexp.MustCompile(`https?://\S+/login\?token=\S+`)

func (in *Instance) loginURL(t *testing.T, key string) string {
	t.Helper()
	r := in.SSH(key, "dashboard")
	u := loginURLRE.FindString(r.Stdout)
	if r.Code != 0 || u == "" {
		t.Fatalf("dashboard: %s", r)
	}
	return u
}

// dashboardAudit is the newest audit entries (auditRow: commands_test.go).
func (in *Instance) dashboardAudit(t *testing.T) []auditRow {
	t.Helper()
	r := in.SSH(in.AdminKey, "audit -n 100 --json")
	var rows []auditRow
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &rows) != nil {
		t.Fatalf("audit: %s", r)
	}
	return rows
}

// TestDashboard drives the web dashboard in headless chromium through the
// front nginx: a login through the one-time URL, the app list, a build log
// streaming while a real push runs, a rollback from the page (then served
// by nginx), a developer kept from an app not granted (page, API, action),
// a replayed and an expired login URL, and a cross-site POST refused.
// With CONDUCTOR_SCREENSHOTS=DIR it also saves the main pages there
// (scripts/screenshots.sh).
func TestDashboard(t *testing.T) {
	in := StartInstance(t)
	_, port, _ := net.SplitHostPort(in.HTTPAddr)
	base := "http://conductor.localhost:" + port // chromium resolves *.localhost to loopback
	work := in.WorkTree("hello")
	if r := in.Push(work, "dashapp", "main"); r.Code != 0 { // v1
		t.Fatalf("push v1: %s", r)
	}
	ctx := browser(t)

	// Log in with the one-time URL: the apps page, as the admin.
	login := in.loginURL(t, in.AdminKey)
	if !strings.HasPrefix(login, base+"/login?token=") {
		t.Fatalf("login URL %s is not on %s", login, base)
	}
	// Opening the URL spends nothing (a link previewer may fetch it):
	// the button posts the token.
	within(t, ctx, "open the login URL", chromedp.Navigate(login), chromedp.WaitVisible(`#login`))
	within(t, ctx, "log in", chromedp.Click(`#login`), chromedp.WaitVisible(`#apps tr[data-app="dashapp"]`))
	if who := text(t, ctx, "#whoami"); who != "admin (admin)" {
		t.Errorf("logged in as %q, want admin (admin)", who)
	}
	if row := text(t, ctx, `#apps tr[data-app="dashapp"]`); !strings.Contains(row, "web 1/1") || !strings.Contains(row, "v1") || !strings.Contains(row, "sqlite") {
		t.Errorf("apps page row of dashapp = %q, want its web process, v1 and sqlite", row)
	}
	cookies := text(t, ctx, "#no-such-element") + evalString(t, ctx, `document.cookie`)
	if cookies != "" {
		t.Errorf("the session cookie is readable by scripts (%q): it must be HttpOnly", cookies)
	}

	// The same URL again, in a fresh browser context: refused.
	other := newBrowserContext(t, ctx)
	within(t, other, "replay the login URL", chromedp.Navigate(login), chromedp.Click(`#login`), chromedp.WaitVisible(`#login-error`))
	if msg := text(t, other, "#login-error"); !strings.Contains(msg, "already used") {
		t.Errorf("replayed login URL says %q", msg)
	}
	// An expired one (its expiry moved into the past): refused too.
	expired := in.loginURL(t, in.AdminKey)
	if out, err := exec.Command("sqlite3", filepath.Join(in.Data, "conductor.db"), "UPDATE dashboard_tokens SET expires_at = 0").CombinedOutput(); err != nil {
		t.Fatalf("expire the token: %v\n%s", err, out)
	}
	within(t, other, "an expired login URL", chromedp.Navigate(expired), chromedp.Click(`#login`), chromedp.WaitVisible(`#login-error`))
	if msg := text(t, other, "#login-error"); !strings.Contains(msg, "expired") {
		t.Errorf("expired login URL says %q", msg)
	}
	if code := status(t, other, base+"/apps/dashapp"); code != http.StatusUnauthorized {
		t.Errorf("app page without a session: status %d, want 401", code)
	}

	// A push whose release phase takes 3 s: its build log streams into the
	// deploy page while the push runs.
	pushed := in.pushSlowRelease(t, work, "dashapp", "v2", 3)
	var deployID string
	waitFor(t, "the running deploy in deploys --json", func() bool {
		var rows []struct{ ID, Status string }
		r := in.SSH(in.AdminKey, "deploys dashapp --json")
		_ = json.Unmarshal([]byte(r.Stdout), &rows)
		if len(rows) > 0 && rows[0].Status == "running" {
			deployID = rows[0].ID
		}
		return deployID != ""
	})
	within(t, ctx, "open the running deploy", chromedp.Navigate(base+"/apps/dashapp/deploys/"+deployID),
		pollPage(`document.querySelector("#buildlog").innerText.includes("release phase")`, 20*time.Second))
	select {
	case r := <-pushed:
		t.Fatalf("the push ended before the page showed its release phase: the log did not stream (%s)", r)
	default:
	}
	within(t, ctx, "the end of the build log", pollPage(`document.querySelector("#buildlog").dataset.done === "true"`, 60*time.Second))
	if log := text(t, ctx, "#buildlog"); !strings.Contains(log, "Deploy succeeded") {
		t.Errorf("build log on the page:\n%s", log)
	}
	if r := <-pushed; r.Code != 0 {
		t.Fatalf("push v2: %s", r)
	}
	if _, body, _ := in.Get("dashapp", "/"); !strings.Contains(body, "Hello from Conductor v2<") {
		t.Fatalf("v2 is not served: %s", body)
	}

	// Roll back to v1 from the app page, confirming: nginx serves v1, and
	// the audit trail has it, by the admin through this session.
	within(t, ctx, "roll back", chromedp.Navigate(base+"/apps/dashapp"), chromedp.Click(`#rollback-v1`),
		chromedp.WaitVisible(`#confirm`), chromedp.Click(`#confirm`), chromedp.WaitVisible(`#result`))
	if res := text(t, ctx, "#result"); res != "done" {
		t.Fatalf("rollback from the page: %q\n%s", res, text(t, ctx, "main"))
	}
	if _, body, _ := in.Get("dashapp", "/"); !strings.Contains(body, "Hello from Conductor v1<") {
		t.Errorf("after the rollback from the page, nginx serves: %s", body)
	}
	if rows := in.dashboardAudit(t); rows[0].Op != "rollback" || rows[0].User != "admin" || rows[0].Outcome != "ok" ||
		!strings.HasPrefix(rows[0].Fingerprint, "dashboard session ") {
		t.Errorf("newest audit entry = %+v, want the admin's rollback via the dashboard", rows[0])
	}

	// nginx's traffic log reaches the app page's plots (the GETs above).
	waitFor(t, "traffic plots on the app page", func() bool {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		page, err := chromedp.Run(c, chromedp.Evaluate[string](`fetch('/apps/dashapp').then(r => r.text())`, chromedp.EvalAwaitPromise))
		return err == nil && strings.Contains(page, "Requests per second")
	})
	in.screenshots(t, ctx, base)
	// The deploy chart splits each deploy by step, read from its build log.
	within(t, ctx, "the app page", chromedp.Navigate(base+"/apps/dashapp"))
	if steps := evalString(t, ctx, `Array.from(document.querySelectorAll("figure.chart")[0].querySelectorAll(".key")).map(k => k.textContent.trim()).join("|")`); strings.Count(steps, "|") < 3 {
		t.Errorf("the deploy chart's steps: %q, want the pipeline's", steps)
	} else {
		t.Logf("deploy chart steps: %s", steps)
	}

	// A developer granted dashapp but not dashhidden sees only dashapp, and cannot
	// open, read through the API or act on dashhidden.
	dev := in.NewKey("dev")
	for _, c := range []string{"apps:create dashhidden"} {
		if r := in.SSH(in.AdminKey, c); r.Code != 0 {
			t.Fatalf("%s: %s", c, r)
		}
	}
	if r := in.SSHIn(in.AdminKey, "keys:add dev", readFile(t, dev+".pub")); r.Code != 0 {
		t.Fatalf("keys:add: %s", r)
	}
	if r := in.SSH(in.AdminKey, "access:grant dashapp dev"); r.Code != 0 {
		t.Fatalf("access:grant: %s", r)
	}
	devCtx := newBrowserContext(t, ctx)
	within(t, devCtx, "developer's login", chromedp.Navigate(in.loginURL(t, dev)), chromedp.Click(`#login`), chromedp.WaitVisible(`#apps`))
	if apps := text(t, devCtx, "#apps"); !strings.Contains(apps, "dashapp") || strings.Contains(apps, "dashhidden") {
		t.Errorf("the developer's apps page:\n%s", apps)
	}
	if code := status(t, devCtx, base+"/apps/dashhidden"); code != http.StatusNotFound {
		t.Errorf("developer opening an app not granted: status %d, want 404", code)
	}
	if code := status(t, devCtx, base+"/hosts"); code != http.StatusForbidden {
		t.Errorf("developer opening hosts: status %d, want 403", code)
	}
	within(t, devCtx, "developer's app page", chromedp.Navigate(base+"/apps/dashapp"), chromedp.WaitVisible(`#restart`))
	// The developer's own CSRF token, so only the permission can refuse.
	probe := `(async () => {
		const csrf = document.querySelector('input[name=csrf]').value;
		const api = await fetch('/api/apps/dashhidden');
		const act = await fetch('/apps/dashhidden/maintenance-on', {method: 'POST', body: new URLSearchParams({csrf, confirm: 'yes'})});
		const list = await (await fetch('/api/apps')).json();
		return [api.status, act.status, list.map(a => a.name).join(',')].join(' ');
	})()`
	probeCtx, cancelProbe := context.WithTimeout(devCtx, 20*time.Second)
	defer cancelProbe()
	got, err := chromedp.Run(probeCtx, chromedp.Evaluate[string](probe, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("developer's API probe: %v", err)
	}
	if got != "404 404 dashapp" {
		t.Errorf("developer's API read of dashhidden, action on dashhidden, app list = %q, want 404 404 dashapp", got)
	}
	if r := in.SSH(in.AdminKey, "maintenance dashhidden --json"); !strings.Contains(r.Stdout, `"on": false`) {
		t.Errorf("dashhidden went into maintenance: %s", r)
	}
	if rows := in.dashboardAudit(t); rows[0].Op != "maintenance:on" || rows[0].User != "dev" || rows[0].Outcome != "denied" {
		t.Errorf("newest audit entry = %+v, want dev's denied maintenance:on", rows[0])
	}

	// dashboard:sessions lists the developer's session; dashboard:logout
	// ends it at once.
	if r := in.SSH(dev, "dashboard:sessions --json"); r.Code != 0 || strings.Count(r.Stdout, `"id"`) != 1 || !strings.Contains(r.Stdout, `"user": "dev"`) {
		t.Errorf("dev's dashboard:sessions: %s", r)
	}
	if r := in.SSH(dev, "dashboard:logout --all"); r.Code != 0 || !strings.Contains(r.Stdout, "Ended 1") {
		t.Errorf("dashboard:logout --all: %s", r)
	}
	if code := status(t, devCtx, base+"/apps/dashapp"); code != http.StatusUnauthorized {
		t.Errorf("after dashboard:logout, the developer's browser gets status %d, want 401", code)
	}

	// A page on another site posting to the dashboard (with the admin's
	// browser, logged in): refused, nothing done.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><form id=f method=post action="%s/apps/dashapp/maintenance-on">
<input name=confirm value=yes><input name=csrf value=guess></form><script>document.getElementById('f').submit()</script>`, base)
	}))
	defer evil.Close()
	within(t, ctx, "the cross-site form", chromedp.Navigate(evil.URL),
		pollPage(`location.host.startsWith("conductor.localhost") && document.readyState === "complete"`, 20*time.Second))
	if msg := text(t, ctx, "#error"); !strings.Contains(msg, "another site") {
		t.Errorf("cross-site POST answered %q, want a refusal", msg)
	}
	if r := in.SSH(in.AdminKey, "maintenance dashapp --json"); !strings.Contains(r.Stdout, `"on": false`) {
		t.Errorf("the cross-site POST put dashapp in maintenance: %s", r)
	}
}

// screenshots saves the main pages as PNGs in $CONDUCTOR_SCREENSHOTS
// (scripts/screenshots.sh sets it to docs/screenshots).
func (in *Instance) screenshots(t *testing.T, ctx context.Context, base string) {
	dir := os.Getenv("CONDUCTOR_SCREENSHOTS")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{"apps": "/", "app": "/apps/dashapp", "audit": "/audit", "hosts": "/hosts"} {
		within(t, ctx, "open "+path, chromedp.Navigate(base+path))
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
		if err != nil {
			t.Fatalf("screenshot of %s: %v", path, err)
		}
		if err := os.WriteFile(filepath.Join(dir, "dashboard-"+name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
