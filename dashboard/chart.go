package dashboard

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/traffic"
)

// chart is the deploy history drawn as inline SVG by the template: one bar
// per finished deploy, oldest on the left, its height the deploy's
// duration, green for a release, red for a failure.
type chart struct {
	Width, Height int
	Bars          []bar
	Max           string // the longest duration, the top of the scale
	From, To      string
}

type bar struct {
	X, Y, W, H int
	Class      string
	Title      string
}

const (
	chartWidth  = 600
	chartHeight = 120
)

// deployChart draws the newest n finished deploys (deploys is newest first).
func deployChart(deploys []*conductor.Deploy, n int) *chart {
	var done []*conductor.Deploy
	for _, d := range deploys {
		if !d.FinishedAt.IsZero() && (d.Status == conductor.DeploySucceeded || d.Status == conductor.DeployFailed) {
			done = append(done, d)
			if len(done) == n {
				break
			}
		}
	}
	if len(done) == 0 {
		return nil
	}
	var longest time.Duration
	for _, d := range done {
		longest = max(longest, d.FinishedAt.Sub(d.CreatedAt))
	}
	if longest <= 0 {
		longest = time.Second
	}
	c := &chart{Width: chartWidth, Height: chartHeight, Max: fmt.Sprintf("%.1f s", longest.Seconds()),
		From: done[len(done)-1].CreatedAt.UTC().Format("Jan 2 15:04"), To: done[0].CreatedAt.UTC().Format("Jan 2 15:04")}
	slot := chartWidth / n
	if len(done) < n {
		slot = chartWidth / max(len(done), 10)
	}
	for i := range done {
		d := done[len(done)-1-i] // oldest first
		took := d.FinishedAt.Sub(d.CreatedAt)
		h := max(int(float64(chartHeight)*took.Seconds()/longest.Seconds()), 1)
		class := "ok"
		if d.Status == conductor.DeployFailed {
			class = "failed"
		}
		c.Bars = append(c.Bars, bar{X: i * slot, Y: chartHeight - h, W: max(slot-2, 1), H: h, Class: class,
			Title: fmt.Sprintf("%s %s %s: %.1f s", d.CreatedAt.UTC().Format("2006-01-02 15:04"), d.Ref, d.Status, took.Seconds())})
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
