// Package elnprofile manages the Jupyter settings in the openBIS ELN's
// InstanceProfile.js: it makes init set jupyterIntegrationServerEndpoint
// and jupyterEndpoint, patching the file in place and leaving every other
// byte as it was, and removes its managed block when the resource leaves
// the spec.
package elnprofile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/openbis/provision/internal/engine"

	"github.com/openbis/provision/executors"
)

// Kind is the resource kind in addresses and state records.
const Kind = "eln_profile"

// Address is the address of the one InstanceProfile.js resource of a host.
const Address = Kind + ".instance_profile"

// Config is what the spec says about the ELN profile.
type Config struct {
	// Path of InstanceProfile.js, e.g.
	// …/core-plugins/eln-lims/1/as/webapps/eln-lims/html/etc/InstanceProfile.js.
	Path string
	// IntegrationEndpoint is jupyterIntegrationServerEndpoint, where the
	// browser POSTs notebooks ("https://JUPYTERHUB_HOST:COMM").
	IntegrationEndpoint string
	// JupyterEndpoint is jupyterEndpoint, the JupyterHub URL the ELN links
	// to ("https://JUPYTERHUB_HOST/"); it must end with "/".
	JupyterEndpoint string
}

var (
	_ engine.Resource = (*Profile)(nil)
	_ engine.Resource = (*Removal)(nil)
)

// Profile is the InstanceProfile.js resource.
type Profile struct {
	path string
	want values
}

// New checks cfg and returns the resource.
func New(cfg Config) (*Profile, error) {
	if err := checkPath(cfg.Path); err != nil {
		return nil, err
	}
	for _, v := range []struct{ name, val string }{
		{propIntegration, cfg.IntegrationEndpoint},
		{propEndpoint, cfg.JupyterEndpoint},
	} {
		if v.val == "" {
			return nil, fmt.Errorf("%s: %s is empty", Address, v.name)
		}
		if !utf8.ValidString(v.val) {
			return nil, fmt.Errorf("%s: %s is not valid UTF-8", Address, v.name)
		}
	}
	if !strings.HasSuffix(cfg.JupyterEndpoint, "/") {
		return nil, fmt.Errorf("%s: %s %q must end with \"/\"", Address, propEndpoint, cfg.JupyterEndpoint)
	}
	return &Profile{path: cfg.Path, want: values{cfg.IntegrationEndpoint, cfg.JupyterEndpoint}}, nil
}

func checkPath(path string) error {
	if !filepath.IsAbs(path) || filepath.Clean(path) != path {
		return fmt.Errorf("%s: path %q must be absolute and clean", Address, path)
	}
	return nil
}

// Address implements engine.Resource.
func (p *Profile) Address() string { return Address }

// Record implements engine.Resource: the path is enough to remove the
// managed block later.
func (p *Profile) Record() *engine.Record { return record(Address, p.path) }

type recordData struct {
	Path string `json:"path"`
}

func record(addr, path string) *engine.Record {
	data, _ := json.Marshal(recordData{Path: path})
	return &engine.Record{Address: addr, Kind: Kind, Data: data}
}

// Plan implements engine.Resource. It reads the file and reports an
// Update with a unified diff and the reasons ("jupyterEndpoint missing",
// "… changed", "… duplicated", "… commented out"), or NoOp.
func (p *Profile) Plan(ctx context.Context) (*engine.Change, error) {
	st, r, err := p.read(ctx)
	if err != nil {
		return nil, err
	}
	ch := &engine.Change{Address: Address, Fingerprint: fingerprint(st), Warnings: r.warnings}
	if bytes.Equal(r.out, st.Content) {
		return ch, nil
	}
	ch.Action = engine.Update
	ch.Reasons = r.reasons
	ch.Fields = r.fields
	ch.Diff = executors.UnifiedDiff(p.path, st.Content, r.out)
	return ch, nil
}

// Apply implements engine.Resource. It writes the patched file
// atomically, keeping owner and mode and a backup of the previous version,
// provided the file is still what Plan read.
func (p *Profile) Apply(ctx context.Context, ch *engine.Change, out engine.Output) error {
	if ch == nil || ch.Action == engine.NoOp {
		return nil
	}
	st, r, err := p.read(ctx)
	if err != nil {
		return err
	}
	if err := writeIfUnchanged(p.path, st, ch, r.out); err != nil {
		return err
	}
	out.Progress(Address, fmt.Sprintf("patched %s (previous version in %s)", p.path, p.path+executors.BackupSuffix))
	return nil
}

