package docker

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Archive is what a `docker save` tar holds, read without reading the
// layers: the tar's headers are walked by seeking over file data, and only
// the small JSON files (manifest.json, index.json, image configs, OCI
// manifests) are read.
type Archive struct {
	Path    string
	Size    int64
	ModTime time.Time
	Images  []ArchiveImage
	// OCI is true for the OCI image layout (Docker >= 25 writes it, with
	// a manifest.json beside it for older loaders).
	OCI bool
}

// ArchiveImage is one image in an archive.
type ArchiveImage struct {
	// ConfigDigest is the image ID in the classic image store.
	ConfigDigest string
	// ManifestDigests are the IDs the containerd image store may use: the
	// manifest's digest and, for a multi-platform save, the index's.
	ManifestDigests []string
	// Tags are the familiar names the load will tag ("jupyterhub:1").
	Tags []string
	// Layers is the number of layers.
	Layers int
	// DiffIDs and Created come from the config: they identify the image
	// on the containerd image store when the archive has no manifest
	// digest that store would use (classic layout).
	DiffIDs []string
	Created string
}

// setConfig fills what the image config says.
func (a *ArchiveImage) setConfig(cfg []byte) error {
	var c struct {
		Created string `json:"created"`
		RootFS  struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(cfg, &c); err != nil {
		return fmt.Errorf("parse image config: %w", err)
	}
	a.ConfigDigest, a.Created, a.DiffIDs = sha256Digest(cfg), c.Created, c.RootFS.DiffIDs
	return nil
}

// IDs lists every ID under which a daemon may know this image.
func (a ArchiveImage) IDs() []string {
	return append([]string{a.ConfigDigest}, a.ManifestDigests...)
}

// maxJSON bounds the metadata files read into memory.
const maxJSON = 16 << 20

type tarEntry struct {
	offset, size int64
	typ          byte
	link         string
}

// ReadArchive reads the image metadata of a `docker save` tar at path.
func ReadArchive(p string) (*Archive, error) {
	// O_NONBLOCK: a FIFO at the path is refused below, not waited on.
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("read image archive: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read image archive %s: %w", p, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("read image archive %s: not a regular file (%s)", p, fi.Mode().Type())
	}
	a, err := readArchive(f, fi.Size())
	if err != nil {
		return nil, fmt.Errorf("read image archive %s: %w", p, err)
	}
	a.Path, a.ModTime = p, fi.ModTime()
	return a, nil
}

// readArchive walks the tar in r (size bytes). tar.Reader seeks over
// entry data when r is an io.Seeker, so a 5 GB archive costs a few hundred
// 512-byte reads.
func readArchive(r io.ReadSeeker, size int64) (*Archive, error) {
	entries := map[string]tarEntry{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("not a complete tar archive (truncated or corrupt): %w", err)
		}
		off, err := r.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, err
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		entries[name] = tarEntry{offset: off, size: h.Size, typ: h.Typeflag, link: h.Linkname}
	}
	if len(entries) == 0 {
		return nil, errors.New("empty tar archive")
	}
	ra, ok := r.(io.ReaderAt)
	if !ok {
		return nil, errors.New("archive reader cannot read at offsets")
	}
	rd := &entryReader{r: ra, entries: entries, size: size}
	a := &Archive{Size: size}
	_, hasIndex := entries["index.json"]
	_, hasLayout := entries["oci-layout"]
	a.OCI = hasIndex && hasLayout

	if _, ok := entries["manifest.json"]; ok {
		if err := rd.readDockerManifest(a); err != nil {
			return nil, err
		}
	}
	if a.OCI {
		if err := rd.readOCIIndex(a); err != nil {
			return nil, err
		}
	}
	if len(a.Images) == 0 {
		return nil, errors.New("no manifest.json or OCI index.json: not a `docker save` archive")
	}
	for i := range a.Images {
		sort.Strings(a.Images[i].Tags)
	}
	return a, nil
}

type entryReader struct {
	r       io.ReaderAt
	entries map[string]tarEntry
	size    int64
}

