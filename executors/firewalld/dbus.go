package firewalld

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/godbus/dbus/v5"
)

// firewalld's D-Bus names (firewalld.dbus(5)).
const (
	busName         = "org.fedoraproject.FirewallD1"
	rootPath        = dbus.ObjectPath("/org/fedoraproject/FirewallD1")
	configPath      = dbus.ObjectPath("/org/fedoraproject/FirewallD1/config")
	ifaceMain       = busName
	ifaceZone       = busName + ".zone"
	ifaceConfig     = busName + ".config"
	ifaceConfigZone = ifaceConfig + ".zone"
	exceptionName   = busName + ".Exception"
)

// ErrNotRunning means nobody owns firewalld's name on the bus.
var ErrNotRunning = errors.New("firewalld is not running (is it installed? start it with `systemctl enable --now firewalld`)")

// Error is an exception firewalld raised, parsed from its D-Bus error body
// ("INVALID_ZONE: foo") into the code and the detail.
type Error struct {
	Op     string // what provision was doing
	Code   string // firewalld's error code: INVALID_ZONE, ALREADY_ENABLED, …
	Detail string
}

var codeText = map[string]string{
	"INVALID_ZONE":    "unknown zone",
	"INVALID_POLICY":  "unknown policy",
	"INVALID_RULE":    "invalid rich rule",
	"INVALID_ADDR":    "invalid address",
	"INVALID_PORT":    "invalid port",
	"INVALID_FAMILY":  "invalid family",
	"INVALID_TARGET":  "invalid target",
	"INVALID_NAME":    "invalid name",
	"INVALID_COMMAND": "invalid command",
	"ALREADY_ENABLED": "already present",
	"NOT_ENABLED":     "not present",
	"NAME_CONFLICT":   "name already in use",
	"ACCESS_DENIED":   "access denied (run as root)",
	"NOT_AUTHORIZED":  "not authorized (run as root)",
	"RUNNING_BUT_FAILED": "firewalld is running but failed to apply its " +
		"configuration",
}

func (e *Error) Error() string {
	what, ok := codeText[e.Code]
	if !ok {
		what = "firewalld error " + e.Code
	}
	if e.Detail != "" {
		what += " " + quoteDetail(e.Detail)
	}
	return e.Op + ": " + what
}

// quoteDetail quotes a bare name ("public") but leaves sentences alone.
func quoteDetail(d string) string {
	if strings.ContainsAny(d, " \"'") {
		return "(" + d + ")"
	}
	return fmt.Sprintf("%q", d)
}

// IsCode reports whether err is a firewalld exception with that code.
func IsCode(err error, code string) bool {
	var fe *Error
	return errors.As(err, &fe) && fe.Code == code
}

// wrapErr turns a D-Bus error into an *Error, ErrNotRunning or a wrapped
// transport error.
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var de dbus.Error
	var dp *dbus.Error
	switch {
	case errors.As(err, &de):
	case errors.As(err, &dp):
		de = *dp
	default:
		return fmt.Errorf("%s: %w", op, err)
	}
	switch de.Name {
	case "org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner":
		return fmt.Errorf("%s: %w", op, ErrNotRunning)
	case "org.freedesktop.DBus.Error.AccessDenied":
		return &Error{Op: op, Code: "ACCESS_DENIED", Detail: bodyText(de)}
	case exceptionName:
		code, detail := parseException(bodyText(de))
		return &Error{Op: op, Code: code, Detail: detail}
	}
	return fmt.Errorf("%s: %s: %s", op, de.Name, bodyText(de))
}

func bodyText(e dbus.Error) string {
	if len(e.Body) > 0 {
		if s, ok := e.Body[0].(string); ok {
			return s
		}
	}
	return ""
}

// parseException splits "INVALID_ZONE: foo" into code and detail. A body
// without a code prefix is all detail.
func parseException(body string) (code, detail string) {
	code, detail, ok := strings.Cut(body, ":")
	if ok && code != "" && strings.Trim(code, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") == "" {
		return code, strings.TrimSpace(detail)
	}
	if body != "" && strings.Trim(body, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") == "" {
		return body, ""
	}
	return "UNKNOWN_ERROR", body
}

