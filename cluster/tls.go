package cluster

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"

	"github.com/testcontainers/testcontainers-go"
)

// Where a TLS topology's certificates are copied to in every container.
const (
	tlsCAFile   = "/data/tls-ca.crt"
	tlsCertFile = "/data/tls-node.crt"
	tlsKeyFile  = "/data/tls-node.key"
)

// certAuthority is a topology's own certificate authority, generated when the topology
// starts: it signs one certificate per node (the node's static IP as its only SAN, usable
// as server and as client certificate: replication, the cluster bus and the sentinels'
// links present it) and one client certificate for the topology's clients (Redis
// requires a client certificate by default, tls-auth-clients yes).
type certAuthority struct {
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	pem    []byte
	pool   *x509.CertPool
	client tls.Certificate
}

func newCertAuthority() (*certAuthority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("cluster: CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{projectName}, CommonName: projectName + " test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("cluster: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("cluster: CA certificate: %w", err)
	}
	ca := &certAuthority{cert: cert, key: key, pem: pemBlock("CERTIFICATE", der), pool: x509.NewCertPool()}
	ca.pool.AddCert(cert)
	certPEM, keyPEM, err := ca.issue(projectName+" client", nil)
	if err != nil {
		return nil, err
	}
	if ca.client, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return nil, fmt.Errorf("cluster: client certificate: %w", err)
	}
	return ca, nil
}

// issue returns a certificate signed by the CA, for the IPs given (none: a client-only
// certificate), and its key, both PEM-encoded.
func (ca *certAuthority) issue(name string, ips []net.IP) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: key for %s: %w", name, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{Organization: []string{projectName}, CommonName: name},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		IPAddresses:  ips,
	}
	if len(ips) > 0 {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: certificate for %s: %w", name, err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: key for %s: %w", name, err)
	}
	return pemBlock("CERTIFICATE", der), pemBlock("EC PRIVATE KEY", kder), nil
}

// nodeFiles returns the files a node of a TLS topology needs: the CA and the node's own
// certificate and key, issued for its IP.
func (ca *certAuthority) nodeFiles(n *Node) ([]testcontainers.ContainerFile, error) {
	ip := net.ParseIP(n.IP)
	if ip == nil {
		return nil, fmt.Errorf("cluster: %s: bad IP %q", n.Name, n.IP)
	}
	certPEM, keyPEM, err := ca.issue(n.Name, []net.IP{ip})
	if err != nil {
		return nil, err
	}
	return []testcontainers.ContainerFile{
		{Reader: bytes.NewReader(ca.pem), ContainerFilePath: tlsCAFile, FileMode: 0o644},
		{Reader: bytes.NewReader(certPEM), ContainerFilePath: tlsCertFile, FileMode: 0o644},
		{Reader: bytes.NewReader(keyPEM), ContainerFilePath: tlsKeyFile, FileMode: 0o600},
	}, nil
}

// clientConfig returns a TLS configuration that trusts only the CA and presents the
// client certificate. The server name is left empty: Go checks the IP dialled against
// the node certificate's IP SAN.
func (ca *certAuthority) clientConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		RootCAs:      ca.pool,
		Certificates: []tls.Certificate{ca.client},
	}
}

// tlsArgs are the TLS arguments of a Redis node: TLS only (no plaintext port), and TLS
// for replication and the cluster bus too.
func tlsArgs(port int) []string {
	return []string{
		"--port", "0",
		"--tls-port", fmt.Sprint(port),
		"--tls-cert-file", tlsCertFile,
		"--tls-key-file", tlsKeyFile,
		"--tls-ca-cert-file", tlsCAFile,
		"--tls-auth-clients", "yes",
		"--tls-replication", "yes",
		"--tls-cluster", "yes",
	}
}

// tlsSentinelConf is the TLS part of a sentinel's configuration: TLS only, and TLS to the
// master, the replicas and the other sentinels.
func tlsSentinelConf(port int) []string {
	return []string{
		"port 0",
		fmt.Sprintf("tls-port %d", port),
		"tls-cert-file " + tlsCertFile,
		"tls-key-file " + tlsKeyFile,
		"tls-ca-cert-file " + tlsCAFile,
		"tls-auth-clients yes",
		"tls-replication yes",
	}
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
