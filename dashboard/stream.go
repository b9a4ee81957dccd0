package dashboard

import (
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/internal/termtext"
	"github.com/hasadna/conductor/queue"
)

// sanitize drops terminal escapes from app-controlled text (build output,
// logs): the browser shows it as text anyway (textContent, html/template).
func sanitize(s string) string { return termtext.Sanitize(s) }

// sse writes Server-Sent Events; lines come from several goroutines in
// AppLogs, so writes are serialized.
type sse struct {
	mu sync.Mutex
	w  http.ResponseWriter
	f  http.Flusher
}

func startSSE(w http.ResponseWriter) (*sse, bool) {
	f, ok := w.(http.Flusher)
	if !ok {
		return nil, false
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx passes each event on at once
	w.WriteHeader(http.StatusOK)
	f.Flush()
	return &sse{w: w, f: f}, true
}

func (e *sse) send(event, data string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var b strings.Builder
	if event != "" {
		fmt.Fprintf(&b, "event: %s\n", event)
	}
	// A line is one data field: \r would end it early in the browser.
	for _, l := range strings.Split(strings.ReplaceAll(sanitize(data), "\r", ""), "\n") {
		fmt.Fprintf(&b, "data: %s\n", l)
	}
	b.WriteString("\n")
	if _, err := e.w.Write([]byte(b.String())); err != nil {
		return err
	}
	e.f.Flush()
	return nil
}

// buildLogStream streams a deploy's build log as it is written, from the
// job log stream `logs --build` follows: the whole log of a finished
// deploy, live to its end for a running one, then an "end" event.
func (s *Server) buildLogStream(w http.ResponseWriter, r *http.Request) {
	_, d, err := s.deploy(r)
	if err != nil {
		s.authorizeErr(w, r, err)
		return
	}
	ev, ok := startSSE(w)
	if !ok {
		s.errorPage(w, r, http.StatusInternalServerError, "streaming is not supported here")
		return
	}
	res, err := s.cfg.Live.Follow(r.Context(), d.ID, func(line string) { _ = ev.send("", line) })
	switch {
	case r.Context().Err() != nil:
	case err != nil:
		_ = ev.send("end", "the build log could not be read")
	case res.OK:
		_ = ev.send("end", "-----> Deploy succeeded")
	default:
		_ = ev.send("end", " !     Deploy failed: "+res.Message)
	}
}

// appLogStream streams the last lines of an app's process logs and then
// new ones as they come, from its host (`logs -f`), until the browser
// leaves.
func (s *Server) appLogStream(w http.ResponseWriter, r *http.Request) {
	app, err := s.app(r, "logs")
	if err != nil {
		s.authorizeErr(w, r, err)
		return
	}
	ev, ok := startSSE(w)
	if !ok {
		s.errorPage(w, r, http.StatusInternalServerError, "streaming is not supported here")
		return
	}
	err = s.cfg.Live.AppLogs(r.Context(), app.Host, queue.AppLogsRequest{App: app.Name, Lines: 100, Follow: true},
		func(line string) error { return ev.send("", line) })
	if err != nil && r.Context().Err() == nil {
		_ = ev.send("end", "the logs could not be read: "+conductor.ErrorMessage(err))
	}
}
