package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/openbis/provision/internal/engine"
	"github.com/openbis/provision/internal/imageref"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/openbis/provision/executors"
)

// KindImage is the address prefix and record kind of image resources.
const KindImage = "docker_image"

// ImageConfig is the desired image. Exactly one of Load, Pull and Build
// says where it comes from.
type ImageConfig struct {
	// Resource is the spec's block label; the address is
	// "docker_image."+Resource. Default "jupyterhub".
	Resource string
	// Host is the Docker daemon address (unix:///run/docker.sock,
	// tcp://…); empty means DOCKER_HOST or the default socket.
	Host string
	// Daemon, when set, is the client to use (its host is Host).
	Daemon *Daemon
	// Ref is the reference the image must carry: repo:tag or repo@digest.
	Ref imageref.Ref
	// Load is the path of a `docker save` tar on this host.
	Load string
	// Pull fetches Name from its registry.
	Pull bool
	// Build extends a base image from a recipe and tags the result Name.
	Build *BuildRecipe
	// Auth is the registry login for Pull (and for Build's base, if it
	// must be pulled); nil means ~/.docker/config.json.
	Auth *Auth
	// Keep is how many previous images of this resource cleanup keeps for
	// rollback: 0 means the default, 1; a negative value keeps none.
	Keep int
	// Deployment names the deployment; built images carry it as the
	// provision.deployment label and history tags carry it in their name.
	Deployment string
	// Refresh asks the registry whether Name's tag moved (pull only).
	// Without it plans stay offline.
	Refresh bool
}

// Image is a docker_image resource.
type Image struct {
	cfg    ImageConfig
	ref    imageref.Ref
	d      *Daemon
	absent bool
	// recordedID is the image ID a state record remembers (absent only).
	recordedID string
	now        func() time.Time
}

// NewImage validates cfg and returns the resource.
func NewImage(cfg ImageConfig) (*Image, error) {
	if cfg.Resource == "" {
		cfg.Resource = "jupyterhub"
	}
	addr := KindImage + "." + cfg.Resource
	ref := cfg.Ref
	if ref.Written == "" {
		return nil, fmt.Errorf("%s: no image reference", addr)
	}
	n := 0
	if cfg.Load != "" {
		n++
		if !strings.HasPrefix(cfg.Load, "/") {
			return nil, fmt.Errorf("%s: load: %q is not an absolute path", addr, cfg.Load)
		}
	}
	if cfg.Pull {
		n++
	}
	if cfg.Build != nil {
		n++
		if err := cfg.Build.Validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", addr, err)
		}
		if ref.Tag == "" {
			return nil, fmt.Errorf("%s: a built image needs a tag, not a digest: %s", addr, ref)
		}
	}
	if n != 1 {
		return nil, fmt.Errorf("%s: exactly one of load, pull and build must be set (%d are)", addr, n)
	}
	if cfg.Deployment == "" {
		return nil, fmt.Errorf("%s: deployment is empty", addr)
	}
	return &Image{cfg: cfg, ref: ref, d: daemonFor(cfg.Daemon, cfg.Host), now: time.Now}, nil
}

// imageRecord is what the state file keeps of an image resource.
type imageRecord struct {
	Resource   string `json:"resource"`
	Name       string `json:"name"`
	Deployment string `json:"deployment"`
	ID         string `json:"id,omitempty"`
}

// ImageFromRecord builds a resource whose desired state is "absent": its
// plan deletes the image's tag and history tags, if the tag still points
// at an image this resource put there.
func ImageFromRecord(rec engine.Record, d *Daemon) (engine.Resource, error) {
	var r imageRecord
	if err := json.Unmarshal(rec.Data, &r); err != nil {
		return nil, fmt.Errorf("%s: read state record: %w", rec.Address, err)
	}
	ref, err := imageref.Parse(r.Name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rec.Address, err)
	}
	cfg := ImageConfig{Resource: strings.TrimPrefix(rec.Address, KindImage+"."), Host: d.host, Ref: ref, Deployment: r.Deployment}
	return &Image{cfg: cfg, ref: ref, d: d, absent: true, recordedID: r.ID, now: time.Now}, nil
}

// Address implements engine.Resource.
func (im *Image) Address() string { return KindImage + "." + im.cfg.Resource }

