// Package queue carries deploy jobs, their source archives and their log
// lines over NATS JetStream. In self-contained mode Conductor embeds the
// nats-server; with several hosts it connects to an external cluster.
package queue

import (
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Server is an embedded nats-server with JetStream, storing under a directory.
type Server struct {
	ns *server.Server
}

// StartServer starts an embedded nats-server listening on addr (host:port;
// port 0 picks a free one) with its JetStream file store in storeDir. Clients
// must present token: the port is never open to anyone who finds it.
//
// With tlsConfig (ServerTLS) clients must speak TLS; nil is for tests that
// run the server on loopback.
func StartServer(addr, storeDir, token string, tlsConfig *tls.Config) (*Server, error) {
	if token == "" {
		return nil, fmt.Errorf("start nats: an auth token is required")
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("nats listen address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("nats listen port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	ns, err := server.NewServer(&server.Options{
		ServerName:    "conductor",
		Host:          host,
		Port:          port,
		Authorization: token,
		JetStream:     true,
		StoreDir:      storeDir,
		NoSigs:        true, // Conductor handles signals itself
		NoLog:         true,
		TLS:           tlsConfig != nil,
		TLSConfig:     tlsConfig,
		TLSTimeout:    5, // seconds; a loaded host's handshakes take a while
	})
	if err != nil {
		return nil, fmt.Errorf("start nats: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("start nats: not ready after 30s")
	}
	return &Server{ns: ns}, nil
}

// ClientURL is the URL clients (the hook, workers) connect to.
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// Shutdown stops the server and waits for it to finish.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}