func (p *Profile) read(ctx context.Context) (executors.FileState, *result, error) {
	st, err := readProfile(ctx, p.path)
	if err != nil {
		return st, nil, err
	}
	r, err := patch(p.path, st.Content, p.want)
	if err != nil {
		return st, nil, fmt.Errorf("patch %s: %w", p.path, err)
	}
	return st, r, nil
}

// readProfile reads the file; it must exist: provision patches the ELN's
// profile, it never creates one.
func readProfile(ctx context.Context, path string) (executors.FileState, error) {
	if err := ctx.Err(); err != nil {
		return executors.FileState{}, err
	}
	st, err := executors.ReadFile(path)
	if err != nil {
		return st, err
	}
	if !st.Exists {
		return st, fmt.Errorf("read %s: %w (is the openBIS ELN installed on this host?)", path, errNotExist)
	}
	return st, nil
}

var errNotExist = errors.New("file does not exist")

func fingerprint(st executors.FileState) string {
	return executors.Fingerprint(st.Exists, st.Content)
}

func writeIfUnchanged(path string, st executors.FileState, ch *engine.Change, content []byte) error {
	if fingerprint(st) != ch.Fingerprint {
		return fmt.Errorf("write %s: the file changed since it was planned; plan again", path)
	}
	if bytes.Equal(content, st.Content) {
		return nil
	}
	return executors.WriteFile(path, content, st.Mode, -1, -1)
}

// Removal is the resource of a profile that left the spec: its desired
// state is "no managed block".
type Removal struct {
	address string
	path    string
}

// FromRecord builds the resource that removes the managed block recorded
// in rec.
func FromRecord(rec engine.Record) (engine.Resource, error) {
	if rec.Kind != Kind {
		return nil, fmt.Errorf("%s: record of kind %q, want %q", rec.Address, rec.Kind, Kind)
	}
	var d recordData
	if err := json.Unmarshal(rec.Data, &d); err != nil {
		return nil, fmt.Errorf("%s: decode record: %w", rec.Address, err)
	}
	if err := checkPath(d.Path); err != nil {
		return nil, err
	}
	return &Removal{address: rec.Address, path: d.Path}, nil
}

// Address implements engine.Resource.
func (r *Removal) Address() string { return r.address }

// Record implements engine.Resource; nothing is left to remember.
func (r *Removal) Record() *engine.Record { return nil }

// Plan implements engine.Resource: Delete with a diff while the managed
// block is there, NoOp once it (or the whole file) is gone.
func (r *Removal) Plan(ctx context.Context) (*engine.Change, error) {
	st, res, err := r.read(ctx)
	if err != nil {
		return nil, err
	}
	ch := &engine.Change{Address: r.address, Fingerprint: fingerprint(st)}
	if !st.Exists || bytes.Equal(res.out, st.Content) {
		return ch, nil
	}
	ch.Action = engine.Delete
	ch.Reasons = res.reasons
	ch.Warnings = res.warnings
	ch.Diff = executors.UnifiedDiff(r.path, st.Content, res.out)
	return ch, nil
}

// Apply implements engine.Resource.
func (r *Removal) Apply(ctx context.Context, ch *engine.Change, out engine.Output) error {
	if ch == nil || ch.Action == engine.NoOp {
		return nil
	}
	st, res, err := r.read(ctx)
	if err != nil {
		return err
	}
	if err := writeIfUnchanged(r.path, st, ch, res.out); err != nil {
		return err
	}
	out.Progress(r.address, fmt.Sprintf("removed the managed block from %s (previous version in %s)", r.path, r.path+executors.BackupSuffix))
	return nil
}

func (r *Removal) read(ctx context.Context) (executors.FileState, *result, error) {
	st, err := readProfile(ctx, r.path)
	if errors.Is(err, errNotExist) {
		return executors.FileState{}, &result{}, nil
	}
	if err != nil {
		return st, nil, err
	}
	res, err := unpatch(r.path, st.Content)
	if err != nil {
		return st, nil, fmt.Errorf("remove the managed block from %s: %w", r.path, err)
	}
	return st, res, nil
}

// Supersedes implements engine.Superseder: the profile moved to another
// path, whose managed block would otherwise stay.
func (p *Profile) Supersedes(old engine.Record) bool {
	var r recordData
	return json.Unmarshal(old.Data, &r) == nil && !executors.SameFile(r.Path, p.path)
}
