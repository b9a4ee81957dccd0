package gitserver

import (
	"strings"

	"github.com/gliderlabs/ssh"
)

// measure tells Config.SessionStarted about each session that passed
// authentication and the session limits, and when it ends.
func (s *Server) measure(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		if s.cfg.SessionStarted == nil {
			next(sess)
			return
		}
		kind := "command"
		if strings.HasPrefix(strings.TrimSpace(sess.RawCommand()), "git-") {
			kind = "git"
		}
		done := s.cfg.SessionStarted(kind)
		defer done()
		next(sess)
	}
}