// Record implements engine.Resource. The image ID is filled in once
// Plan or Apply has seen it.
func (im *Image) Record() *engine.Record {
	if im.absent {
		return nil
	}
	b, _ := json.Marshal(imageRecord{Resource: im.cfg.Resource, Name: im.ref.Familiar, Deployment: im.cfg.Deployment, ID: im.recordedID})
	return &engine.Record{Address: im.Address(), Kind: KindImage, Data: b}
}

// imagePlan is the executor-private part of a Change (Change.Data).
type imagePlan struct {
	// Op is load, pull, build, tag (point Name at an image already
	// present) or delete.
	Op string `json:"op"`
	// WantIDs are the IDs the result may have (config or manifest digest).
	WantIDs []string `json:"want_ids,omitempty"`
	OldID   string   `json:"old_id,omitempty"`
	BaseID  string   `json:"base_id,omitempty"`
	Recipe  string   `json:"recipe,omitempty"`
	// Tags, DiffIDs and Created identify a loaded image on the containerd
	// store when its ID cannot be known from the archive.
	Tags    []string `json:"tags,omitempty"`
	DiffIDs []string `json:"diff_ids,omitempty"`
	Created string   `json:"created,omitempty"`
}

// Plan reads the daemon (and the tar, by seeking) and says what is needed.
// Offline and fast: the registry is asked only with Refresh.
func (im *Image) Plan(ctx context.Context) (*engine.Change, error) {
	cli, err := im.d.client(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", im.Address(), err)
	}
	ch := &engine.Change{Address: im.Address()}
	local, err := inspectImage(ctx, cli, im.ref.Familiar)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", im.Address(), im.d.wrap(err))
	}
	var p imagePlan
	if local != nil {
		p.OldID = local.ID
		if !im.absent {
			im.recordedID = local.ID
		}
	}
	var fp []any
	switch {
	case im.absent:
		err = im.planDelete(ctx, cli, local, ch, &p)
	case im.cfg.Load != "":
		fp, err = im.planLoad(ctx, cli, local, ch, &p)
	case im.cfg.Pull:
		fp, err = im.planPull(ctx, cli, local, ch, &p)
	default:
		fp, err = im.planBuild(ctx, cli, local, ch, &p)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", im.Address(), err)
	}
	ch.Fingerprint = executors.Fingerprint(append([]any{p.OldID}, fp...)...)
	if ch.Action != engine.NoOp {
		ch.Data, _ = json.Marshal(p)
	}
	return ch, nil
}

func inspectImage(ctx context.Context, cli *client.Client, ref string) (*image.InspectResponse, error) {
	ins, err := cli.ImageInspect(ctx, ref)
	if client.IsErrNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("inspect image %s: %w", ref, err)
	}
	return &ins, nil
}

func (im *Image) planDelete(ctx context.Context, cli *client.Client, local *image.InspectResponse, ch *engine.Change, p *imagePlan) error {
	if local == nil {
		return nil
	}
	// Only an image this resource put in place: the recorded ID, or one
	// carrying a history tag of this resource.
	if local.ID != im.recordedID && !im.hasHistoryTag(local.RepoTags) {
		return nil
	}
	ch.Action = engine.Delete
	ch.Reasons = []string{"no longer in the spec"}
	ch.Fields = []engine.Field{{Name: "image_id", Old: local.ID}}
	p.Op = "delete"
	return nil
}

func (im *Image) hasHistoryTag(tags []string) bool {
	repo := historyRepo(im.cfg.Deployment, im.cfg.Resource) + ":"
	for _, t := range tags {
		if strings.HasPrefix(t, repo) {
			return true
		}
	}
	return false
}