// resolve follows symlinks and hard links inside the archive (Docker >= 25
// links the classic layer paths to the OCI blobs).
func (e *entryReader) resolve(name string) (tarEntry, error) {
	name = path.Clean(name)
	for range 8 {
		ent, ok := e.entries[name]
		if !ok {
			return tarEntry{}, fmt.Errorf("%s is missing from the archive", name)
		}
		switch ent.typ {
		case tar.TypeSymlink:
			name = path.Clean(path.Join(path.Dir(name), ent.link))
		case tar.TypeLink:
			name = path.Clean(ent.link)
		case tar.TypeReg, tar.TypeRegA:
			if ent.offset+ent.size > e.size {
				return tarEntry{}, fmt.Errorf("%s extends past the end of the archive (truncated)", name)
			}
			return ent, nil
		default:
			return tarEntry{}, fmt.Errorf("%s is not a regular file", name)
		}
	}
	return tarEntry{}, fmt.Errorf("%s: too many links", name)
}

func (e *entryReader) read(name string) ([]byte, error) {
	ent, err := e.resolve(name)
	if err != nil {
		return nil, err
	}
	if ent.size > maxJSON {
		return nil, fmt.Errorf("%s is %d bytes, too large for image metadata", name, ent.size)
	}
	b := make([]byte, ent.size)
	if _, err := e.r.ReadAt(b, ent.offset); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return b, nil
}

func (e *entryReader) readJSON(name string, v any) ([]byte, error) {
	b, err := e.read(name)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return nil, fmt.Errorf("parse %s: %w", name, err)
	}
	return b, nil
}

func sha256Digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// blobPath maps an OCI digest to its path in the layout.
func blobPath(digest string) (string, error) {
	alg, hexPart, ok := strings.Cut(digest, ":")
	if !ok || alg == "" || hexPart == "" || strings.ContainsAny(digest, "/.") {
		return "", fmt.Errorf("invalid digest %q", digest)
	}
	return "blobs/" + alg + "/" + hexPart, nil
}

type dockerManifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

func (e *entryReader) readDockerManifest(a *Archive) error {
	var m []dockerManifestEntry
	if _, err := e.readJSON("manifest.json", &m); err != nil {
		return err
	}
	for _, im := range m {
		cfg, err := e.read(im.Config)
		if err != nil {
			return fmt.Errorf("image config: %w", err)
		}
		// Every layer must be there, whole: a truncated archive fails here,
		// at plan time, instead of half-way through a load.
		for _, l := range im.Layers {
			if _, err := e.resolve(l); err != nil {
				return fmt.Errorf("layer: %w", err)
			}
		}
		img := ArchiveImage{Layers: len(im.Layers)}
		if err := img.setConfig(cfg); err != nil {
			return err
		}
		for _, t := range im.RepoTags {
			img.Tags = append(img.Tags, familiar(t))
		}
		a.Images = append(a.Images, img)
	}
	return nil
}

type ociDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *struct {
		Architecture string `json:"architecture"`
		OS           string `json:"os"`
	} `json:"platform,omitempty"`
}

type ociIndex struct {
	MediaType string          `json:"mediaType"`
	Manifests []ociDescriptor `json:"manifests"`
}

type ociManifest struct {
	MediaType string          `json:"mediaType"`
	Config    ociDescriptor   `json:"config"`
	Layers    []ociDescriptor `json:"layers"`
}

const (
	mediaOCIIndex      = "application/vnd.oci.image.index.v1+json"
	mediaDockerList    = "application/vnd.docker.distribution.manifest.list.v2+json"
	annotationImgName  = "io.containerd.image.name"
	annotationRefName  = "org.opencontainers.image.ref.name"
	maxIndexDepth      = 3
	preferredArch      = "amd64"
	preferredOS        = "linux"
	unknownPlatformArc = "unknown"
)

