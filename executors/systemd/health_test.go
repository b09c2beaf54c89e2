package systemd

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestHTTPProbe(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/hub/login", http.StatusFound) })
	broken := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", http.StatusBadGateway) })
	plain := httptest.NewServer(ok)
	defer plain.Close()
	// A self-signed certificate, as the local probe meets it.
	tlsSrv := httptest.NewUnstartedServer(ok)
	// The probe's TCP step closes without a handshake; not worth a log line.
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0)
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	bad := httptest.NewServer(broken)
	defer bad.Close()
	// A port that accepts and closes at once, as docker-proxy does with
	// nothing behind it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := closed.Addr().String()
	closed.Close()

	for _, tc := range []struct {
		name, addr, url, want string
	}{
		{name: "http redirect", url: plain.URL + "/"},
		{name: "https self-signed", url: tlsSrv.URL + "/"},
		{name: "tcp only", addr: strings.TrimPrefix(plain.URL, "http://")},
		{name: "5xx", url: bad.URL + "/", want: "502 Bad Gateway"},
		{name: "refused", url: "http://" + closedAddr + "/", want: "does not answer"},
		{name: "accept and close", addr: ln.Addr().String(), want: "accepted the connection but closed it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := httpProbe(tc.addr, tc.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = p(context.Background())
			if tc.want == "" && err != nil {
				t.Fatalf("probe: %v", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("probe error = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestWaitHealthy(t *testing.T) {
	var n atomic.Int32
	probe := func(context.Context) error {
		if n.Add(1) < 3 {
			return context.DeadlineExceeded
		}
		return nil
	}
	if err := waitHealthy(context.Background(), probe, 5*time.Second, time.Millisecond); err != nil || n.Load() < 3 {
		t.Fatalf("waitHealthy = %v after %d probes", err, n.Load())
	}
	// A probe that hangs does not hold back the next one.
	var calls atomic.Int32
	hangFirst := func(ctx context.Context) error {
		if calls.Add(1) == 1 {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}
	// Sequential probes would fail here: the first hangs until the whole
	// timeout has passed.
	if err := waitHealthy(context.Background(), hangFirst, 5*time.Second, 10*time.Millisecond); err != nil {
		t.Fatalf("waitHealthy = %v", err)
	}
	never := func(context.Context) error { return errNever }
	err := waitHealthy(context.Background(), never, 50*time.Millisecond, 10*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "not healthy within 50ms: never") {
		t.Fatalf("waitHealthy = %v", err)
	}
}

var errNever = errString("never")

type errString string

func (e errString) Error() string { return string(e) }
