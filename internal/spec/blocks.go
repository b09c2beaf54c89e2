package spec

import (
	"net/netip"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/hashicorp/hcl/v2"
	"github.com/openbis/provision/executors/docker"
	"github.com/openbis/provision/executors/file"
	"github.com/openbis/provision/executors/firewalld"
	"github.com/openbis/provision/internal/deploy"
	"github.com/openbis/provision/internal/imageref"
	"github.com/zclconf/go-cty/cty"
)

func attrSchema(required []string, optional ...string) []hcl.AttributeSchema {
	var s []hcl.AttributeSchema
	for _, n := range required {
		s = append(s, hcl.AttributeSchema{Name: n, Required: true})
	}
	for _, n := range optional {
		s = append(s, hcl.AttributeSchema{Name: n})
	}
	return s
}

func (d *decoder) content(body hcl.Body, s *hcl.BodySchema) *hcl.BodyContent {
	c, diags := body.Content(s)
	d.diags = append(d.diags, diags...)
	return c
}

func (d *decoder) deployment(b *hcl.Block) Deployment {
	c := d.content(b.Body, &hcl.BodySchema{Attributes: attrSchema(
		[]string{"openbis_host", "jupyterhub_host"}, "communication_port", "hub_port")})
	dep := Deployment{
		Name:                b.Labels[0],
		OpenBISHost:         d.hostname(c.Attributes, "openbis_host"),
		JupyterHubHost:      d.hostname(c.Attributes, "jupyterhub_host"),
		CommunicationPort:   d.integer(c.Attributes, "communication_port", 80),
		HubPort:             d.integer(c.Attributes, "hub_port", 443),
		Range:               b.DefRange,
		OpenBISHostRange:    *rangeOf(c.Attributes, "openbis_host", b.DefRange),
		JupyterHubHostRange: *rangeOf(c.Attributes, "jupyterhub_host", b.DefRange),
	}
	for _, name := range []string{"openbis_host", "jupyterhub_host", "communication_port", "hub_port"} {
		if d.isUnknown(c.Attributes, name) {
			dep.unknown = append(dep.unknown, name)
		}
	}
	if d.isUnknown(c.Attributes, "communication_port") || d.isUnknown(c.Attributes, "hub_port") {
		return dep // the port checks wait for the values
	}
	d.checkPort("communication_port", rangeOf(c.Attributes, "communication_port", b.DefRange), dep.CommunicationPort)
	hubRange := rangeOf(c.Attributes, "hub_port", b.DefRange)
	switch {
	case dep.HubPort < 1 || dep.HubPort > 65535:
		d.errorf(hubRange, "Invalid port", "hub_port is %d; a TCP port is between 1 and 65535.", dep.HubPort)
	case dep.HubPort == deploy.ProxyAPIPort || dep.HubPort == deploy.HubAPIPort:
		d.errorf(hubRange, "Port clash", "hub_port %d is one of the container's API ports (8001 proxy, 8081 hub), which stay on loopback; use 443 (the default) or 8000.", dep.HubPort)
	case dep.HubPort == dep.CommunicationPort:
		d.errorf(hubRange, "Port clash", "hub_port and communication_port are both %d; the hub and the integration service need a port each.", dep.HubPort)
	}
	return dep
}

func (d *decoder) checkPort(name string, rng *hcl.Range, p int) {
	switch {
	case p < 1 || p > 65535:
		d.errorf(rng, "Invalid port", "%s is %d; a TCP port is between 1 and 65535.", name, p)
	case p == deploy.HubPort || p == deploy.ProxyAPIPort || p == deploy.HubAPIPort:
		d.errorf(rng, "Port clash", "%s %d is also published by the JupyterHub container (8000 hub, 8001 proxy API, 8081 hub API); choose another, e.g. 80 or 8002.", name, p)
	}
}

// hostname decodes a DNS host name, checked as the firewall's resolver
// will take it.
func (d *decoder) hostname(attrs hcl.Attributes, name string) string {
	h, ok := d.checked(attrs, name, "")
	if ok && !firewalld.ValidHostname(h) {
		d.errorf(attrs[name].Expr.Range().Ptr(), "Invalid host name", "%s %q is not a DNS host name (letters, digits, '-' and '.').", name, h)
	}
	return h
}

