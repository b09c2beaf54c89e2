// Package hubimage builds a real JupyterHub image to stand in for the
// JupyterHub-for-openBIS image in integration tests, written as a classic
// `docker save` tar (no Docker daemon needed to make it).
//
// The base root file system is Debian bookworm with Debian's JupyterHub
// 3.0, configurable-http-proxy, the classic notebook server and tornado,
// built once with debootstrap from the Debian mirror this machine's apt
// sources name (build-rootfs.sh). A second, small layer holds the image's
// contract with the guide (image/vagrant/...: start script, hub config,
// openBIS authenticator, integration service) and the test CA in the
// trust store, so the container verifies openBIS's certificate.
//
// Both are cached under /var/cache/provision-test, keyed by a hash of the
// recipe and the CA: a change to either rebuilds. Builds go to temporary
// paths renamed into place under a lock, so an interrupted or concurrent
// build never leaves a half cache. Building needs root and debootstrap.
package hubimage

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/openbis/provision/testenv/cache"
	"github.com/openbis/provision/testenv/imagetar"
	"github.com/openbis/provision/testenv/pki"
)

// DefaultRef is the tag the image gets.
const DefaultRef = "openbis/jupyterhub-openbis-debian:3.0"

// DefaultCacheDir holds the root file system and the image tars.
const DefaultCacheDir = "/var/cache/provision-test"

// StartCommand is the command the guide's docker run passes to the image.
const StartCommand = "./vagrant/initialize/start_jupyterhub.sh"

// Paths of the image's trust store entries for the test CA.
const (
	CAPath     = "/usr/local/share/ca-certificates/provision-test-ca.crt"
	BundlePath = "/etc/ssl/certs/ca-certificates.crt"
)

//go:embed build-rootfs.sh
var buildScript []byte

//go:embed image
var imageFiles embed.FS

// Options tune Ensure. The zero value is fine.
type Options struct {
	// CacheDir defaults to DefaultCacheDir.
	CacheDir string
	// CADir is the test CA baked into the trust store; default pki.DefaultDir.
	CADir string
	// Mirror is the Debian mirror URI; default: from this machine's apt
	// sources (see Mirror).
	Mirror string
	// Ref defaults to DefaultRef.
	Ref string
	// Log receives build output; default os.Stderr.
	Log io.Writer
}

// Image is a built image tar.
type Image struct {
	// Ref is the tag inside the tar, e.g. DefaultRef.
	Ref string
	// Tar is the path of the docker save tar.
	Tar string
	// ID is the image ID ("sha256:…"), the digest of its config.
	ID string
}

// Ensure returns the cached image tar for opts, building what is missing:
// the base root file system (minutes, once) and the tar (seconds).
func Ensure(ctx context.Context, opts Options) (Image, error) {
	if opts.CacheDir == "" {
		opts.CacheDir = DefaultCacheDir
	}
	if opts.Ref == "" {
		opts.Ref = DefaultRef
	}
	if opts.Log == nil {
		opts.Log = os.Stderr
	}
	ca, err := pki.LoadOrCreateCA(opts.CADir)
	if err != nil {
		return Image{}, fmt.Errorf("hub image: %w", err)
	}
	overlay, err := overlayFiles(ca.CertPEM())
	if err != nil {
		return Image{}, fmt.Errorf("hub image: %w", err)
	}
	rootKey := hash(buildScript)
	rootfs := filepath.Join(opts.CacheDir, "hubimage-rootfs-"+rootKey)
	key := hash(buildScript, []byte(opts.Ref), overlayDigest(overlay), ca.CertPEM())
	img := Image{Ref: opts.Ref, Tar: filepath.Join(opts.CacheDir, "hubimage-"+key+".tar")}
	if id, err := readID(img.Tar); err == nil {
		img.ID = id
		return img, nil
	}

	if err := os.MkdirAll(opts.CacheDir, 0o755); err != nil {
		return Image{}, fmt.Errorf("hub image: %w", err)
	}
	if err := ensureRootfs(ctx, rootfs, opts); err != nil {
		return Image{}, err
	}
	unlock, err := cache.Lock(filepath.Join(opts.CacheDir, "hubimage.lock"))
	if err != nil {
		return Image{}, fmt.Errorf("hub image: %w", err)
	}
	defer unlock()
	if id, err := readID(img.Tar); err == nil {
		img.ID = id
		return img, nil
	}
	// Left by a killed writer; holding the lock, no one else is writing.
	stale, _ := filepath.Glob(filepath.Join(opts.CacheDir, ".hubimage-build-*"))
	for _, p := range stale {
		os.RemoveAll(p)
	}
	fmt.Fprintf(opts.Log, "hubimage: writing %s\n", img.Tar)
	id, err := writeTar(ctx, img, rootfs, overlay)
	if err != nil {
		return Image{}, err
	}
	img.ID = id
	prune(opts.CacheDir, img.Tar, rootfs)
	return img, nil
}

