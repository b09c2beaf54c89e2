//go:build integration

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"
)

// notebookPath is the notebook the ELN's integration service would write.
const notebookPath = "/home/alice/openbis/analysis.ipynb"

// writeNotebook creates alice's notebook inside the running container,
// owned by her and private, as the integration service does.
func (h Host) writeNotebook(t *testing.T, ctx context.Context) {
	t.Helper()
	h.page(t, ctx)
	h.sh(t, ctx, "docker exec "+containerName+` sh -c 'mkdir -p /home/alice/openbis && echo "{\"cells\": [\"alice\"]}" >`+notebookPath+
		` && chown -R 1000:1000 /home/alice && chmod 600 `+notebookPath+`'`)
}

// notebook returns owner, mode, size and content of alice's notebook as
// the running container sees it.
func (h Host) notebook(t *testing.T, ctx context.Context) string {
	t.Helper()
	h.page(t, ctx)
	r, err := h.Run(ctx, "docker", "exec", containerName, "sh", "-c", "stat -c '%u:%g %a %s' "+notebookPath+" && cat "+notebookPath)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(r.Stdout + r.Stderr)
}

const wantNotebook = "1000:1000 600 21\n{\"cells\": [\"alice\"]}"

// TestUsersWorkSurvives: with the default spec (no home named), alice's
// notebook survives a unit restart, an upgrade to another image, a failed
// upgrade with its rollback, a reboot, and the JupyterHub block leaving
// the spec and coming back: users' work lives in a named volume provision
// manages and never deletes.
func TestUsersWorkSurvives(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	h, _ := newHost(t)
	h.converge(t, ctx)
	if mounts := h.sh(t, ctx, "docker inspect -f '{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}}{{end}}' "+containerName); mounts != "volume jupyterhub-openbis-home /home" {
		t.Fatalf("container mounts %q, want the home volume", mounts)
	}
	h.writeNotebook(t, ctx)
	check := func(after string) {
		t.Helper()
		if got := h.notebook(t, ctx); got != wantNotebook {
			t.Errorf("after %s alice's notebook is %q, want %q", after, got, wantNotebook)
		}
	}

	h.sh(t, ctx, "systemctl restart "+unitName)
	check("a unit restart")

	for _, v := range []struct {
		version string
		broken  bool
	}{{"2", false}, {"3", true}} {
		if _, _, err := h.WriteImage(v.version, v.broken, 0); err != nil {
			t.Fatal(err)
		}
	}
	h.provision(t, ctx, 0, "apply", JupyterHubHost, "-var", "image_version=2")
	check("an upgrade")
	h.provision(t, ctx, 1, "apply", JupyterHubHost, "-var", "image_version=3", "-var", "health_timeout=15s")
	check("a failed upgrade and its rollback")

	if err := h.Reboot(ctx); err != nil {
		t.Fatal(err)
	}
	check("a reboot")

	// The JupyterHub block leaves the spec: everything of it goes but the
	// volume, and the plan says so.
	spec, err := h.ReadFile(SpecPath)
	if err != nil {
		t.Fatal(err)
	}
	i, j := strings.Index(spec, "  jupyterhub {"), strings.Index(spec, "\nhost \"openbis.demo.internal\"")
	if i < 0 || j < 0 {
		t.Fatalf("spec has no jupyterhub block to remove:\n%s", spec)
	}
	if err := h.WriteFile(SpecPath, []byte(spec[:i]+"}\n"+spec[j:]), 0o644); err != nil {
		t.Fatal(err)
	}
	r := h.provision(t, ctx, 0, "apply", JupyterHubHost, "-var", "image_version=2")
	if !strings.Contains(r.Stdout, "users' work in volume jupyterhub-openbis-home stays") {
		t.Errorf("the removal did not say users' work stays:\n%s", r)
	}
	if out := h.sh(t, ctx, "docker ps -aq; systemctl is-enabled "+unitName+" 2>/dev/null || true"); out != "" {
		t.Errorf("after the removal: %q left", out)
	}
	h.sh(t, ctx, "docker volume inspect jupyterhub-openbis-home >/dev/null")

	if err := h.WriteFile(SpecPath, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	h.provision(t, ctx, 0, "apply", JupyterHubHost, "-var", "image_version=2")
	check("the JupyterHub block was removed and added again")
}

// TestHomeMigrated: a deployment that kept users' work in the container's
// own layer (persist_home = false here; the guide's line without -v is the
// same) is moved to the persistent home by the next apply, before the
// restart that would lose it: every file, with owner, mode and bytes.
func TestHomeMigrated(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	h, _ := newHost(t)
	spec, err := h.ReadFile(SpecPath)
	if err != nil {
		t.Fatal(err)
	}
	ephemeral := strings.Replace(spec, "  jupyterhub {\n", "  jupyterhub {\n    persist_home = false\n", 1)
	if err := h.WriteFile(SpecPath, []byte(ephemeral), 0o644); err != nil {
		t.Fatal(err)
	}
	h.provision(t, ctx, 0, "apply", JupyterHubHost)
	r := h.provision(t, ctx, 0, "plan", JupyterHubHost)
	if !strings.Contains(r.Stdout, "every restart of "+unitName) {
		t.Errorf("no warning that restarts lose users' work:\n%s", r)
	}
	h.writeNotebook(t, ctx)
	if r := h.provision(t, ctx, 0, "plan", JupyterHubHost); !strings.Contains(r.Stdout, "live only in the container") {
		t.Errorf("no warning about users' work in the container:\n%s", r)
	}

	if err := h.WriteFile(SpecPath, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	r = h.provision(t, ctx, 2, "plan", JupyterHubHost)
	if !strings.Contains(r.Stdout, "the container's own layer (3 paths)") {
		t.Errorf("plan does not announce the migration:\n%s", r)
	}
	r = h.provision(t, ctx, 0, "apply", JupyterHubHost)
	if !strings.Contains(r.Stdout, "copied 3 files and directories into volume jupyterhub-openbis-home") {
		t.Errorf("apply did not say what it moved:\n%s", r)
	}
	if got := h.notebook(t, ctx); got != wantNotebook {
		t.Errorf("migrated notebook %q, want %q", got, wantNotebook)
	}
	h.plan(t, ctx, 0, JupyterHubHost)
}