// planLoad compares the tar's image with what Name points at. Reading the
// tar costs its headers and JSON files, whatever its size.
func (im *Image) planLoad(ctx context.Context, cli *client.Client, local *image.InspectResponse, ch *engine.Change, p *imagePlan) ([]any, error) {
	arch, err := ReadArchive(im.cfg.Load)
	if err != nil {
		return nil, err
	}
	img, err := pickArchiveImage(arch, im.ref)
	if err != nil {
		return nil, err
	}
	p.WantIDs = img.IDs()
	fp := []any{arch.Path, arch.Size, arch.ModTime.UnixNano(), p.WantIDs}
	if local != nil && im.d.sameImage(ctx, cli, local, img) {
		return fp, nil
	}
	field := engine.Field{Name: "image_id", New: img.ConfigDigest}
	if local != nil {
		field.Old = local.ID
		ch.Action = engine.Update
		ch.Reasons = append(ch.Reasons, fmt.Sprintf("%s holds another image than %s", im.cfg.Load, im.ref.Familiar))
	} else {
		ch.Action = engine.Create
		ch.Reasons = append(ch.Reasons, im.ref.Familiar+" not present")
	}
	ch.Fields = append(ch.Fields, field)
	// The image may be present already under another name: then a tag
	// suffices and the (large) load is skipped.
	for _, id := range p.WantIDs {
		if have, err := inspectImage(ctx, cli, id); err == nil && have != nil {
			p.Op = "tag"
			p.WantIDs = []string{have.ID}
			ch.Reasons = append(ch.Reasons, "image "+short(have.ID)+" already loaded: tag only")
			return fp, nil
		}
	}
	p.Op = "load"
	p.Tags, p.DiffIDs, p.Created = img.Tags, img.DiffIDs, img.Created
	ch.Fields = append(ch.Fields, engine.Field{Name: "archive", New: fmt.Sprintf("%s (%s, %d layers)", arch.Path, humanSize(arch.Size), img.Layers)})
	// docker load moves tags without a word; say it here.
	for _, t := range img.Tags {
		cur, err := inspectImage(ctx, cli, t)
		if err != nil || cur == nil || slices.Contains(p.WantIDs, cur.ID) {
			continue
		}
		ch.Warnings = append(ch.Warnings, fmt.Sprintf("loading %s moves tag %s from image %s to %s; the old image stays, untagged, until cleanup", arch.Path, t, short(cur.ID), short(img.ConfigDigest)))
	}
	return fp, nil
}

// pickArchiveImage finds the image of the tar that Name refers to: the
// only one, or the one tagged Name.
func pickArchiveImage(a *Archive, ref imageref.Ref) (ArchiveImage, error) {
	for _, img := range a.Images {
		if slices.Contains(img.Tags, ref.Tagged()) {
			return img, nil
		}
	}
	if len(a.Images) == 1 {
		return a.Images[0], nil
	}
	return ArchiveImage{}, fmt.Errorf("%s holds %d images and none is tagged %s", a.Path, len(a.Images), ref.Familiar)
}

func (im *Image) planPull(ctx context.Context, cli *client.Client, local *image.InspectResponse, ch *engine.Change, p *imagePlan) ([]any, error) {
	p.Op = "pull"
	if local == nil {
		ch.Action = engine.Create
		ch.Reasons = []string{im.ref.Familiar + " not present"}
		return nil, nil
	}
	// A digest-pinned image that is present is what was asked for; a tag
	// is checked against the registry only with Refresh.
	if im.ref.Digest != "" || !im.cfg.Refresh {
		return nil, nil
	}
	auth, err := registryAuth(ctx, im.cfg.Auth, im.ref)
	if err != nil {
		return nil, err
	}
	di, err := cli.DistributionInspect(ctx, im.ref.Familiar, auth)
	if err != nil {
		return nil, fmt.Errorf("ask the registry for %s: %w", im.ref.Familiar, im.d.wrap(err))
	}
	remote := di.Descriptor.Digest.String()
	for _, rd := range local.RepoDigests {
		if _, d, ok := strings.Cut(rd, "@"); ok && d == remote && strings.HasPrefix(familiar(rd), im.ref.Repo+"@") {
			return []any{remote}, nil
		}
	}
	ch.Action = engine.Update
	ch.Reasons = []string{fmt.Sprintf("registry's %s now points to %s", im.ref.Familiar, remote)}
	old := ""
	for _, rd := range local.RepoDigests {
		if strings.HasPrefix(familiar(rd), im.ref.Repo+"@") {
			_, old, _ = strings.Cut(rd, "@")
		}
	}
	ch.Fields = []engine.Field{{Name: "digest", Old: old, New: remote}}
	return []any{remote}, nil
}