// client is one connection to firewalld.
type client struct {
	conn *dbus.Conn
	bus  string
}

// dial connects to bus ("" is the system bus, honouring
// DBUS_SYSTEM_BUS_ADDRESS) and checks that firewalld is up.
func dial(ctx context.Context, bus string) (*client, error) {
	var conn *dbus.Conn
	var err error
	label := bus
	if bus == "" {
		label = "system bus"
		conn, err = dbus.ConnectSystemBus(dbus.WithContext(ctx))
	} else {
		conn, err = dbus.Connect(bus, dbus.WithContext(ctx))
	}
	if err != nil {
		return nil, fmt.Errorf("connect to D-Bus %s (is dbus running?): %w", label, err)
	}
	c := &client{conn: conn, bus: label}
	v, err := conn.Object(busName, rootPath).GetProperty(ifaceMain + ".state")
	if err != nil {
		conn.Close()
		return nil, wrapErr("firewalld on "+label, err)
	}
	if st, _ := v.Value().(string); st != "RUNNING" {
		conn.Close()
		return nil, fmt.Errorf("firewalld on %s: state %s, not RUNNING (see `journalctl -u firewalld`)", label, st)
	}
	return c, nil
}

func (c *client) Close() error { return c.conn.Close() }

// Conn is one connection to firewalld shared by the rules of a run, so a
// plan dials and checks firewalld's state once instead of once per rule
// (3.5 ms each, measured on a fresh server).
type Conn struct {
	bus string
	mu  sync.Mutex
	c   *client
}

// NewConn returns a connection to firewalld on bus ("" is the system
// bus), dialled when first used.
func NewConn(bus string) *Conn { return &Conn{bus: bus} }

// Bus is the address the connection dials.
func (s *Conn) Bus() string { return s.bus }

// client dials on first use. A failure is not kept: firewalld may be
// started later in the same apply.
func (s *Conn) client(ctx context.Context) (*client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c == nil {
		c, err := dial(ctx, s.bus)
		if err != nil {
			return nil, err
		}
		s.c = c
	}
	return s.c, nil
}

// Close closes the connection, if it was dialled.
func (s *Conn) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c == nil {
		return nil
	}
	err := s.c.Close()
	s.c = nil
	return err
}

// use returns a client of conn, or of a connection of its own to bus that
// release closes.
func use(ctx context.Context, conn *Conn, bus string) (c *client, release func(), err error) {
	if conn != nil {
		c, err := conn.client(ctx)
		return c, func() {}, err
	}
	if c, err = dial(ctx, bus); err != nil {
		return nil, nil, err
	}
	return c, func() { c.Close() }, nil
}

// call invokes method on path and stores the reply into out.
func (c *client) call(ctx context.Context, op string, path dbus.ObjectPath, method string, out []any, args ...any) error {
	call := c.conn.Object(busName, path).CallWithContext(ctx, method, 0, args...)
	if call.Err != nil {
		return wrapErr(op, call.Err)
	}
	if len(out) > 0 {
		if err := call.Store(out...); err != nil {
			return fmt.Errorf("%s: decode reply: %w", op, err)
		}
	}
	return nil
}

func (c *client) configZone(ctx context.Context, zone string) (dbus.ObjectPath, error) {
	var p dbus.ObjectPath
	err := c.call(ctx, "look up permanent zone "+zone, configPath, ifaceConfig+".getZoneByName", []any{&p}, zone)
	return p, err
}

func (c *client) queryRuntimeRule(ctx context.Context, zone, rule string) (bool, error) {
	var ok bool
	err := c.call(ctx, "query runtime rich rule in zone "+zone, rootPath, ifaceZone+".queryRichRule", []any{&ok}, zone, rule)
	return ok, err
}

func (c *client) queryPermanentRule(ctx context.Context, zone, rule string) (bool, error) {
	p, err := c.configZone(ctx, zone)
	if err != nil {
		return false, err
	}
	var ok bool
	err = c.call(ctx, "query permanent rich rule in zone "+zone, p, ifaceConfigZone+".queryRichRule", []any{&ok}, rule)
	return ok, err
}

func (c *client) reload(ctx context.Context) error {
	return c.call(ctx, "reload firewalld", rootPath, ifaceMain+".reload", nil)
}
