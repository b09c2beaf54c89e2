package systemd

import (
	"strings"
	"testing"
)

func TestRenderUnit(t *testing.T) {
	got, err := RenderUnit(UnitParams{
		Address:       "systemd_unit.jupyterhub",
		StartScript:   "/opt/jupyter hub/start%1$.sh",
		ContainerName: "jupyterhub-openbis",
	})
	if err != nil {
		t.Fatal(err)
	}
	s := string(got)
	for _, want := range []string{
		"# Managed by provision (systemd_unit.jupyterhub)",
		"After=docker.service network-online.target\n",
		"Requires=docker.service\n",
		"Wants=network-online.target\n",
		// Spaces quoted, % and $ escaped against specifiers and variables.
		`ExecStart="/opt/jupyter hub/start%%1$$.sh"` + "\n",
		`ExecStop=-"/usr/bin/docker" stop --time=20 "jupyterhub-openbis"` + "\n",
		"Restart=on-failure\n",
		"StartLimitBurst=5\n",
		"TimeoutStopSec=50s\n",
		"WantedBy=multi-user.target\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("unit does not contain %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "Environment") {
		t.Errorf("unit carries an environment (secrets belong in the start script):\n%s", s)
	}
}

func TestRenderUnitRefuses(t *testing.T) {
	ok := UnitParams{StartScript: "/usr/local/bin/start.sh", ContainerName: "jh"}
	for _, tc := range []struct {
		name string
		edit func(*UnitParams)
		want string
	}{
		{"relative script", func(p *UnitParams) { p.StartScript = "start.sh" }, "not a clean absolute path"},
		{"unclean script", func(p *UnitParams) { p.StartScript = "/usr/../start.sh" }, "not a clean absolute path"},
		{"newline in script", func(p *UnitParams) { p.StartScript = "/x\nExecStartPre=/bin/evil" }, "control characters"},
		{"bad container", func(p *UnitParams) { p.ContainerName = "jh\nExecStartPre=/bin/evil" }, "not a valid Docker container name"},
		{"empty container", func(p *UnitParams) { p.ContainerName = "" }, "not a valid Docker container name"},
		{"relative docker", func(p *UnitParams) { p.Docker = "docker" }, "docker path"},
		{"newline in address", func(p *UnitParams) { p.Address = "a\nb" }, "control characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := ok
			tc.edit(&p)
			_, err := RenderUnit(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("RenderUnit(%+v) error = %v, want %q", p, err, tc.want)
			}
		})
	}
	if _, err := RenderUnit(ok); err != nil {
		t.Fatal(err)
	}
}