func (d *decoder) absPath(attrs hcl.Attributes, name, def string) string {
	p, ok := d.checked(attrs, name, def)
	switch {
	case !ok || p == "":
	case !path.IsAbs(p):
		d.errorf(attrs[name].Expr.Range().Ptr(), "Relative path", "%s %q must be an absolute path: provision runs from cron and systemd, where the working directory is not yours.", name, p)
	case path.Clean(p) != p:
		// The executors compare and record paths as written.
		d.errorf(attrs[name].Expr.Range().Ptr(), "Unclean path", "%s %q: write it as %q.", name, p, path.Clean(p))
	}
	return p
}

// mountPath decodes a host directory the container mounts: docker's -v
// splits at ':', so a path holding one cannot be mounted as written.
func (d *decoder) mountPath(attrs hcl.Attributes, name string) string {
	p := d.absPath(attrs, name, "")
	if strings.Contains(p, ":") && path.IsAbs(p) {
		d.errorf(attrs[name].Expr.Range().Ptr(), "Invalid mount path", "%s %q contains ':', which docker run -v reads as a separator; use a path without it.", name, p)
	}
	return p
}

func (d *decoder) host(b *hcl.Block, dep Deployment) *Host {
	h := &Host{Name: b.Labels[0], Range: b.LabelRanges[0]}
	c := d.content(b.Body, &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
		{Type: "jupyterhub"}, {Type: "firewall"}, {Type: "eln_instance_profile"}, {Type: "file", LabelNames: []string{"name"}}, {Type: "ssh"},
	}})
	once := map[string]hcl.Range{}
	files := map[string]hcl.Range{}
	for _, blk := range c.Blocks {
		if !d.checkLabels(blk) {
			continue
		}
		if blk.Type != "file" {
			if prev, ok := once[blk.Type]; ok {
				d.errorf(blk.DefRange.Ptr(), "Duplicate block", "A host has at most one %s block; the first is at %s.", blk.Type, prev)
				continue
			}
			once[blk.Type] = blk.DefRange
		}
		switch blk.Type {
		case "jupyterhub":
			h.JupyterHub = d.jupyterhub(blk, dep)
		case "firewall":
			h.Firewall = d.firewall(blk)
		case "ssh":
			h.SSH = d.ssh(blk)
		case "eln_instance_profile":
			c := d.content(blk.Body, &hcl.BodySchema{Attributes: attrSchema([]string{"path"})})
			h.ELNProfile = &ELNProfile{Path: d.absPath(c.Attributes, "path", ""), Range: blk.DefRange}
		case "file":
			if prev, ok := files[blk.Labels[0]]; ok {
				d.errorf(blk.LabelRanges[0].Ptr(), "Duplicate file block", "file %q is already described at %s.", blk.Labels[0], prev)
				continue
			}
			files[blk.Labels[0]] = blk.DefRange
			h.Files = append(h.Files, d.file(blk))
		}
	}
	if h.Firewall != nil && h.JupyterHub == nil {
		d.errorf(h.Firewall.Range.Ptr(), "Firewall without JupyterHub", "The firewall block opens the communication port of the JupyterHub container; add a jupyterhub block to host %q or remove it.", h.Name)
	}
	d.checkPaths(h)
	return h
}

// ssh decodes how the admin's ssh reaches the host. The destination goes
// to ssh as one argument after "--"; refusing a leading '-', spaces and
// control characters keeps it a destination and never an option.
func (d *decoder) ssh(b *hcl.Block) *SSH {
	c := d.content(b.Body, &hcl.BodySchema{Attributes: attrSchema(nil, "destination", "port")})
	s := &SSH{Range: b.DefRange}
	dest, ok := d.checked(c.Attributes, "destination", "")
	if ok {
		// ssh splits at the last '@'; the host may reach a ProxyCommand's
		// %h, so it is a name or an address, not an option or a URI.
		user, host := "", dest
		i := strings.LastIndex(dest, "@")
		if i >= 0 {
			user, host = dest[:i], dest[i+1:]
		}
		switch {
		case host == "" || (i >= 0 && user == "") || strings.Contains(dest, "://") || strings.HasPrefix(user, "-") || strings.HasPrefix(host, "-") ||
			strings.ContainsFunc(dest, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) ||
			strings.ContainsAny(host, "/;|&$`'\"\\<>(){}*?!"):
			d.errorf(c.Attributes["destination"].Expr.Range().Ptr(), "Invalid SSH destination",
				"destination %q must be [user@]host as ssh takes it, e.g. \"root@192.0.2.10\" or \"admin@openbis.example.org\" (no spaces, no leading '-', no ssh:// URI).", dest)
		}
		s.Destination = dest
	}
	if _, given := c.Attributes["port"]; given && !d.isUnknown(c.Attributes, "port") {
		s.Port = d.integer(c.Attributes, "port", 0)
		if s.Port < 1 || s.Port > 65535 {
			d.errorf(c.Attributes["port"].Expr.Range().Ptr(), "Invalid port", "ssh port is %d; a TCP port is between 1 and 65535.", s.Port)
		}
	}
	return s
}