func (im *Image) planBuild(ctx context.Context, cli *client.Client, local *image.InspectResponse, ch *engine.Change, p *imagePlan) ([]any, error) {
	r := im.cfg.Build
	base, err := inspectImage(ctx, cli, r.From)
	if err != nil {
		return nil, err
	}
	oldRecipe := ""
	if local != nil && local.Config != nil {
		oldRecipe = local.Config.Labels[LabelRecipe]
	}
	if base == nil {
		// The base may come from another resource applied first; the hash
		// is computed at apply time.
		p.Op = "build"
		ch.Action = engine.Create
		if local != nil {
			ch.Action = engine.Update
		}
		ch.Reasons = []string{"base image " + r.From + " not present yet"}
		return []any{"no-base"}, nil
	}
	p.BaseID = base.ID
	if p.Recipe, err = r.Hash(base.ID); err != nil {
		return nil, err
	}
	fp := []any{base.ID, p.Recipe}
	if oldRecipe == p.Recipe {
		return fp, nil
	}
	ch.Fields = []engine.Field{{Name: "recipe", Old: oldRecipe, New: p.Recipe}}
	if local == nil {
		ch.Action = engine.Create
		ch.Reasons = []string{im.ref.Familiar + " not present"}
	} else {
		ch.Action = engine.Update
		ch.Reasons = []string{"recipe or base image changed"}
		if local.Config != nil && local.Config.Labels[LabelBase] != "" && local.Config.Labels[LabelBase] != base.ID {
			ch.Fields = append(ch.Fields, engine.Field{Name: "base_id", Old: local.Config.Labels[LabelBase], New: base.ID})
		}
	}
	// An earlier build of the same recipe (a rollback) only needs its tag.
	list, err := cli.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("label", LabelRecipe+"="+p.Recipe))})
	if err != nil {
		return nil, im.d.wrap(err)
	}
	if len(list) > 0 {
		p.Op = "tag"
		p.WantIDs = []string{list[0].ID}
		ch.Reasons = append(ch.Reasons, "image "+short(list[0].ID)+" was built from this recipe before: tag only")
		return fp, nil
	}
	p.Op = "build"
	return fp, nil
}

// Apply performs the planned change: load, pull, build or tag, then tags
// the result in this resource's history and removes history images beyond
// Keep. It verifies that the result is the image the plan announced.
func (im *Image) Apply(ctx context.Context, ch *engine.Change, out engine.Output) error {
	if ch == nil || ch.Action == engine.NoOp {
		return nil
	}
	var p imagePlan
	if err := json.Unmarshal(ch.Data, &p); err != nil {
		return fmt.Errorf("%s: read plan data: %w", im.Address(), err)
	}
	cli, err := im.d.client(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", im.Address(), err)
	}
	var id string
	switch p.Op {
	case "delete":
		return im.applyDelete(ctx, cli, out)
	case "tag":
		id = p.WantIDs[0]
		out.Progress(im.Address(), fmt.Sprintf("tagging %s as %s", short(id), im.ref.Familiar))
		if err := cli.ImageTag(ctx, id, im.ref.Familiar); err != nil {
			return fmt.Errorf("%s: tag %s as %s: %w", im.Address(), short(id), im.ref.Familiar, im.d.wrap(err))
		}
	case "load":
		id, err = im.applyLoad(ctx, cli, p, out)
	case "pull":
		id, err = im.applyPull(ctx, cli, out)
	case "build":
		id, err = im.applyBuild(ctx, cli, p, out)
	default:
		return fmt.Errorf("%s: unknown planned operation %q", im.Address(), p.Op)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", im.Address(), err)
	}
	im.recordedID = id
	tag := historyRepo(im.cfg.Deployment, im.cfg.Resource) + ":" + historyTag(im.now().UTC().Format("20060102-150405"), currentUser(), id)
	if err := cli.ImageTag(ctx, id, tag); err != nil {
		return fmt.Errorf("%s: tag %s as %s: %w", im.Address(), short(id), tag, err)
	}
	return im.cleanup(ctx, cli, id, out)
}

func (im *Image) applyLoad(ctx context.Context, cli *client.Client, p imagePlan, out engine.Output) (string, error) {
	f, err := os.Open(im.cfg.Load)
	if err != nil {
		return "", fmt.Errorf("load image: %w", err)
	}
	defer f.Close()
	out.Progress(im.Address(), "loading "+im.cfg.Load)
	// The file streams to the daemon: memory stays flat whatever its size.
	resp, err := cli.ImageLoad(ctx, f, client.ImageLoadWithQuiet(false))
	if err != nil {
		return "", fmt.Errorf("load image %s: %w", im.cfg.Load, im.d.wrap(err))
	}
	defer resp.Body.Close()
	if err := stream(resp.Body, out, im.Address(), nil); err != nil {
		return "", fmt.Errorf("load image %s: %w", im.cfg.Load, err)
	}
	// The loaded image, by ID, or on the containerd store by the tags the
	// load set and its content.
	candidates := append(append([]string{}, p.WantIDs...), p.Tags...)
	for _, id := range candidates {
		have, err := inspectImage(ctx, cli, id)
		if err != nil {
			return "", err
		}
		if have == nil || !(slices.Contains(p.WantIDs, have.ID) || (p.Created != "" && sameContent(have, p.DiffIDs, p.Created) && im.d.containerdStore(ctx, cli))) {
			continue
		}
		if err := cli.ImageTag(ctx, have.ID, im.ref.Familiar); err != nil {
			return "", fmt.Errorf("tag %s as %s: %w", short(have.ID), im.ref.Familiar, err)
		}
		return have.ID, nil
	}
	return "", fmt.Errorf("load image %s: the daemon does not have image %s after the load (the file changed since the plan?)", im.cfg.Load, short(p.WantIDs[0]))
}

