package systemd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"
)

// DialFunc opens a network connection, like net.Dialer.DialContext.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// ProbeFunc checks once whether the service answers; nil means healthy.
type ProbeFunc func(ctx context.Context) error

// httpProbe returns a probe that first opens a TCP connection to addr and
// then, if rawURL is set, sends GET rawURL and accepts any answer below 500.
// Certificates are not checked: the probe talks to the local service, whose
// certificate names the public host name, not the address probed.
func httpProbe(addr, rawURL string, dial DialFunc) (ProbeFunc, error) {
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	if addr == "" && rawURL == "" {
		return nil, nil
	}
	var client *http.Client
	if rawURL != "" {
		u, err := url.Parse(rawURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("health URL %q is not an http(s) URL", rawURL)
		}
		if addr == "" {
			addr = u.Host
			if u.Port() == "" {
				port := "80"
				if u.Scheme == "https" {
					port = "443"
				}
				addr = net.JoinHostPort(u.Hostname(), port)
			}
		}
		client = &http.Client{
			Transport: &http.Transport{
				DialContext:       dial,
				TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
				DisableKeepAlives: true,
			},
			// A redirect to the login page is an answer: the hub is up.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return func(ctx context.Context) error {
		c, err := dial(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("port %s does not answer: %w", addr, err)
		}
		if client == nil {
			// Docker's userland proxy accepts connections on a published
			// port even when nothing listens in the container, and closes
			// them at once: a service keeps the connection open.
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			if _, err := c.Read(make([]byte, 1)); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					return nil
				}
				return fmt.Errorf("port %s accepted the connection but closed it: %w", addr, err)
			}
			return nil
		}
		c.Close()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("GET %s: %w", rawURL, err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			return fmt.Errorf("GET %s: %s", rawURL, resp.Status)
		}
		return nil
	}, nil
}

// maxProbes bounds the probes in flight at once.
const maxProbes = 8

// waitHealthy starts a probe every interval until one succeeds or timeout
// passes; the error is the last failed probe's. Probes overlap: one stuck
// on a SYN lost while the container's network came up (the kernel resends
// it only after a second) does not hold back the next, while a slow but
// working service still answers its own probe.
func waitHealthy(ctx context.Context, probe ProbeFunc, timeout, every time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel() // ends the probes still running
	results := make(chan error, maxProbes)
	inFlight := 0
	start := func() {
		inFlight++
		go func() {
			pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
			defer pcancel()
			results <- probe(pctx)
		}()
	}
	t := time.NewTicker(every)
	defer t.Stop()
	start()
	var last error
	for {
		select {
		case err := <-results:
			inFlight--
			if err == nil {
				return nil
			}
			var down *unitDown
			if errors.As(err, &down) {
				return err
			}
			// A probe cut short by the overall deadline says less than
			// the previous one.
			if last == nil || ctx.Err() == nil {
				last = err
			}
		case <-t.C:
			if inFlight < maxProbes {
				start()
			}
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				if last == nil {
					last = ctx.Err()
				}
				return fmt.Errorf("not healthy within %s: %w", timeout, last)
			}
			return ctx.Err()
		}
	}
}

// unitDown is a probe failure that waiting will not cure: the unit's
// process exited.
type unitDown struct{ error }

func (e *unitDown) Unwrap() error { return e.error }