func hash(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:", len(p))
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func ensureRootfs(ctx context.Context, dir string, opts Options) error {
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		return nil
	}
	for _, tool := range []string{"debootstrap", "chroot", "unshare", "flock"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("hub image: %s not found (apt-get install -y debootstrap util-linux): %w", tool, err)
		}
	}
	mirror := opts.Mirror
	if mirror == "" {
		var err error
		if mirror, err = Mirror("/etc/apt"); err != nil {
			return fmt.Errorf("hub image: %w", err)
		}
	}
	fmt.Fprintf(opts.Log, "hubimage: building %s with debootstrap (once; about 2 minutes)\n", dir)
	start := time.Now()
	cmd := exec.CommandContext(ctx, "sh", "-s", "--", dir, mirror)
	cmd.Stdin = bytes.NewReader(buildScript)
	cmd.Stdout, cmd.Stderr = opts.Log, opts.Log
	// Its own process group: cancelling kills debootstrap's children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("hub image: build root file system %s: %w", dir, err)
	}
	fmt.Fprintf(opts.Log, "hubimage: root file system built in %s\n", time.Since(start).Round(time.Second))
	return nil
}

// overlayFiles is the image's second layer: the guide's /vagrant tree and
// the test CA in the trust store. The bundle is completed in writeTar.
func overlayFiles(caPEM []byte) ([]imagetar.File, error) {
	var files []imagetar.File
	err := fs.WalkDir(imageFiles, "image", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "image" {
			return err
		}
		name := strings.TrimPrefix(p, "image/")
		if d.IsDir() {
			files = append(files, imagetar.File{Name: name + "/", Mode: 0o755})
			return nil
		}
		b, err := imageFiles.ReadFile(p)
		if err != nil {
			return err
		}
		mode := int64(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		files = append(files, imagetar.File{Name: name, Mode: mode, Content: b})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("image files: %w", err)
	}
	files = append(files, imagetar.File{Name: strings.TrimPrefix(CAPath, "/"), Mode: 0o644, Content: caPEM})
	return files, nil
}

func overlayDigest(files []imagetar.File) []byte {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s %o %d\n", f.Name, f.Mode, len(f.Content))
		h.Write(f.Content)
	}
	return h.Sum(nil)
}

// skipInLayer leaves out what Docker provides at run time and the build's
// own marker.
func skipInLayer(rel string) bool {
	switch path.Dir(rel) {
	case "dev", "proc", "sys", "run", "tmp":
		return true
	}
	return rel == ".complete"
}

func writeTar(ctx context.Context, img Image, rootfs string, overlay []imagetar.File) (string, error) {
	tmp, err := os.MkdirTemp(filepath.Dir(img.Tar), ".hubimage-build-")
	if err != nil {
		return "", fmt.Errorf("hub image: %w", err)
	}
	defer os.RemoveAll(tmp)

	bundle, err := os.ReadFile(filepath.Join(rootfs, BundlePath))
	if err != nil {
		return "", fmt.Errorf("hub image: read the base trust store: %w", err)
	}
	ca := overlay[len(overlay)-1].Content
	// The same bundle update-ca-certificates would write.
	bundle = append(append(bundle, '\n'), ca...)
	overlay = append(overlay, imagetar.File{Name: strings.TrimPrefix(BundlePath, "/"), Mode: 0o644, Content: bundle})

	base, err := imagetar.WriteLayer(filepath.Join(tmp, "base.tar"), func(w io.Writer) error {
		return imagetar.WriteDir(&ctxWriter{ctx, w}, rootfs, skipInLayer)
	})
	if err != nil {
		return "", fmt.Errorf("hub image: base layer: %w", err)
	}
	top, err := imagetar.WriteLayer(filepath.Join(tmp, "vagrant.tar"), func(w io.Writer) error {
		return imagetar.WriteFiles(w, overlay)
	})
	if err != nil {
		return "", fmt.Errorf("hub image: vagrant layer: %w", err)
	}
	out := filepath.Join(tmp, "image.tar")
	id, err := imagetar.Write(out, img.Ref, imagetar.Config{
		Env: []string{
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"LANG=C.UTF-8",
		},
		WorkingDir: "/",
		Labels:     map[string]string{"org.openbis.provision.standin": "debian-jupyterhub-3.0"},
	}, []imagetar.Layer{base, top})
	if err != nil {
		return "", fmt.Errorf("hub image: %w", err)
	}
	// The ID file first: a tar without one is not trusted (see readID).
	idb, _ := json.Marshal(map[string]string{"Ref": img.Ref, "ID": id})
	if err := os.WriteFile(filepath.Join(tmp, "id.json"), idb, 0o644); err != nil {
		return "", fmt.Errorf("hub image: %w", err)
	}
	if err := os.Rename(filepath.Join(tmp, "id.json"), img.Tar+".json"); err != nil {
		return "", fmt.Errorf("hub image: %w", err)
	}
	if err := os.Rename(out, img.Tar); err != nil {
		return "", fmt.Errorf("hub image: %w", err)
	}
	return id, nil
}