func (im *Image) applyPull(ctx context.Context, cli *client.Client, out engine.Output) (string, error) {
	auth, err := registryAuth(ctx, im.cfg.Auth, im.ref)
	if err != nil {
		return "", err
	}
	out.Progress(im.Address(), "pulling "+im.ref.Familiar)
	rc, err := cli.ImagePull(ctx, im.ref.Familiar, image.PullOptions{RegistryAuth: auth})
	if err != nil {
		return "", pullErr(im.ref, im.d.wrap(err))
	}
	defer rc.Close()
	if err := stream(rc, out, im.Address(), nil); err != nil {
		return "", pullErr(im.ref, err)
	}
	have, err := inspectImage(ctx, cli, im.ref.Familiar)
	if err != nil {
		return "", err
	}
	if have == nil {
		return "", fmt.Errorf("pull %s: image not present after the pull", im.ref.Familiar)
	}
	return have.ID, nil
}

// pullErr explains the registry's terse auth answers.
func pullErr(ref imageref.Ref, err error) error {
	msg := err.Error()
	if strings.Contains(msg, "unauthorized") || strings.Contains(msg, "authentication required") || strings.Contains(msg, "denied") || strings.Contains(msg, "no basic auth credentials") {
		return fmt.Errorf("pull %s: registry %s refused the credentials (set auth in the spec or `docker login %s`): %w", ref.Familiar, ref.Domain, ref.Domain, err)
	}
	return fmt.Errorf("pull %s: %w", ref.Familiar, err)
}

func (im *Image) applyBuild(ctx context.Context, cli *client.Client, p imagePlan, out engine.Output) (string, error) {
	r := im.cfg.Build
	base, err := inspectImage(ctx, cli, r.From)
	if err != nil {
		return "", err
	}
	if base == nil {
		return "", fmt.Errorf("build %s: base image %s not present (declare it as a docker_image to pull or load it)", im.ref.Familiar, r.From)
	}
	if p.BaseID != "" && p.BaseID != base.ID {
		return "", fmt.Errorf("build %s: base image %s changed since the plan (%s, was %s); plan again", im.ref.Familiar, r.From, short(base.ID), short(p.BaseID))
	}
	hash, err := r.Hash(base.ID)
	if err != nil {
		return "", err
	}
	df, err := r.Dockerfile()
	if err != nil {
		return "", err
	}
	bctx, err := buildContext(df)
	if err != nil {
		return "", fmt.Errorf("build %s: make build context: %w", im.ref.Familiar, err)
	}
	out.Progress(im.Address(), "building "+im.ref.Familiar+" from "+r.From)
	resp, err := cli.ImageBuild(ctx, bctx, build.ImageBuildOptions{
		Tags:        []string{im.ref.Familiar},
		Dockerfile:  "Dockerfile",
		Remove:      true,
		ForceRemove: true,
		Labels:      map[string]string{LabelRecipe: hash, LabelBase: base.ID, LabelDeployment: im.cfg.Deployment},
		// The classic builder: the only one Engine 20.10 offers over the
		// plain API.
		Version: build.BuilderV1,
	})
	if err != nil {
		return "", fmt.Errorf("build %s: %w", im.ref.Familiar, im.d.wrap(err))
	}
	defer resp.Body.Close()
	var id string
	aux := func(jm jsonmessage.JSONMessage) {
		var res build.Result
		if json.Unmarshal(*jm.Aux, &res) == nil && res.ID != "" {
			id = res.ID
		}
	}
	if err := stream(resp.Body, out, im.Address(), aux); err != nil {
		return "", fmt.Errorf("build %s: %w", im.ref.Familiar, err)
	}
	have, err := inspectImage(ctx, cli, im.ref.Familiar)
	if err != nil {
		return "", err
	}
	if have == nil || (id != "" && have.ID != id) {
		return "", fmt.Errorf("build %s: the built image is not tagged %s", im.ref.Familiar, im.ref.Familiar)
	}
	return have.ID, nil
}

