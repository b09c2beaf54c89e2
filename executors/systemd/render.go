package systemd

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/openbis/provision/templates"
)

// UnitTemplate is the template RenderUnit executes.
const UnitTemplate = "unit.service.tmpl"

// containerNameRE is Docker's own rule for container names; a name that
// passes it needs no quoting in a unit's Description=.
var containerNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// UnitParams are the values the unit file is rendered from.
type UnitParams struct {
	// Address of the resource, named in the "managed by" header.
	Address string
	// StartScript is the absolute path of the script ExecStart= runs.
	StartScript string
	// ContainerName is the container the script runs; ExecStop= stops it.
	ContainerName string
	// Docker is the docker CLI; default /usr/bin/docker.
	Docker string
	// StopTimeoutSec is how long docker stop waits before killing the
	// container; default 20.
	StopTimeoutSec int
}

// RenderUnit renders templates/unit.service.tmpl. Every value that reaches
// an Exec line is quoted for systemd; values that cannot be written safely
// are refused.
func RenderUnit(p UnitParams) ([]byte, error) {
	if p.Docker == "" {
		p.Docker = "/usr/bin/docker"
	}
	if p.StopTimeoutSec <= 0 {
		p.StopTimeoutSec = 20
	}
	for _, f := range []struct{ name, val string }{
		{"start script", p.StartScript},
		{"docker", p.Docker},
	} {
		if !path.IsAbs(f.val) || path.Clean(f.val) != f.val {
			return nil, fmt.Errorf("render unit: %s path %q is not a clean absolute path", f.name, f.val)
		}
		if strings.ContainsFunc(f.val, isControl) {
			return nil, fmt.Errorf("render unit: %s path %q contains control characters", f.name, f.val)
		}
	}
	if !containerNameRE.MatchString(p.ContainerName) {
		return nil, fmt.Errorf("render unit: container name %q is not a valid Docker container name", p.ContainerName)
	}
	if strings.ContainsFunc(p.Address, isControl) {
		return nil, fmt.Errorf("render unit: address %q contains control characters", p.Address)
	}
	data := struct {
		UnitParams
		UnitStopTimeoutSec int
	}{p, p.StopTimeoutSec + 30}
	return templates.Render(UnitTemplate, data)
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
