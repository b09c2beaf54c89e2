package e2e

import (
	"slices"
	"testing"
)

func TestParsePlan(t *testing.T) {
	out := `{"type":"warning","message":"docker_container.jupyterhub: 1 paths changed","host":"h"}
{"type":"change","verb":"update","change":{"address":"file.start_script","action":"~","reasons":["content differs"],"diff":"-a\n+b\n","fingerprint":"x"},"host":"h"}
{"type":"change","verb":"restart","change":{"address":"systemd_unit.jupyterhub","action":"","triggered_by":["file.start_script"],"fingerprint":"y"},"host":"h"}
{"type":"change","verb":"create","change":{"address":"docker_image.jupyterhub","action":"+","fields":[{"name":"image_id","new":"sha256:1"}],"fingerprint":"z"},"host":"h"}

{"type":"summary","summary":{},"host":"h","pending":true}
`
	p, err := ParsePlan(out)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Pending {
		t.Error("pending = false, want true")
	}
	if want := []string{"docker_image.jupyterhub", "file.start_script"}; !slices.Equal(p.Changed(), want) {
		t.Errorf("Changed() = %v, want %v (restarts left out)", p.Changed(), want)
	}
	if len(p.Warnings) != 1 {
		t.Errorf("warnings = %q, want one", p.Warnings)
	}
	c, ok := p.Change("docker_image.jupyterhub")
	if !ok || c.Text() != "+ docker_image.jupyterhub\nimage_id: \"\" -> \"sha256:1\"\n" {
		t.Errorf("Change(docker_image.jupyterhub).Text() = %q", c.Text())
	}
	if _, err := ParsePlan("not json\n"); err == nil {
		t.Error("ParsePlan accepted a line that is not JSON")
	}
}