// readID returns the image ID recorded next to a complete tar.
func readID(tar string) (string, error) {
	if _, err := os.Stat(tar); err != nil {
		return "", err
	}
	b, err := os.ReadFile(tar + ".json")
	if err != nil {
		return "", err
	}
	var rec struct{ ID string }
	if err := json.Unmarshal(b, &rec); err != nil || !strings.HasPrefix(rec.ID, "sha256:") {
		return "", fmt.Errorf("%s.json: no image ID", tar)
	}
	return rec.ID, nil
}

// prune removes the tars and root file systems of other keys (older
// recipes or CAs): each is half a gigabyte.
func prune(dir, keepTar, keepRootfs string) {
	old, _ := filepath.Glob(filepath.Join(dir, "hubimage-*.tar"))
	for _, p := range old {
		if p != keepTar {
			os.Remove(p)
			os.Remove(p + ".json")
		}
	}
	old, _ = filepath.Glob(filepath.Join(dir, "hubimage-rootfs-*"))
	for _, p := range old {
		if p != keepRootfs && p != keepRootfs+".lock" && !strings.Contains(filepath.Base(p), ".build.") {
			os.RemoveAll(p)
		}
	}
}

// ctxWriter stops a long layer write when ctx ends.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c *ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// Mirror returns the Debian mirror URI this machine's apt uses, from the
// deb822 sources in aptDir/sources.list.d/*.sources (the first deb entry
// whose suites include bookworm) or, failing that, the classic
// aptDir/sources.list. Reading it here keeps mirror host names out of the
// repository.
func Mirror(aptDir string) (string, error) {
	files, _ := filepath.Glob(filepath.Join(aptDir, "sources.list.d", "*.sources"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("read apt sources: %w", err)
		}
		if uri := mirrorDeb822(string(b)); uri != "" {
			return uri, nil
		}
	}
	lists, _ := filepath.Glob(filepath.Join(aptDir, "sources.list.d", "*.list"))
	lists = append([]string{filepath.Join(aptDir, "sources.list")}, lists...)
	for _, f := range lists {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if uri := mirrorOneLine(string(b)); uri != "" {
			return uri, nil
		}
	}
	return "", errors.New("no Debian bookworm mirror in the apt sources under " + aptDir)
}

func mirrorDeb822(s string) string {
	for _, stanza := range strings.Split(s, "\n\n") {
		fields := map[string]string{}
		sc := bufio.NewScanner(strings.NewReader(stanza))
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "#") || !strings.Contains(line, ":") || strings.HasPrefix(line, " ") {
				continue
			}
			k, v, _ := strings.Cut(line, ":")
			fields[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
		}
		if fields["enabled"] == "no" || !hasWord(fields["types"], "deb") || !hasWord(fields["suites"], "bookworm") {
			continue
		}
		if uris := strings.Fields(fields["uris"]); len(uris) > 0 {
			return uris[0]
		}
	}
	return ""
}

func mirrorOneLine(s string) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		if strings.HasPrefix(f[0], "[") {
			// Options: [arch=amd64 signed-by=…]
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) == 0 {
				continue
			}
			f = f[1:]
		}
		if len(f) >= 2 && f[1] == "bookworm" {
			return f[0]
		}
	}
	return ""
}

func hasWord(list, w string) bool {
	for _, f := range strings.Fields(list) {
		if f == w {
			return true
		}
	}
	return false
}
