package systemd

import (
	"context"
	"fmt"
	"os"
	"strconv"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// Connect opens a connection to the systemd manager on the system bus at
// address ("unix:path=…"); an empty address means the system bus of this
// host (DBUS_SYSTEM_BUS_ADDRESS or the default socket). The caller closes it.
func Connect(ctx context.Context, address string) (*sddbus.Conn, error) {
	c, err := sddbus.NewConnection(func() (*dbus.Conn, error) { return dialBus(ctx, address) })
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", busName(address), err)
	}
	return c, nil
}

func busName(address string) string {
	if address == "" {
		return "the system bus"
	}
	return "system bus " + address
}

// dialBus opens one authenticated bus connection.
func dialBus(ctx context.Context, address string) (*dbus.Conn, error) {
	var conn *dbus.Conn
	var err error
	if address == "" {
		conn, err = dbus.SystemBusPrivate(dbus.WithContext(ctx))
	} else {
		conn, err = dbus.Dial(address, dbus.WithContext(ctx))
	}
	if err != nil {
		return nil, err
	}
	// EXTERNAL with the numeric uid: no user lookup, works for root
	// talking to a container's bus through /proc/PID/root.
	if err := conn.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
		conn.Close()
		return nil, err
	}
	if err := conn.Hello(); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// planProps reads a unit's properties over a single bus connection. Plan
// uses it rather than Connect, which opens two connections (one for job
// signals that planning never waits for): planning a converged host stays
// around a millisecond.
func planProps(ctx context.Context, address, name string) (unitProps, error) {
	conn, err := dialBus(ctx, address)
	if err != nil {
		return unitProps{}, fmt.Errorf("connect to %s: %w", busName(address), err)
	}
	defer conn.Close()
	var path dbus.ObjectPath
	if err := conn.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1").
		CallWithContext(ctx, "org.freedesktop.systemd1.Manager.LoadUnit", 0, name).Store(&path); err != nil {
		return unitProps{}, fmt.Errorf("load unit %s: %w", name, err)
	}
	var m map[string]dbus.Variant
	if err := conn.Object("org.freedesktop.systemd1", path).
		CallWithContext(ctx, "org.freedesktop.DBus.Properties.GetAll", 0, "org.freedesktop.systemd1.Unit").Store(&m); err != nil {
		return unitProps{}, fmt.Errorf("read properties of %s: %w", name, err)
	}
	v := make(map[string]any, len(m))
	for k, x := range m {
		v[k] = x.Value()
	}
	return propsFrom(v), nil
}

// unitProps is the part of a unit's state provision looks at.
type unitProps struct {
	LoadState        string `json:"load_state"`
	ActiveState      string `json:"active_state"`
	SubState         string `json:"sub_state"`
	UnitFileState    string `json:"unit_file_state"`
	NeedDaemonReload bool   `json:"need_daemon_reload"`
	FragmentPath     string `json:"fragment_path,omitempty"`
}

func readProps(ctx context.Context, c *sddbus.Conn, name string) (unitProps, error) {
	m, err := c.GetUnitPropertiesContext(ctx, name)
	if err != nil {
		return unitProps{}, fmt.Errorf("read properties of %s: %w", name, err)
	}
	return propsFrom(m), nil
}

func propsFrom(m map[string]any) unitProps {
	str := func(k string) string { s, _ := m[k].(string); return s }
	b, _ := m["NeedDaemonReload"].(bool)
	return unitProps{
		LoadState:        str("LoadState"),
		ActiveState:      str("ActiveState"),
		SubState:         str("SubState"),
		UnitFileState:    str("UnitFileState"),
		NeedDaemonReload: b,
		FragmentPath:     str("FragmentPath"),
	}
}

// status is a one-line summary of a unit's state for error messages, in the
// words `systemctl status` uses.
func status(ctx context.Context, c *sddbus.Conn, name string) string {
	p, err := readProps(ctx, c, name)
	if err != nil {
		return err.Error()
	}
	s := fmt.Sprintf("%s: %s (%s), unit file %s", name, p.ActiveState, p.SubState, p.UnitFileState)
	if m, err := c.GetUnitTypePropertiesContext(ctx, name, "Service"); err == nil {
		if r, _ := m["Result"].(string); r != "" && r != "success" {
			s += ", result " + r
		}
		if st, ok := m["ExecMainStatus"].(int32); ok && st != 0 {
			s += fmt.Sprintf(", main process exit status %d", st)
		}
	}
	return s
}

// runJob enqueues a job (start, restart, stop) in replace mode and waits for
// its result. A result other than "done" is an error.
func runJob(ctx context.Context, c *sddbus.Conn, verb, name string) error {
	ch := make(chan string, 1)
	var err error
	switch verb {
	case "start":
		_, err = c.StartUnitContext(ctx, name, "replace", ch)
	case "restart":
		_, err = c.RestartUnitContext(ctx, name, "replace", ch)
	case "stop":
		_, err = c.StopUnitContext(ctx, name, "replace", ch)
	default:
		return fmt.Errorf("unknown job %q", verb)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", verb, name, err)
	}
	select {
	case res := <-ch:
		if res != "done" {
			return fmt.Errorf("%s %s: job %s", verb, name, res)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s %s: waiting for the job: %w", verb, name, ctx.Err())
	}
}

// enable enables a unit file and reloads the manager as `systemctl enable`
// does, so the new dependencies are in effect.
func enable(ctx context.Context, c *sddbus.Conn, name string) error {
	if _, _, err := c.EnableUnitFilesContext(ctx, []string{name}, false, false); err != nil {
		return fmt.Errorf("enable %s: %w", name, err)
	}
	return nil
}

func daemonReload(ctx context.Context, c *sddbus.Conn) error {
	if err := c.ReloadContext(ctx); err != nil {
		return fmt.Errorf("daemon-reload: %w", err)
	}
	return nil
}