// checkPaths refuses two resources of a host managing one file: each apply
// would write one over the other, and plans would never converge.
func (d *decoder) checkPaths(h *Host) {
	type owner struct {
		what string
		rng  hcl.Range
	}
	seen := map[string]owner{}
	claim := func(p, what string, rng hcl.Range) {
		if p == "" {
			return
		}
		p = path.Clean(p)
		if prev, ok := seen[p]; ok {
			d.errorf(rng.Ptr(), "Path managed twice", "%s is %s, which %s at %s manages already; give each its own path.", what, p, prev.what, prev.rng)
			return
		}
		seen[p] = owner{what, rng}
	}
	if j := h.JupyterHub; j != nil {
		claim(j.StartScript, "the start script", j.Range)
		claim("/etc/systemd/system/"+j.Unit, "the unit "+j.Unit, j.Range)
	}
	if e := h.ELNProfile; e != nil {
		claim(e.Path, "the ELN profile", e.Range)
	}
	for _, f := range h.Files {
		claim(f.Path, "file "+strconv.Quote(f.Name), f.Range)
	}
}

func (d *decoder) jupyterhub(b *hcl.Block, dep Deployment) *JupyterHub {
	c := d.content(b.Body, &hcl.BodySchema{
		Attributes: attrSchema(nil, "container_name", "openbis_url", "home", "persist_home", "certificates", "certificate_key",
			"certificate_crt", "start_script", "unit", "health_timeout", "health_url", "hub_api_address", "proxy_api_address"),
		Blocks: []hcl.BlockHeaderSchema{{Type: "image"}},
	})
	a := c.Attributes
	j := &JupyterHub{
		ContainerName:   d.str(a, "container_name", "jupyterhub-openbis"),
		Home:            d.mountPath(a, "home"),
		PersistHome:     d.boolean(a, "persist_home", true),
		Certificates:    d.mountPath(a, "certificates"),
		CertificateKey:  d.str(a, "certificate_key", "default.key"),
		CertificateCrt:  d.str(a, "certificate_crt", "default.crt"),
		StartScript:     d.absPath(a, "start_script", "/usr/local/bin/jupyterhub-openbis-start.sh"),
		Unit:            d.str(a, "unit", "jupyterhub-openbis.service"),
		HubAPIAddress:   d.str(a, "hub_api_address", "127.0.0.1"),
		ProxyAPIAddress: d.str(a, "proxy_api_address", "127.0.0.1"),
		HealthTimeout:   2 * time.Minute,
		HealthURL:       d.str(a, "health_url", ""), // "": compile derives it from the container's hub port
		Range:           b.DefRange,
	}
	var urlOK bool
	j.OpenBISURL, urlOK, j.OpenBISURLSensitive = d.sensitiveStr(a, "openbis_url", "https://"+dep.OpenBISHost, false)
	if attr, ok := a["start_script"]; ok && strings.ContainsAny(j.StartScript, "$\\\"'% ;") {
		d.errorf(attr.Expr.Range().Ptr(), "Invalid start script path", "start_script %q: systemd would expand or split it in ExecStart=; use a path of letters, digits and . _ - / only.", j.StartScript)
	}
	if attr, ok := a["persist_home"]; ok && !j.PersistHome && j.Home != "" {
		d.errorf(attr.Expr.Range().Ptr(), "Conflicting home settings", "home names where users' work is kept and persist_home = false says it is not kept; remove one of them.")
	}
	if attr, ok := a["container_name"]; ok && !validContainerName(j.ContainerName) {
		d.errorf(attr.Expr.Range().Ptr(), "Invalid container name", "%q: Docker container names are [a-zA-Z0-9][a-zA-Z0-9_.-]*.", j.ContainerName)
	}
	if attr, ok := a["openbis_url"]; ok && urlOK {
		if u, err := url.Parse(j.OpenBISURL); err != nil || u.Scheme != "https" || u.Host == "" {
			d.errorf(attr.Expr.Range().Ptr(), "URL without https", "openbis_url %s must be an https:// URL with a host: the JupyterHub logs users in against openBIS and sends their session token there.", shown(j.OpenBISURL, j.OpenBISURLSensitive))
		}
	}
	if attr, ok := a["health_url"]; ok {
		if u, err := url.Parse(j.HealthURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			d.errorf(attr.Expr.Range().Ptr(), "Invalid health URL", "health_url %q must be an http(s) URL of the hub as seen from this host, e.g. https://127.0.0.1:443/hub/api.", j.HealthURL)
		}
	}
	for _, nv := range [][2]string{{"certificate_key", j.CertificateKey}, {"certificate_crt", j.CertificateCrt}} {
		n, v := nv[0], nv[1]
		if attr, ok := a[n]; ok && (v == "" || v == "." || v == ".." || strings.Contains(v, "/")) {
			d.errorf(attr.Expr.Range().Ptr(), "Invalid file name", "%s is a file name inside the certificates directory, without '/'.", n)
		}
	}
	if attr, ok := a["unit"]; ok && (!strings.HasSuffix(j.Unit, ".service") || strings.ContainsAny(j.Unit, "/ ")) {
		d.errorf(attr.Expr.Range().Ptr(), "Invalid unit name", "unit %q must be a systemd service name ending in .service.", j.Unit)
	}
	for _, nv := range [][2]string{{"hub_api_address", j.HubAPIAddress}, {"proxy_api_address", j.ProxyAPIAddress}} {
		n, v := nv[0], nv[1]
		if attr, ok := a[n]; ok {
			if _, err := netip.ParseAddr(v); err != nil {
				d.errorf(attr.Expr.Range().Ptr(), "Invalid address", "%s must be an IP address to publish on (127.0.0.1 keeps the API on this host; 0.0.0.0 opens it).", n)
			}
		}
	}
	if s, ok := d.checked(a, "health_timeout", ""); ok {
		attr := a["health_timeout"]
		t, err := time.ParseDuration(s)
		if err != nil || t <= 0 {
			d.errorf(attr.Expr.Range().Ptr(), "Invalid duration", "health_timeout %q must be a positive duration such as \"90s\" or \"5m\".", s)
		} else {
			j.HealthTimeout = t
		}
	}
	var images []*hcl.Block
	for _, blk := range c.Blocks {
		images = append(images, blk)
	}
	switch len(images) {
	case 0:
		d.errorf(b.DefRange.Ptr(), "Missing image block", `jupyterhub needs an image { name = "..." and one of load, pull or build } block.`)
	default:
		for _, blk := range images[1:] {
			d.errorf(blk.DefRange.Ptr(), "Duplicate image block", "Only one JupyterHub container runs per server, from one image.")
		}
		j.Image = d.image(images[0])
	}
	return j
}

