// Command sshload is the SSH command load of bench/ssh.sh latency: N workers run
// Conductor commands (`apps`, `config <app>`, …) over SSH at the same time,
// each one after the other for -rounds commands, and it prints a JSON summary
// on stdout: commands that succeeded, that the server refused for its session
// limits ("too many sessions …", exit status 1), and that failed in any other
// way, with latency percentiles.
//
//	sshload -addr 127.0.0.1:2222 -key key -sessions 200 -rounds 5 -commands 'apps;config app-1'
//
// With -mode conn (the default) every command opens its own connection, as
// `ssh host cmd` does: dial, key exchange, authentication, one session. With
// -mode reuse each worker opens one connection first and runs its commands
// as sessions on it, one after the other. Workers wait for each other before
// the first command, so all N start together.
//
// It only connects to loopback addresses, and it stops after -rounds
// commands per worker or -max-duration, whichever comes first.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/hasadna/conductor/internal/readbuf"
)

type options struct {
	addr        string
	user        string
	keys        []string
	sessions    int
	rounds      int
	commands    []string
	mode        string
	timeout     time.Duration
	maxDuration time.Duration
	keepErrors  int
	kex         []string // key exchanges offered, in order; nil: x/crypto's defaults
	ciphers     []string // ciphers offered, in order; nil: x/crypto's defaults
}

// result is one command's outcome.
type result struct {
	kind      string        // "ok", "refused", "error"
	total     time.Duration // connect (conn mode) or session open (reuse) until exit status
	handshake time.Duration // dial + key exchange + auth (conn mode only)
	session   time.Duration // session open until exit status
	err       string
}

