// Package tlscert checks the certificate and key JupyterHub is given before
// anything is changed: both files there, the key private, both parsable,
// the key matching the certificate, the certificate current.
package tlscert

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"

	"github.com/openbis/provision/executors"
)

// ExpiryWarning is how long before it expires a certificate draws a warning.
const ExpiryWarning = 30 * 24 * time.Hour

// Check validates the PEM certificate at certPath and its private key at
// keyPath as of now, for the host name host ("" skips that check). Problems that would keep JupyterHub from serving TLS
// are errors; facts worth knowing (expiry soon, self-signed) are warnings.
// The key's content never appears in a message.
func Check(certPath, keyPath, host string, now time.Time) (warnings []string, err error) {
	certPEM, certErr := readFile("certificate", certPath)
	keyPEM, keyErr := readFile("private key", keyPath)
	if err := errors.Join(certErr, keyErr); err != nil {
		return nil, err
	}
	if err := checkKeyMode(keyPath); err != nil {
		return nil, err
	}
	cert, err := parseCert(certPath, certPEM)
	if err != nil {
		return nil, err
	}
	key, err := parseKey(keyPath, keyPEM)
	if err != nil {
		return nil, err
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("private key %s does not belong to certificate %s (their public keys differ): pick the key the certificate was issued for", keyPath, certPath)
	}

	date := func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 MST") }
	switch {
	case now.After(cert.NotAfter):
		return nil, fmt.Errorf("certificate %s expired on %s: renew it", certPath, date(cert.NotAfter))
	case now.Before(cert.NotBefore):
		return nil, fmt.Errorf("certificate %s is not valid before %s (is this host's clock right?)", certPath, date(cert.NotBefore))
	case cert.NotAfter.Sub(now) < ExpiryWarning:
		days := int(cert.NotAfter.Sub(now).Hours() / 24)
		warnings = append(warnings, fmt.Sprintf("certificate %s expires on %s, in %d days: renew it soon", certPath, date(cert.NotAfter), days))
	}
	if host != "" {
		if err := cert.VerifyHostname(host); err != nil {
			warnings = append(warnings, fmt.Sprintf("certificate %s is not valid for %s (%v): browsers and the ELN's calls to https://%s will fail", certPath, host, err, host))
		}
	}
	if isSelfSigned(cert) {
		warnings = append(warnings, fmt.Sprintf("certificate %s is self-signed: browsers warn, and the openBIS ELN's calls to "+
			"JupyterHub fail until it is trusted; a self-signed certificate is the first cause the guide gives for the "+
			"\"Session is no longer valid. Please log in again\" error (notebooks then need verify_certificates=False); "+
			"use a CA-signed certificate in production", certPath))
	}
	if k, ok := cert.PublicKey.(*rsa.PublicKey); ok && k.N.BitLen() < 2048 {
		warnings = append(warnings, fmt.Sprintf("certificate %s has a %d-bit RSA key; use at least 2048 bits", certPath, k.N.BitLen()))
	}
	return warnings, nil
}

func readFile(what, path string) ([]byte, error) {
	st, err := executors.ReadFile(path)
	switch {
	case err != nil:
		return nil, fmt.Errorf("read %s file: %w", what, err)
	case !st.Exists:
		return nil, fmt.Errorf("%s file %s does not exist", what, path)
	}
	return st.Content, nil
}

// checkKeyMode refuses a key anyone on the host can read.
func checkKeyMode(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("private key file: %w", err)
	}
	if m := fi.Mode().Perm(); m&0o004 != 0 {
		return fmt.Errorf("private key file %s is readable by every user (mode %04o): run chmod 600 %s", path, m, path)
	}
	return nil
}

// parseCert returns the first certificate of a PEM file, the server's own;
// the rest is its chain.
func parseCert(path string, data []byte) (*x509.Certificate, error) {
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, fmt.Errorf("certificate file %s holds no PEM CERTIFICATE block", path)
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate %s: %w", path, err)
		}
		return cert, nil
	}
}

// parseKey reads an unencrypted PEM private key: PKCS#1 or PKCS#8 RSA,
// SEC 1 or PKCS#8 ECDSA, PKCS#8 Ed25519.
func parseKey(path string, data []byte) (crypto.Signer, error) {
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, fmt.Errorf("private key file %s holds no PEM private key block", path)
		}
		var key any
		var err error
		switch b.Type {
		case "RSA PRIVATE KEY", "EC PRIVATE KEY":
			if _, ok := b.Headers["DEK-Info"]; ok {
				return nil, fmt.Errorf("private key %s is encrypted with a passphrase; JupyterHub needs it unencrypted (openssl pkey -in KEY -out KEY.plain)", path)
			}
			if b.Type == "RSA PRIVATE KEY" {
				key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
			} else {
				key, err = x509.ParseECPrivateKey(b.Bytes)
			}
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, fmt.Errorf("private key %s is encrypted with a passphrase; JupyterHub needs it unencrypted (openssl pkey -in KEY -out KEY.plain)", path)
		default:
			continue // EC PARAMETERS, a certificate in the same file, …
		}
		if err != nil {
			return nil, fmt.Errorf("parse private key %s (%s): %w", path, b.Type, err)
		}
		switch k := key.(type) {
		case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
			return k.(crypto.Signer), nil
		default:
			return nil, fmt.Errorf("private key %s: unsupported key type %T", path, key)
		}
	}
}

// isSelfSigned reports whether cert is its own issuer, signed by its own
// key. CheckSignatureFrom would also demand that it be a CA, which a
// self-signed server certificate often is not.
func isSelfSigned(cert *x509.Certificate) bool {
	return string(cert.RawIssuer) == string(cert.RawSubject) &&
		cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature) == nil
}

// Dialer opens connections for Reachable; nil is a net.Dialer.
type Dialer func(ctx context.Context, network, addr string) (net.Conn, error)

// Reachable checks, from this host, that rawURL's host resolves and
// answers TLS: the JupyterHub container checks every user's token there.
// It returns a warning saying what failed and why it matters, or "". The
// certificate is not judged: the image's trust store, not this host's,
// decides that.
func Reachable(ctx context.Context, rawURL string, timeout time.Duration, dial Dialer) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return ""
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "443")
	}
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	why := func(err error) string {
		return fmt.Sprintf("openBIS at %s does not answer from this host (%v): the hub checks users' tokens there, so logins and notebook creation will fail until it does", addr, err)
	}
	c, err := dial(ctx, "tcp", addr)
	if err != nil {
		return why(err)
	}
	defer c.Close()
	tc := tls.Client(c, &tls.Config{ServerName: u.Hostname(), InsecureSkipVerify: true})
	if err := tc.HandshakeContext(ctx); err != nil {
		return why(fmt.Errorf("TLS: %w", err))
	}
	return ""
}
