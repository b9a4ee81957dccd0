package dashboard

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/traffic"
)

// chart is drawn as inline SVG by the template (_chart.html): bars, each
// a stack of segments, oldest on the left.
type chart struct {
	Width, Height int
	Bars          []bar
	Legend        []legendItem
	Max           string // the top of the scale
	From, To      string
}

type bar struct {
	X, Y, W, H int
	Class      string // ok, failed, other
	Fill       string // a step's color ("": the class's)
	Title      string
}

type legendItem struct{ Name, Fill string }

const (
	chartWidth  = 600
	chartHeight = 120
	// stepsWithin bounds how long a page waits for the build logs the
	// step chart reads (cached once read); past it, a deploy's bar is its
	// total only.
	stepsWithin = 1500 * time.Millisecond
)

// stepColors tell the steps apart, in the order they first appear.
var stepColors = []string{"#2563eb", "#16a34a", "#f59e0b", "#9333ea", "#0891b2", "#db2777", "#65a30d", "#ea580c", "#475569", "#a16207"}

// segment is one step of one deploy.
type segment struct {
	Step string
	Took time.Duration
}

// stepName is a step header without its details ("Deploying hello
// (3f2a…) as …" is "Deploying hello").
func stepName(header string) string {
	for _, sep := range []string{" (", ": ", " as ", "…"} {
		if i := strings.Index(header, sep); i > 0 {
			header = header[:i]
		}
	}
	header = strings.TrimSpace(sanitize(header))
	if len(header) > 40 {
		header = header[:40]
	}
	return header
}

// finished lists the newest n finished deploys (deploys is newest first).
func finished(deploys []*conductor.Deploy, n int) []*conductor.Deploy {
	var done []*conductor.Deploy
	for _, d := range deploys {
		if !d.FinishedAt.IsZero() && (d.Status == conductor.DeploySucceeded || d.Status == conductor.DeployFailed) {
			done = append(done, d)
			if len(done) == n {
				break
			}
		}
	}
	return done
}

