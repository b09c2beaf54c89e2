package tlscert

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// rsaKey is generated once: RSA key generation is slow.
var rsaKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

var ca = sync.OnceValues(func() (*x509.Certificate, crypto.Signer) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Test CA"},
		NotBefore:             now.AddDate(-1, 0, 0),
		NotAfter:              now.AddDate(5, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		panic(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, key
})

type certOpts struct {
	notBefore, notAfter time.Time
	selfSigned          bool
}

// issue makes a server certificate for pub, signed by the test CA or by
// signer itself when self-signed.
func issue(t *testing.T, pub crypto.PublicKey, signer crypto.Signer, o certOpts) []byte {
	t.Helper()
	if o.notBefore.IsZero() {
		o.notBefore = now.AddDate(0, -1, 0)
	}
	if o.notAfter.IsZero() {
		o.notAfter = now.AddDate(1, 0, 0)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "jupyterhub.example.org"},
		DNSNames:     []string{"jupyterhub.example.org"},
		NotBefore:    o.notBefore,
		NotAfter:     o.notAfter,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	parent, parentKey := ca()
	if o.selfSigned {
		parent, parentKey = tmpl, signer
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pkcs8(t *testing.T, k any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("PRIVATE KEY", der)
}

func sec1(t *testing.T, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("EC PRIVATE KEY", der)
}

func TestCheck(t *testing.T) {
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherEC, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	rk := rsaKey()
	caPEM := pemBlock("CERTIFICATE", func() []byte { c, _ := ca(); return c.Raw }())

	type files struct{ cert, key []byte }
	tests := []struct {
		name    string
		files   func(t *testing.T) files
		keyMode fs.FileMode
		noCert  bool
		noKey   bool
		host    string   // default: the name the test certificates carry
		wantErr []string // substrings of the error
		warns   []string // substrings, one per expected warning
	}{
		{
			name: "RSA PKCS#1",
			files: func(t *testing.T) files {
				return files{issue(t, rk.Public(), nil, certOpts{}), pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rk))}
			},
		},
		{
			name:  "another host name",
			files: func(t *testing.T) files { return files{issue(t, rk.Public(), nil, certOpts{}), pkcs8(t, rk)} },
			host:  "hub.other.org",
			warns: []string{"not valid for hub.other.org"},
		},
		{
			name:  "RSA PKCS#8",
			files: func(t *testing.T) files { return files{issue(t, rk.Public(), nil, certOpts{}), pkcs8(t, rk)} },
		},
		{
			name: "ECDSA SEC 1 with EC PARAMETERS first",
			files: func(t *testing.T) files {
				return files{issue(t, ecKey.Public(), nil, certOpts{}), append(pemBlock("EC PARAMETERS", []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}), sec1(t, ecKey)...)}
			},
		},
		{
			name:  "ECDSA PKCS#8",
			files: func(t *testing.T) files { return files{issue(t, ecKey.Public(), nil, certOpts{}), pkcs8(t, ecKey)} },
		},
		{
			name:  "Ed25519 PKCS#8",
			files: func(t *testing.T) files { return files{issue(t, edKey.Public(), nil, certOpts{}), pkcs8(t, edKey)} },
		},
		{
			name: "certificate with chain",
			files: func(t *testing.T) files {
				return files{append(issue(t, ecKey.Public(), nil, certOpts{}), caPEM...), sec1(t, ecKey)}
			},
		},
		{
			name:    "group-readable key is fine",
			files:   func(t *testing.T) files { return files{issue(t, ecKey.Public(), nil, certOpts{}), sec1(t, ecKey)} },
			keyMode: 0o640,
		},
		{
			name: "small RSA key",
			files: func(t *testing.T) files {
				k, err := rsa.GenerateKey(rand.Reader, 1024)
				if err != nil {
					t.Fatal(err)
				}
				return files{issue(t, k.Public(), nil, certOpts{}), pkcs8(t, k)}
			},
			warns: []string{"1024-bit RSA key"},
		},
		{
			name:    "world-readable key",
			files:   func(t *testing.T) files { return files{issue(t, ecKey.Public(), nil, certOpts{}), sec1(t, ecKey)} },
			keyMode: 0o644,
			wantErr: []string{"readable by every user", "chmod 600 "},
		},
		{
			name:    "key of another certificate",
			files:   func(t *testing.T) files { return files{issue(t, ecKey.Public(), nil, certOpts{}), sec1(t, otherEC)} },
			wantErr: []string{"does not belong to certificate"},
		},
		{
			name:    "key of another type",
			files:   func(t *testing.T) files { return files{issue(t, ecKey.Public(), nil, certOpts{}), pkcs8(t, edKey)} },
			wantErr: []string{"does not belong to certificate"},
		},
		{
			name: "self-signed",
			files: func(t *testing.T) files {
				return files{issue(t, ecKey.Public(), ecKey, certOpts{selfSigned: true}), sec1(t, ecKey)}
			},
			warns: []string{"self-signed", "Session is no longer valid"},
		},
		{
			name: "expires in 10 days",
			files: func(t *testing.T) files {
				return files{issue(t, ecKey.Public(), nil, certOpts{notAfter: now.Add(10*24*time.Hour + time.Hour)}), sec1(t, ecKey)}
			},
			warns: []string{"in 10 days"},
		},
		{
			name: "self-signed and expiring",
			files: func(t *testing.T) files {
				return files{issue(t, ecKey.Public(), ecKey, certOpts{selfSigned: true, notAfter: now.Add(24 * time.Hour)}), sec1(t, ecKey)}
			},
			warns: []string{"expires on", "self-signed"},
		},
		{
			name: "expired",
			files: func(t *testing.T) files {
				return files{issue(t, ecKey.Public(), nil, certOpts{notBefore: now.AddDate(-2, 0, 0), notAfter: now.AddDate(0, 0, -1)}), sec1(t, ecKey)}
			},
			wantErr: []string{"expired on 2026-11-27"},
		},
		{
			name: "not yet valid",
			files: func(t *testing.T) files {
				return files{issue(t, ecKey.Public(), nil, certOpts{notBefore: now.AddDate(0, 0, 1)}), sec1(t, ecKey)}
			},
			wantErr: []string{"not valid before"},
		},
		{
			name:    "missing certificate",
			files:   func(t *testing.T) files { return files{nil, sec1(t, ecKey)} },
			noCert:  true,
			wantErr: []string{"certificate file", "server.crt does not exist"},
		},
		{
			name:    "missing key",
			files:   func(t *testing.T) files { return files{issue(t, ecKey.Public(), nil, certOpts{}), nil} },
			noKey:   true,
			wantErr: []string{"private key file", "server.key does not exist"},
		},
		{
			name:    "both missing",
			files:   func(t *testing.T) files { return files{} },
			noCert:  true,
			noKey:   true,
			wantErr: []string{"server.crt does not exist", "server.key does not exist"},
		},
		{
			name:    "certificate not PEM",
			files:   func(t *testing.T) files { return files{[]byte("hello"), sec1(t, ecKey)} },
			wantErr: []string{"no PEM CERTIFICATE block"},
		},
		{
			name:    "certificate block garbled",
			files:   func(t *testing.T) files { return files{pemBlock("CERTIFICATE", []byte("junk")), sec1(t, ecKey)} },
			wantErr: []string{"parse certificate"},
		},
		{
			name:    "key file holds only a certificate",
			files:   func(t *testing.T) files { c := issue(t, ecKey.Public(), nil, certOpts{}); return files{c, c} },
			wantErr: []string{"no PEM private key block"},
		},
		{
			name: "key block garbled",
			files: func(t *testing.T) files {
				return files{issue(t, ecKey.Public(), nil, certOpts{}), pemBlock("PRIVATE KEY", []byte("junk"))}
			},
			wantErr: []string{"parse private key"},
		},
		{
			name: "encrypted PKCS#8 key",
			files: func(t *testing.T) files {
				return files{issue(t, ecKey.Public(), nil, certOpts{}), pemBlock("ENCRYPTED PRIVATE KEY", []byte("x"))}
			},
			wantErr: []string{"encrypted"},
		},
		{
			name: "legacy encrypted PEM key",
			files: func(t *testing.T) files {
				b := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: []byte("x")})
				return files{issue(t, rk.Public(), nil, certOpts{}), b}
			},
			wantErr: []string{"encrypted"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			certPath, keyPath := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
			f := tt.files(t)
			if !tt.noCert {
				write(t, certPath, f.cert, 0o644)
			}
			if !tt.noKey {
				mode := tt.keyMode
				if mode == 0 {
					mode = 0o600
				}
				write(t, keyPath, f.key, mode)
			}
			host := tt.host
			if host == "" {
				host = "jupyterhub.example.org"
			}
			warns, err := Check(certPath, keyPath, host, now)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("no error, want %q", tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				if strings.Contains(err.Error(), "PRIVATE KEY-----") {
					t.Errorf("error shows key material: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(warns, "\n"); len(tt.warns) == 0 && len(warns) > 0 {
				t.Errorf("unexpected warnings:\n%s", got)
			}
			for _, w := range tt.warns {
				if !strings.Contains(strings.Join(warns, "\n"), w) {
					t.Errorf("warnings %q lack %q", warns, w)
				}
			}
		})
	}
}

func TestSelfSignedDetection(t *testing.T) {
	c, _ := ca()
	if !isSelfSigned(c) {
		t.Error("the self-signed CA is not seen as self-signed")
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	b, _ := pem.Decode(issue(t, ecKey.Public(), nil, certOpts{}))
	leaf, _ := x509.ParseCertificate(b.Bytes)
	if isSelfSigned(leaf) {
		t.Error("a CA-issued certificate is seen as self-signed")
	}
}

func write(t *testing.T, path string, b []byte, mode fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestReachable(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
	defer tlsSrv.Close()
	plain := httptest.NewServer(http.NotFoundHandler())
	defer plain.Close()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := closed.Addr().String()
	closed.Close()
	for _, tt := range []struct {
		name, url, want string
	}{
		{"answers TLS", tlsSrv.URL, ""},
		{"no TLS", "https://" + plain.Listener.Addr().String(), "TLS"},
		{"refused", "https://" + closedAddr, "refused"},
		{"default port", "https://127.0.0.1", "127.0.0.1:443"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := Reachable(context.Background(), tt.url, 2*time.Second, nil)
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("Reachable(%s) = %q, want %q", tt.url, got, tt.want)
			}
		})
	}
}