func (im *Image) applyDelete(ctx context.Context, cli *client.Client, out engine.Output) error {
	repo := historyRepo(im.cfg.Deployment, im.cfg.Resource)
	hist, err := im.history(ctx, cli, repo)
	if err != nil {
		return fmt.Errorf("%s: %w", im.Address(), err)
	}
	refs := []string{im.ref.Familiar}
	for _, h := range hist {
		refs = append(refs, h.tags...)
	}
	for _, r := range refs {
		out.Progress(im.Address(), "removing "+r)
		if _, err := cli.ImageRemove(ctx, r, image.RemoveOptions{PruneChildren: true}); err != nil && !client.IsErrNotFound(err) {
			return fmt.Errorf("%s: remove image %s: %w", im.Address(), r, err)
		}
	}
	return nil
}

type historyEntry struct {
	id     string
	newest string
	tags   []string
}

// history lists the images this resource put in place, newest first.
func (im *Image) history(ctx context.Context, cli *client.Client, repo string) ([]historyEntry, error) {
	list, err := cli.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("reference", repo))})
	if err != nil {
		return nil, fmt.Errorf("list images of %s: %w", repo, im.d.wrap(err))
	}
	var hist []historyEntry
	for _, s := range list {
		e := historyEntry{id: s.ID}
		for _, t := range s.RepoTags {
			if tag, ok := strings.CutPrefix(t, repo+":"); ok {
				e.tags = append(e.tags, t)
				if tag > e.newest {
					e.newest = tag
				}
			}
		}
		if len(e.tags) > 0 {
			hist = append(hist, e)
		}
	}
	sort.Slice(hist, func(i, j int) bool { return hist[i].newest > hist[j].newest })
	return hist, nil
}

// cleanup removes the history tags of images older than the Keep previous
// ones, after the stopped containers of this deployment that use them.
// Removing the last tag of an image deletes it; an image that still has
// other tags, or that a running container uses, stays: nothing but this
// resource's own history and its deployment's stopped containers is
// touched.
func (im *Image) cleanup(ctx context.Context, cli *client.Client, current string, out engine.Output) error {
	keep := im.cfg.Keep
	if keep == 0 {
		keep = 1
	}
	if keep < 0 {
		keep = 0
	}
	hist, err := im.history(ctx, cli, historyRepo(im.cfg.Deployment, im.cfg.Resource))
	if err != nil {
		return fmt.Errorf("%s: cleanup: %w", im.Address(), err)
	}
	kept := 0
	for _, h := range hist {
		if h.id == current {
			continue
		}
		if kept < keep {
			kept++
			continue
		}
		// Stopped containers of this deployment would pin the image.
		stopped, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
			filters.Arg("label", LabelDeployment+"="+im.cfg.Deployment), filters.Arg("ancestor", h.id))})
		if err != nil {
			return fmt.Errorf("%s: cleanup: list containers: %w", im.Address(), err)
		}
		for _, c := range stopped {
			if c.ImageID != h.id || (c.State != "exited" && c.State != "created" && c.State != "dead") {
				continue
			}
			out.Progress(im.Address(), "cleanup: removing stopped container "+containerName(c))
			if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{}); err != nil && !client.IsErrNotFound(err) {
				return fmt.Errorf("%s: cleanup: remove stopped container %s: %w", im.Address(), containerName(c), err)
			}
		}
		for _, t := range h.tags {
			_, err := cli.ImageRemove(ctx, t, image.RemoveOptions{PruneChildren: true})
			switch {
			case err == nil:
				out.Progress(im.Address(), "cleanup: removed "+t)
			case isConflict(err):
				out.Progress(im.Address(), "cleanup: kept "+t+" (in use by a container)")
			case client.IsErrNotFound(err):
			default:
				return fmt.Errorf("%s: cleanup: remove %s: %w", im.Address(), t, err)
			}
		}
	}
	return nil
}

func isConflict(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "conflict") || strings.Contains(err.Error(), "is using"))
}

func currentUser() string {
	for _, k := range []string{"SUDO_USER", "USER", "LOGNAME"} {
		if u := os.Getenv(k); u != "" {
			return u
		}
	}
	return strconv.Itoa(os.Getuid())
}

// short is the 12-hex-digit form docker prints.
func short(id string) string {
	_, h, ok := strings.Cut(id, ":")
	if !ok {
		h = id
	}
	if len(h) > 12 {
		h = h[:12]
	}
	return h
}

func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