// deploySteps reads the step durations of deploys from their build logs,
// 8 at a time, within stepsWithin; a deploy whose log is gone or not read
// in time has none.
func (s *Server) deploySteps(ctx context.Context, deploys []*conductor.Deploy) map[string][]segment {
	out := map[string][]segment{}
	var mu sync.Mutex
	ctx, cancel := context.WithTimeout(ctx, stepsWithin)
	defer cancel()
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, d := range deploys {
		if v, ok := s.steps.Load(d.ID); ok {
			out[d.ID] = v.([]segment)
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			steps, end, err := s.cfg.Live.Steps(ctx, d.ID)
			if err != nil || len(steps) == 0 {
				return
			}
			var segs []segment
			for i, st := range steps {
				next := end
				if i+1 < len(steps) {
					next = steps[i+1].At
				}
				segs = append(segs, segment{Step: stepName(st.Header), Took: max(next.Sub(st.At), 0)})
			}
			s.steps.Store(d.ID, segs)
			mu.Lock()
			out[d.ID] = segs
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// deployChart draws the deploys (newest first) as stacked bars of their
// steps' durations; a deploy without steps is one bar of its total time.
func deployChart(done []*conductor.Deploy, steps map[string][]segment, slots int) *chart {
	if len(done) == 0 {
		return nil
	}
	total := func(d *conductor.Deploy) time.Duration {
		if segs := steps[d.ID]; len(segs) > 0 {
			var t time.Duration
			for _, sg := range segs {
				t += sg.Took
			}
			return t
		}
		return d.FinishedAt.Sub(d.CreatedAt)
	}
	var longest time.Duration
	for _, d := range done {
		longest = max(longest, total(d))
	}
	if longest <= 0 {
		longest = time.Second
	}
	c := &chart{Width: chartWidth, Height: chartHeight, Max: fmt.Sprintf("%.1f s", longest.Seconds()),
		From: done[len(done)-1].CreatedAt.UTC().Format("Jan 2 15:04"), To: done[0].CreatedAt.UTC().Format("Jan 2 15:04")}
	colors := map[string]string{}
	slot := chartWidth / max(slots, 10)
	scale := func(d time.Duration) int { return int(float64(chartHeight) * d.Seconds() / longest.Seconds()) }
	for i := range done {
		d := done[len(done)-1-i] // oldest first
		class := "ok"
		if d.Status == conductor.DeployFailed {
			class = "failed"
		}
		label := fmt.Sprintf("%s %s %s", d.CreatedAt.UTC().Format("2006-01-02 15:04"), d.Ref, d.Status)
		segs := steps[d.ID]
		if len(segs) == 0 {
			h := max(scale(d.FinishedAt.Sub(d.CreatedAt)), 1)
			c.Bars = append(c.Bars, bar{X: i * slot, Y: chartHeight - h, W: max(slot-2, 1), H: h, Class: class,
				Title: fmt.Sprintf("%s: %.1f s (its build log is no longer kept: no steps)", label, d.FinishedAt.Sub(d.CreatedAt).Seconds())})
			continue
		}
		y := chartHeight
		for _, sg := range segs {
			h := scale(sg.Took)
			if h == 0 { // too short to see (the closing "Deployed …" line)
				continue
			}
			fill, ok := colors[sg.Step]
			if !ok {
				fill = stepColors[len(c.Legend)%len(stepColors)]
				colors[sg.Step] = fill
				c.Legend = append(c.Legend, legendItem{sg.Step, fill})
			}
			y -= h
			// No class: CSS would override the step's fill.
			c.Bars = append(c.Bars, bar{X: i * slot, Y: y, W: max(slot-2, 1), H: h, Fill: fill,
				Title: fmt.Sprintf("%s · %s: %.2f s", label, sg.Step, sg.Took.Seconds())})
		}
		if class == "failed" { // a red cap marks a failed deploy
			c.Bars = append(c.Bars, bar{X: i * slot, Y: max(y-3, 0), W: max(slot-2, 1), H: 3, Class: "failed", Title: label + ": " + firstLine(d.Error)})
		}
	}
	return c
}

// trafficView is the app page's traffic section: the last hour, per minute.
type trafficView struct {
	Error         string
	Requests      *chart
	Errors        *chart
	P50, P95, P99 *chart
}

func (s *Server) traffic(ctx context.Context, app *conductor.App) *trafficView {
	if s.cfg.Traffic == nil {
		return &trafficView{Error: "no traffic data"}
	}
	pts, err := s.cfg.Traffic.Series(ctx, app.Name, time.Hour, trafficStep)
	if err != nil {
		slog.Warn("dashboard: traffic", "app", app.Name, "err", err)
		return &trafficView{Error: "no traffic data"}
	}
	total := 0
	for _, p := range pts {
		total += p.Requests
	}
	if total == 0 {
		return &trafficView{Error: "no requests in the last hour"}
	}
	perSecond := func(n int) float64 { return float64(n) / trafficStep.Seconds() }
	return &trafficView{
		Requests: series(pts, "req/s", func(p traffic.Point) float64 { return perSecond(p.Requests) }),
		Errors:   series(pts, "5xx/s", func(p traffic.Point) float64 { return perSecond(p.Errors5xx) }),
		P50:      series(pts, "ms", func(p traffic.Point) float64 { return float64(p.P50) / float64(time.Millisecond) }),
		P95:      series(pts, "ms", func(p traffic.Point) float64 { return float64(p.P95) / float64(time.Millisecond) }),
		P99:      series(pts, "ms", func(p traffic.Point) float64 { return float64(p.P99) / float64(time.Millisecond) }),
	}
}

// trafficStep is the traffic plots' resolution.
const trafficStep = time.Minute

// series draws one value of a traffic series as bars.
func series(pts []traffic.Point, unit string, val func(traffic.Point) float64) *chart {
	top := 0.0
	for _, p := range pts {
		top = max(top, val(p))
	}
	c := &chart{Width: chartWidth, Height: chartHeight / 2, Max: fmt.Sprintf("%.2f %s", top, unit),
		From: pts[0].Time.UTC().Format("15:04"), To: pts[len(pts)-1].Time.UTC().Format("15:04")}
	if top == 0 {
		top = 1
	}
	slot := max(chartWidth/len(pts), 1)
	for i, p := range pts {
		h := int(float64(c.Height) * val(p) / top)
		c.Bars = append(c.Bars, bar{X: i * slot, Y: c.Height - h, W: max(slot-1, 1), H: h, Class: "ok",
			Title: fmt.Sprintf("%s: %.2f %s", p.Time.UTC().Format("15:04"), val(p), unit)})
	}
	return c
}
