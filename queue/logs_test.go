package queue

import (
	"context"
	"slices"
	"testing"
	"time"
)

// TestFollowLive: a job's log with a Live marker in it ends a pusher's
// FollowLive there, successful, with the lines before it; Follow (logs
// --build) reads past it to the End, with every line and no marker, and so
// do the step headers the dashboard reads.
func TestFollowLive(t *testing.T) {
	ns, err := StartServer("127.0.0.1:0", t.TempDir(), "logs-test-token", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q, err := Connect(ctx, Conn{URLs: ns.ClientURL(), Token: "logs-test-token"}, "logs-test")
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()

	w := q.Logs("job-1")
	w.Printf("-----> Switching traffic")
	w.Printf("-----> Deployed")
	if err := w.Live(ctx); err != nil {
		t.Fatal(err)
	}
	w.Printf("-----> Retiring the previous release")
	w.Printf("       Warning: slow")
	if err := w.End(ctx, true, ""); err != nil {
		t.Fatal(err)
	}

	collect := func(follow func(context.Context, string, func(string)) (*Result, error)) ([]string, *Result) {
		t.Helper()
		var lines []string
		res, err := follow(ctx, "job-1", func(l string) { lines = append(lines, l) })
		if err != nil {
			t.Fatal(err)
		}
		return lines, res
	}
	lines, res := collect(q.FollowLive)
	if want := []string{"-----> Switching traffic", "-----> Deployed"}; !slices.Equal(lines, want) || !res.OK {
		t.Errorf("FollowLive: %q, ok %v; want %q, ok", lines, res.OK, want)
	}
	lines, res = collect(q.Follow)
	if want := []string{"-----> Switching traffic", "-----> Deployed", "-----> Retiring the previous release", "       Warning: slow"}; !slices.Equal(lines, want) || !res.OK {
		t.Errorf("Follow: %q, ok %v; want %q, ok", lines, res.OK, want)
	}
	steps, _, err := q.Steps(ctx, "job-1")
	if err != nil {
		t.Fatal(err)
	}
	var headers []string
	for _, s := range steps {
		headers = append(headers, s.Header)
	}
	if want := []string{"Switching traffic", "Deployed", "Retiring the previous release"}; !slices.Equal(headers, want) {
		t.Errorf("Steps: %q, want %q", headers, want)
	}

	// A failed job has no Live marker: FollowLive waits for the End.
	f := q.Logs("job-2")
	f.Printf("-----> Collecting static files")
	if err := f.End(ctx, false, "collectstatic failed"); err != nil {
		t.Fatal(err)
	}
	res, err = q.FollowLive(ctx, "job-2", func(string) {})
	if err != nil || res.OK || res.Message != "collectstatic failed" {
		t.Errorf("FollowLive of a failed job: %+v, %v", res, err)
	}
}