func validContainerName(s string) bool {
	if s == "" || strings.Trim(s[:1], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != "" {
		return false
	}
	return strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == ""
}

func (d *decoder) image(b *hcl.Block) Image {
	c := d.content(b.Body, &hcl.BodySchema{
		Attributes: attrSchema([]string{"name"}, "load", "pull", "keep"),
		Blocks:     []hcl.BlockHeaderSchema{{Type: "build"}, {Type: "auth"}},
	})
	a := c.Attributes
	img := Image{
		Ref:   d.imageRef(a, "name"),
		Load:  d.absPath(a, "load", ""),
		Pull:  d.boolean(a, "pull", false),
		Keep:  d.integer(a, "keep", 1),
		Range: b.DefRange,
	}
	if attr, ok := a["keep"]; ok && (img.Keep < 0 || img.Keep > 100) {
		d.errorf(attr.Expr.Range().Ptr(), "Invalid keep", "keep is how many previous images stay for rollback: 0 to 100.")
	}
	var sources []string
	var ranges []hcl.Range
	if _, ok := a["load"]; ok {
		sources, ranges = append(sources, "load"), append(ranges, a["load"].NameRange)
	}
	if img.Pull {
		sources, ranges = append(sources, "pull"), append(ranges, a["pull"].NameRange)
	}
	for _, blk := range c.Blocks {
		switch blk.Type {
		case "build":
			if img.Build != nil {
				d.errorf(blk.DefRange.Ptr(), "Duplicate build block", "An image has one build recipe.")
				continue
			}
			img.Build = d.build(blk)
			sources, ranges = append(sources, "build"), append(ranges, blk.DefRange)
		case "auth":
			ac := d.content(blk.Body, &hcl.BodySchema{Attributes: attrSchema([]string{"username", "password"})})
			user, _, _ := d.sensitiveStr(ac.Attributes, "username", "", true)
			pass, _, _ := d.sensitiveStr(ac.Attributes, "password", "", true)
			img.Auth = &Auth{Username: user, Password: pass}
		}
	}
	switch len(sources) {
	case 0:
		d.errorf(b.DefRange.Ptr(), "No image source", "Say where the image comes from: load = \"/path/image.tar\" (docker save), pull = true (registry), or a build { from = ... } recipe.")
	case 1:
	default:
		d.errorf(ranges[1].Ptr(), "Two image sources", "The image has %s; keep exactly one so that plan and apply agree on where it comes from.", strings.Join(sources, " and "))
	}
	return img
}

// imageRef parses an image reference once, for every executor.
func (d *decoder) imageRef(attrs hcl.Attributes, name string) imageref.Ref {
	s, ok := d.checked(attrs, name, "")
	if !ok || s == "" {
		return imageref.Ref{}
	}
	r, err := imageref.Parse(s)
	if err != nil {
		d.errorf(attrs[name].Expr.Range().Ptr(), "Invalid image reference", "%s; write e.g. openbis/jupyterhub-openbis-sis-20180405:latest.", err)
	}
	return r
}

func (d *decoder) build(b *hcl.Block) *Build {
	c := d.content(b.Body, &hcl.BodySchema{Attributes: attrSchema([]string{"from"}, "python_packages", "r_packages", "dockerfile_lines")})
	bd := &Build{
		From:           d.imageRef(c.Attributes, "from").Written,
		PythonPackages: d.strList(c.Attributes, "python_packages"),
		RPackages:      d.strList(c.Attributes, "r_packages"),
		ExtraLines:     d.strList(c.Attributes, "dockerfile_lines"),
	}
	for _, l := range []struct {
		name  string
		items []string
		check func(string) error
	}{
		{"python_packages", bd.PythonPackages, docker.CheckPackage},
		{"r_packages", bd.RPackages, docker.CheckPackage},
		{"dockerfile_lines", bd.ExtraLines, docker.CheckLine},
	} {
		for _, it := range l.items {
			if err := l.check(it); err != nil {
				d.errorf(c.Attributes[l.name].Expr.Range().Ptr(), "Invalid build recipe", "%s: %s.", l.name, err)
			}
		}
	}
	return bd
}

func (d *decoder) firewall(b *hcl.Block) *Firewall {
	c := d.content(b.Body, &hcl.BodySchema{Attributes: attrSchema(nil, "zone", "allow_from", "users_from")})
	f := &Firewall{AllowFrom: d.strList(c.Attributes, "allow_from"), UsersFrom: d.strList(c.Attributes, "users_from"), Range: b.DefRange}
	zone, ok := d.checked(c.Attributes, "zone", "public")
	if f.Zone = zone; ok {
		if err := firewalld.CheckZone(zone); err != nil {
			d.errorf(c.Attributes["zone"].Expr.Range().Ptr(), "Invalid zone", "%s.", err)
		}
	}
	for name, list := range map[string][]string{"allow_from": f.AllowFrom, "users_from": f.UsersFrom} {
		for _, s := range list {
			if err := firewalld.CheckSource(s); err != nil {
				d.errorf(c.Attributes[name].Expr.Range().Ptr(), "Invalid source", "%s: %s. Write an address (192.0.2.10), a network (192.0.2.0/24) or a host name.", name, err)
			}
		}
	}
	if a, ok := c.Attributes["users_from"]; ok && len(f.UsersFrom) == 0 {
		d.errorf(a.Expr.Range().Ptr(), "No users", "users_from is empty, so no browser could reach the hub; leave it out for anywhere, or name the users' networks.")
	}
	if a, ok := c.Attributes["allow_from"]; ok && len(f.AllowFrom) == 0 {
		d.errorf(a.Expr.Range().Ptr(), "No sources", "allow_from is empty, so no browser could create a notebook; leave it out to admit the users (users_from), or name the sources.")
	}
	return f
}

func (d *decoder) file(b *hcl.Block) *ManagedFile {
	c := d.content(b.Body, &hcl.BodySchema{Attributes: attrSchema([]string{"path", "content"}, "mode", "owner", "group", "sensitive")})
	f := &ManagedFile{Name: b.Labels[0], Mode: 0o644, Range: b.DefRange}
	// The path and the content may derive from a sensitive variable: the
	// whole file is then sensitive, and the path too when it is.
	var pathOK, contentSens bool
	f.Path, pathOK, f.SensitivePath = d.sensitiveStr(c.Attributes, "path", "", false)
	if pathOK {
		a := c.Attributes["path"]
		switch err := file.CheckPath(f.Path); {
		case !path.IsAbs(f.Path):
			d.errorf(a.Expr.Range().Ptr(), "Relative path", "path %s must be an absolute path: provision runs from cron and systemd, where the working directory is not yours.", shown(f.Path, f.SensitivePath))
		case err != nil && f.SensitivePath:
			d.errorf(a.Expr.Range().Ptr(), "Invalid path", "path %s must name a file, without \".\", \"..\" or doubled slashes.", redactedValue)
		case err != nil:
			d.errorf(a.Expr.Range().Ptr(), "Invalid path", "%s.", err)
		}
	}
	f.Content, contentSens = d.text(c.Attributes, "content")
	if a, ok := c.Attributes["sensitive"]; ok {
		v, _, ok := d.value(a, cty.Bool, false)
		if ok && !v.IsNull() {
			f.Sensitive = v.True()
		}
		if ok && !v.IsNull() && !f.Sensitive && (contentSens || f.SensitivePath) {
			d.errorf(a.Expr.Range().Ptr(), "Sensitive file declared not sensitive", "The file's content or path derives from a sensitive variable; sensitive = false cannot show it in plans. Remove sensitive = false.")
		}
	}
	f.Sensitive = f.Sensitive || contentSens || f.SensitivePath
	f.Owner = d.str(c.Attributes, "owner", "root")
	f.Group = d.str(c.Attributes, "group", "root")
	if s, ok := d.checked(c.Attributes, "mode", ""); ok {
		m, err := file.ParseMode(s)
		if err != nil {
			d.errorf(c.Attributes["mode"].Expr.Range().Ptr(), "Invalid mode", "%s.", err)
		} else {
			f.Mode = m
		}
	}
	return f
}

// checkHosts ties the deployment's host names to host blocks and the roles
// each block plays.
func (d *decoder) checkHosts(s *Spec) {
	dep := s.Deployment
	for _, want := range []struct {
		name string
		rng  hcl.Range
		role string
	}{
		{dep.JupyterHubHost, dep.JupyterHubHostRange, "jupyterhub"},
		{dep.OpenBISHost, dep.OpenBISHostRange, "eln_instance_profile"},
	} {
		if want.name == "" {
			continue
		}
		if !firewalld.ValidHostname(want.name) {
			continue // reported as an invalid host name
		}
		if s.Host(want.name) == nil {
			d.errorf(want.rng.Ptr(), "No matching host block", "%q has no host block; add host %q { %s { ... } }. Hosts in this file: %s.",
				want.name, want.name, want.role, QuoteList(s.HostNames()))
		}
	}
	named := func(name string) bool { return firewalld.ValidHostname(name) && s.Host(name) != nil }
	for _, h := range s.Hosts {
		// A deployment name without a block is reported above; a block
		// for it elsewhere is the same mistake.
		if h.JupyterHub != nil && h.Name != dep.JupyterHubHost && named(dep.JupyterHubHost) {
			d.errorf(h.JupyterHub.Range.Ptr(), "JupyterHub on the wrong host", "deployment.jupyterhub_host is %q, but host %q has the jupyterhub block; the ELN would point to the other host.", dep.JupyterHubHost, h.Name)
		}
		if h.ELNProfile != nil && h.Name != dep.OpenBISHost && named(dep.OpenBISHost) {
			d.errorf(h.ELNProfile.Range.Ptr(), "ELN profile on the wrong host", "deployment.openbis_host is %q, but host %q has the eln_instance_profile block.", dep.OpenBISHost, h.Name)
		}
	}
}

// QuoteList writes names for a message: quoted, comma-separated, or "none".
func QuoteList(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}
