package dashboard

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/hasadna/conductor"
)

// maxProcesses is ps:scale's bound (gitserver.MaxProcesses), checked here
// too so a bad form is refused before the confirmation page.
const maxProcesses = 16

// actionCommand turns a form into the SSH command it stands for, after
// checking its fields: the dashboard never passes a field through
// unchecked, and builds argument lists, never a command line.
func actionCommand(app, action string, form func(string) string) (op string, args []string, what string, err error) {
	switch action {
	case "rollback":
		n, err := strconv.Atoi(strings.TrimPrefix(form("release"), "v"))
		if err != nil || n < 1 {
			return "", nil, "", conductor.Errorf(conductor.EINVALID, "pick a release to roll back to")
		}
		v := "v" + strconv.Itoa(n)
		return "rollback", []string{"rollback", app, v}, fmt.Sprintf("Roll %s back to %s (its code, virtualenv and config; migrations are not reversed)", app, v), nil
	case "restart":
		return "ps:restart", []string{"ps:restart", app}, fmt.Sprintf("Restart %s's processes (as a deploy: no request dropped)", app), nil
	case "scale":
		typ := form("type")
		if err := conductor.ValidateProcessType(typ); err != nil {
			return "", nil, "", err
		}
		n, err := strconv.Atoi(form("count"))
		if err != nil || n < 0 || n > maxProcesses {
			return "", nil, "", conductor.Errorf(conductor.EINVALID, "the count must be a number from 0 to %d", maxProcesses)
		}
		return "ps:scale", []string{"ps:scale", app, typ + "=" + strconv.Itoa(n)}, fmt.Sprintf("Scale %s's %s processes to %d", app, typ, n), nil
	case "maintenance-on":
		args := []string{"maintenance:on", app}
		if msg := form("message"); msg != "" {
			if err := conductor.ValidateMaintenanceMessage(msg); err != nil {
				return "", nil, "", err
			}
			args = append(args, "--message="+msg) // one word: a message is never read as a flag
		}
		return "maintenance:on", args, fmt.Sprintf("Put %s in maintenance: nginx answers 503 with the maintenance page", app), nil
	case "maintenance-off":
		return "maintenance:off", []string{"maintenance:off", app}, fmt.Sprintf("Take %s out of maintenance", app), nil
	}
	return "", nil, "", conductor.Errorf(conductor.ENOTFOUND, "no such action")
}

// action runs one of the app page's buttons: first a confirmation page,
// then (confirm=yes) the SSH twin as the user, audited like it.
func (s *Server) action(w http.ResponseWriter, r *http.Request) {
	x := sessionFrom(r.Context())
	name := r.PathValue("app")
	op, args, what, err := actionCommand(name, r.PathValue("action"), r.PostFormValue)
	if err != nil {
		s.authorizeErr(w, r, err)
		return
	}
	// Refused before anything is shown; the command authorizes again (and
	// records a refusal in the audit trail) if it runs.
	app, err := s.app(r, op)
	if err != nil {
		if r.PostFormValue("confirm") == "yes" && conductor.ErrorCode(err) != conductor.EINTERNAL {
			_ = s.cfg.Commands.RunAs(r.Context(), x.user, x.via(), args, &bytes.Buffer{}) // audited as denied
		}
		s.authorizeErr(w, r, err)
		return
	}
	fields := map[string]string{}
	for _, k := range []string{"release", "type", "count", "message"} {
		if v := r.PostFormValue(k); v != "" {
			fields[k] = v
		}
	}
	if r.PostFormValue("confirm") != "yes" {
		s.render(w, r, "confirm.html", map[string]any{"Title": "Confirm", "App": app, "What": what,
			"Action": r.PathValue("action"), "Fields": fields})
		return
	}
	var out bytes.Buffer
	err = s.cfg.Commands.RunAs(r.Context(), x.user, x.via(), args, &out)
	slog.Info("dashboard: action", "user", x.user.Name, "app", app.Name, "op", op, "ok", err == nil)
	status := http.StatusOK
	if err != nil {
		status = http.StatusUnprocessableEntity
	}
	w.WriteHeader(status)
	s.render(w, r, "result.html", map[string]any{"Title": op, "App": app, "What": what,
		"Output": sanitize(out.String()), "Error": conductor.ErrorMessage(err)})
}