// readOCIIndex adds manifest digests and tags from index.json; images
// already found in manifest.json are matched by config digest.
func (e *entryReader) readOCIIndex(a *Archive) error {
	var idx ociIndex
	if _, err := e.readJSON("index.json", &idx); err != nil {
		return err
	}
	for _, d := range idx.Manifests {
		img, err := e.resolveDescriptor(d, 0)
		if err != nil {
			return err
		}
		if n := d.Annotations[annotationImgName]; n != "" {
			img.Tags = append(img.Tags, familiar(n))
		}
		merged := false
		for i := range a.Images {
			if a.Images[i].ConfigDigest == img.ConfigDigest {
				a.Images[i].ManifestDigests = appendUnique(a.Images[i].ManifestDigests, img.ManifestDigests...)
				for _, t := range img.Tags {
					a.Images[i].Tags = appendUnique(a.Images[i].Tags, t)
				}
				merged = true
			}
		}
		if !merged {
			a.Images = append(a.Images, img)
		}
	}
	return nil
}

// resolveDescriptor follows an index (picking linux/amd64, else the first
// manifest) down to a manifest and its config.
func (e *entryReader) resolveDescriptor(d ociDescriptor, depth int) (ArchiveImage, error) {
	if depth > maxIndexDepth {
		return ArchiveImage{}, errors.New("OCI index nested too deep")
	}
	p, err := blobPath(d.Digest)
	if err != nil {
		return ArchiveImage{}, err
	}
	b, err := e.read(p)
	if err != nil {
		return ArchiveImage{}, fmt.Errorf("OCI manifest: %w", err)
	}
	if got := sha256Digest(b); strings.HasPrefix(d.Digest, "sha256:") && got != d.Digest {
		return ArchiveImage{}, fmt.Errorf("%s: content digest is %s (corrupt archive)", p, got)
	}
	var probe struct {
		MediaType string          `json:"mediaType"`
		Manifests []ociDescriptor `json:"manifests"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return ArchiveImage{}, fmt.Errorf("parse %s: %w", p, err)
	}
	mt := probe.MediaType
	if mt == "" {
		mt = d.MediaType
	}
	if mt == mediaOCIIndex || mt == mediaDockerList || (mt == "" && len(probe.Manifests) > 0) {
		var pick *ociDescriptor
		for i, m := range probe.Manifests {
			if m.Platform != nil && m.Platform.OS == preferredOS && m.Platform.Architecture == preferredArch {
				pick = &probe.Manifests[i]
				break
			}
		}
		if pick == nil {
			for i, m := range probe.Manifests {
				// Attestation manifests carry the platform "unknown".
				if m.Platform == nil || m.Platform.Architecture != unknownPlatformArc {
					pick = &probe.Manifests[i]
					break
				}
			}
		}
		if pick == nil {
			return ArchiveImage{}, fmt.Errorf("%s: index lists no image manifest", p)
		}
		img, err := e.resolveDescriptor(*pick, depth+1)
		if err != nil {
			return ArchiveImage{}, err
		}
		img.ManifestDigests = append([]string{d.Digest}, img.ManifestDigests...)
		return img, nil
	}
	var m ociManifest
	if err := json.Unmarshal(b, &m); err != nil {
		return ArchiveImage{}, fmt.Errorf("parse %s: %w", p, err)
	}
	cp, err := blobPath(m.Config.Digest)
	if err != nil {
		return ArchiveImage{}, err
	}
	cfg, err := e.read(cp)
	if err != nil {
		return ArchiveImage{}, fmt.Errorf("image config: %w", err)
	}
	for _, l := range m.Layers {
		lp, err := blobPath(l.Digest)
		if err != nil {
			return ArchiveImage{}, err
		}
		ent, err := e.resolve(lp)
		if err != nil {
			return ArchiveImage{}, fmt.Errorf("layer: %w", err)
		}
		if ent.size != l.Size {
			return ArchiveImage{}, fmt.Errorf("layer %s: %d bytes in the archive, manifest says %d (corrupt archive)", lp, ent.size, l.Size)
		}
	}
	img := ArchiveImage{ManifestDigests: []string{d.Digest}, Layers: len(m.Layers)}
	return img, img.setConfig(cfg)
}

func appendUnique(s []string, add ...string) []string {
	for _, a := range add {
		found := false
		for _, x := range s {
			if x == a {
				found = true
				break
			}
		}
		if !found {
			s = append(s, a)
		}
	}
	return s
}