type percentiles struct {
	N    int     `json:"n"`
	Min  float64 `json:"min_ms"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
}

type summary struct {
	Addr           string       `json:"addr"`
	Mode           string       `json:"mode"`
	Sessions       int          `json:"sessions"`
	Keys           int          `json:"keys"`
	Rounds         int          `json:"rounds"`
	Commands       []string     `json:"commands"`
	Kex            []string     `json:"kex,omitempty"`
	Ciphers        []string     `json:"ciphers,omitempty"`
	Attempted      int          `json:"attempted"`
	OK             int          `json:"ok"`
	Refused        int          `json:"refused"`
	Errors         int          `json:"errors"`
	ErrorSamples   []string     `json:"error_samples"`
	RefusedSamples []string     `json:"refused_samples"`
	PeakInFlight   int64        `json:"peak_in_flight"`
	WallSeconds    float64      `json:"wall_s"`
	PerSecond      float64      `json:"commands_per_s"`
	StoppedBy      string       `json:"stopped_by"`
	ClientCPU      float64      `json:"client_cpu_s"` // this process's user + system CPU over the run
	Total          percentiles  `json:"latency_ok"`
	Session        percentiles  `json:"latency_ok_session"`
	Handshake      *percentiles `json:"latency_ok_handshake,omitempty"`
	RefusedLatency percentiles  `json:"latency_refused"`
}

func main() {
	var o options
	var keys, cmds, kex, ciphers string
	flag.StringVar(&o.addr, "addr", "", "Conductor's SSH address (loopback only), e.g. 127.0.0.1:2222")
	flag.StringVar(&o.user, "user", "git", "SSH user")
	flag.StringVar(&keys, "key", "", "private key file(s), comma-separated; workers take them in turn")
	flag.IntVar(&o.sessions, "sessions", 200, "concurrent workers (each one session at a time)")
	flag.IntVar(&o.rounds, "rounds", 5, "commands per worker")
	flag.StringVar(&cmds, "commands", "apps", "commands separated by ';'; worker i starts at command i and cycles")
	flag.StringVar(&o.mode, "mode", "conn", "conn: a new connection per command; reuse: one connection per worker")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Second, "limit for one command, connection included")
	flag.DurationVar(&o.maxDuration, "max-duration", 120*time.Second, "stop starting commands after this long")
	flag.StringVar(&kex, "kex", "", "key exchanges to offer, comma-separated (default: x/crypto's, which picks mlkem768x25519-sha256 first)")
	flag.StringVar(&ciphers, "ciphers", "", "ciphers to offer, comma-separated (default: x/crypto's)")
	flag.IntVar(&o.keepErrors, "keep-errors", 10, "error messages kept in the summary")
	cpuProfile := flag.String("cpuprofile", "", "write this process's CPU profile to the file (go tool pprof)")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "sshload:", err)
			os.Exit(2)
		}
		defer pprof.StopCPUProfile()
	}
	o.keys, o.kex, o.ciphers = splitList(keys), splitList(kex), splitList(ciphers)
	for _, c := range strings.Split(cmds, ";") {
		if c = strings.TrimSpace(c); c != "" {
			o.commands = append(o.commands, c)
		}
	}
	if err := run(o); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "sshload:", err)
		os.Exit(2)
	}
}

// splitList splits a comma-separated flag; empty gives nil.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	ip := net.ParseIP(host)
	if host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return nil
	}
	return fmt.Errorf("%s is not a loopback address", addr)
}

func run(o options) error {
	if err := checkLoopback(o.addr); err != nil {
		return err
	}
	if len(o.keys) == 0 || len(o.commands) == 0 || o.sessions < 1 || o.rounds < 1 {
		return errors.New("need -key, -commands, -sessions >= 1 and -rounds >= 1")
	}
	if o.mode != "conn" && o.mode != "reuse" {
		return fmt.Errorf("unknown -mode %q", o.mode)
	}
	var signers []ssh.Signer
	for _, k := range o.keys {
		pem, err := os.ReadFile(k)
		if err != nil {
			return err
		}
		s, err := ssh.ParsePrivateKey(pem)
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		signers = append(signers, s)
	}
	configs := make([]*ssh.ClientConfig, len(signers))
	for i, s := range signers {
		configs[i] = &ssh.ClientConfig{
			Config: ssh.Config{KeyExchanges: o.kex, Ciphers: o.ciphers}, // nil: x/crypto's defaults
			User:   o.user,
			Auth:   []ssh.AuthMethod{ssh.PublicKeys(s)},
			// Loopback only (checked above), against a server started by the
			// benchmark with a fresh host key.
			HostKeyCallback: ssh.InsecureIgnoreHostKey(),
			Timeout:         o.timeout,
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), o.maxDuration)
	defer cancel()

	var (
		mu       sync.Mutex
		results  []result
		inFlight atomic.Int64
		peak     atomic.Int64
		ready    sync.WaitGroup
		done     sync.WaitGroup
		start    = make(chan struct{})
	)
	track := func(d int64) {
		n := inFlight.Add(d)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				return
			}
		}
	}
	ready.Add(o.sessions)
	done.Add(o.sessions)
	for w := 0; w < o.sessions; w++ {
		go func(w int) {
			defer done.Done()
			cfg := configs[w%len(configs)]
			var client *ssh.Client
			var dialErr error
			if o.mode == "reuse" {
				client, dialErr = dial(o, cfg, time.Time{})
				if client != nil {
					defer client.Close()
				}
			}
			ready.Done()
			<-start
			var mine []result
			for r := 0; r < o.rounds && ctx.Err() == nil; r++ {
				command := o.commands[(w+r)%len(o.commands)]
				if dialErr != nil {
					mine = append(mine, result{kind: "error", err: dialErr.Error()})
					break
				}
				track(1)
				res := runOne(o, cfg, client, command)
				track(-1)
				mine = append(mine, res)
			}
			mu.Lock()
			results = append(results, mine...)
			mu.Unlock()
		}(w)
	}
	ready.Wait()
	cpu0 := cpuSeconds()
	t0 := time.Now()
	close(start)
	done.Wait()
	wall := time.Since(t0)
	cpu := cpuSeconds() - cpu0

	s := summary{
		Addr: o.addr, Mode: o.mode, Sessions: o.sessions, Keys: len(o.keys), Rounds: o.rounds,
		Commands: o.commands, Kex: o.kex, Ciphers: o.ciphers, Attempted: len(results), PeakInFlight: peak.Load(),
		WallSeconds: wall.Seconds(), StoppedBy: "rounds", ClientCPU: cpu,
		ErrorSamples: []string{}, RefusedSamples: []string{},
	}
	if ctx.Err() != nil {
		s.StoppedBy = "max-duration"
	}
	var tot, ses, hs, ref []time.Duration
	for _, r := range results {
		switch r.kind {
		case "ok":
			s.OK++
			tot, ses = append(tot, r.total), append(ses, r.session)
			if o.mode == "conn" {
				hs = append(hs, r.handshake)
			}
		case "refused":
			s.Refused++
			ref = append(ref, r.total)
			if len(s.RefusedSamples) < 3 && !slices.Contains(s.RefusedSamples, r.err) {
				s.RefusedSamples = append(s.RefusedSamples, r.err)
			}
		default:
			s.Errors++
			if len(s.ErrorSamples) < o.keepErrors {
				s.ErrorSamples = append(s.ErrorSamples, r.err)
			}
		}
	}
	s.PerSecond = float64(len(results)) / wall.Seconds()
	s.Total, s.Session, s.RefusedLatency = pct(tot), pct(ses), pct(ref)
	if o.mode == "conn" {
		p := pct(hs)
		s.Handshake = &p
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

// runOne runs one command: on a new connection (client == nil) or as a new
// session on client.
func runOne(o options, cfg *ssh.ClientConfig, client *ssh.Client, command string) result {
	var res result
	t0 := time.Now()
	deadline := t0.Add(o.timeout)
	if client == nil {
		var err error
		client, err = dial(o, cfg, deadline)
		if err != nil {
			return result{kind: "error", total: time.Since(t0), err: err.Error()}
		}
		defer client.Close()
		res.handshake = time.Since(t0)
	}
	t1 := time.Now()
	timer := time.AfterFunc(time.Until(deadline), func() { client.Close() })
	defer timer.Stop()
	sess, err := client.NewSession()
	if err != nil {
		return result{kind: "error", total: time.Since(t0), err: "session: " + err.Error()}
	}
	defer sess.Close()
	var stdout, stderr bytes.Buffer
	sess.Stdout, sess.Stderr = &stdout, &stderr
	err = sess.Run(command)
	res.total, res.session = time.Since(t0), time.Since(t1)
	msg := strings.TrimSpace(stderr.String())
	var exit *ssh.ExitError
	switch {
	case err == nil:
		res.kind = "ok"
	case errors.As(err, &exit) && strings.Contains(msg, "too many sessions"):
		res.kind, res.err = "refused", msg
	default:
		res.kind, res.err = "error", fmt.Sprintf("%s: %v: %s", command, err, firstLine(msg))
	}
	return res
}

// cpuSeconds is the user + system CPU time this process has used.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func pct(ds []time.Duration) percentiles {
	if len(ds) == 0 {
		return percentiles{}
	}
	slices.Sort(ds)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	at := func(q float64) float64 {
		i := int(q*float64(len(ds))+0.5) - 1
		i = max(0, min(i, len(ds)-1))
		return ms(ds[i])
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return percentiles{
		N: len(ds), Min: ms(ds[0]), P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: ms(ds[len(ds)-1]),
		Mean: ms(sum / time.Duration(len(ds))),
	}
}

// dial connects and does the key exchange and authentication, under
// deadline unless it is zero. Like the server, it reads the other side's
// version line through a buffer: x/crypto/ssh reads it a byte at a time,
// a read(2) each, and the load generator's CPU is on the same cores as
// the server's.
func dial(o options, cfg *ssh.ClientConfig, deadline time.Time) (*ssh.Client, error) {
	conn, err := net.DialTimeout("tcp", o.addr, o.timeout)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	if !deadline.IsZero() {
		_ = conn.SetDeadline(deadline)
	}
	c, chans, reqs, err := ssh.NewClientConn(readbuf.New(conn), o.addr, cfg)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	return ssh.NewClient(c, chans, reqs), nil
}
