package queue

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/hasadna/conductor/internal/lazyre"
)

// The embedded NATS server's TLS: a private CA made once under the data
// dir (workers trust it through --nats-ca-file) and a server certificate
// signed by it, made again at each start for the names the server has then
// (its addresses change; the CA does not).
const (
	TLSDir    = "nats-tls"
	CAFile    = "ca.pem" // the CA certificate: public, copied to workers
	caKeyFile = "ca.key" // the CA's key: 0600, never leaves this host
)

// ServerTLS returns the TLS configuration of the embedded NATS server and
// the path of the CA certificate that clients verify it with. dir is
// <data>/nats-tls; names are the DNS names and IP addresses clients dial.
func ServerTLS(dir string, names []string) (*tls.Config, string, error) {
	ca, caKey, err := loadOrMakeCA(dir)
	if err != nil {
		return nil, "", fmt.Errorf("nats tls: %w", err)
	}
	leaf, err := serverCert(ca, caKey, names)
	if err != nil {
		return nil, "", fmt.Errorf("nats tls: server certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{leaf}, MinVersion: tls.VersionTLS12}, filepath.Join(dir, CAFile), nil
}

func loadOrMakeCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, CAFile))
	if errors.Is(err, fs.ErrNotExist) {
		return makeCA(dir)
	} else if err != nil {
		return nil, nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, caKeyFile))
	if err != nil {
		return nil, nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", dir, err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("%s: the CA key is not ECDSA", dir)
	}
	ca, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, nil, err
	}
	if time.Now().After(ca.NotAfter) {
		return nil, nil, fmt.Errorf("the CA in %s expired on %s: move the directory away to make a new one, and give workers its ca.pem", dir, ca.NotAfter.Format(time.DateOnly))
	}
	return ca, key, nil
}

// makeCA makes the CA, valid for 20 years: replacing it means copying a
// new ca.pem to every worker.
func makeCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "Conductor NATS CA " + host},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(20, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	// The key first: a ca.pem without its key would be unusable.
	if err := writeAtomic(filepath.Join(dir, caKeyFile), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, nil, err
	}
	if err := writeAtomic(filepath.Join(dir, CAFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, nil, err
	}
	return ca, key, nil
}

func serverCert(ca *x509.Certificate, caKey *ecdsa.PrivateKey, names []string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "conductor nats"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     ca.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if n != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// nameRE is a DNS name as a certificate may hold it: letters, digits and
// hyphens in dot-separated labels.
var nameRE = lazyre.New(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)

// CheckServerName says why name cannot go into the server's certificate
// (--nats-tls-name), or nil.
func CheckServerName(name string) error {
	if net.ParseIP(name) != nil || (len(name) <= 253 && nameRE.MatchString(name)) {
		return nil
	}
	return fmt.Errorf("%q is neither a DNS name nor an IP address", name)
}

// ServerNames are the names the embedded server's certificate is made for:
// localhost, the host name, every address of the host's interfaces, the
// listen address's host when it names one, and extra (--nats-tls-name).
func ServerNames(listenAddr string, extra []string) []string {
	names := []string{"localhost", "127.0.0.1", "::1"}
	if h, err := os.Hostname(); err == nil && h != "" {
		names = append(names, h)
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				names = append(names, n.IP.String())
			}
		}
	}
	if h, _, err := net.SplitHostPort(listenAddr); err == nil && h != "" {
		if ip := net.ParseIP(h); ip == nil || !ip.IsUnspecified() {
			names = append(names, h)
		}
	}
	names = append(names, extra...)
	seen := map[string]bool{}
	out := names[:0]
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// connectError says what failed to connect, and for a TLS certificate that
// does not verify, what to do about it.
func connectError(urls string, err error) error {
	var unknownCA x509.UnknownAuthorityError
	var wrongName x509.HostnameError
	switch {
	case errors.As(err, &unknownCA):
		return fmt.Errorf("connect to nats %s: %w (give the certificate of the CA that signed the server's with --nats-ca-file; "+
			"the conductor's embedded server is signed by its <data>/%s/%s)", urls, err, TLSDir, CAFile)
	case errors.As(err, &wrongName):
		return fmt.Errorf("connect to nats %s: %w (dial a name the certificate holds, or start the conductor with --nats-tls-name NAME)", urls, err)
	}
	return fmt.Errorf("connect to nats %s: %w", urls, err)
}
