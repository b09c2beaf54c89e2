package docker

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/docker/docker/api/types/registry"
	"github.com/openbis/provision/internal/imageref"
)

// Auth is a registry login from the spec; both values are sensitive.
type Auth struct {
	Username string
	Password string
}

// dockerHubKey is the key the docker CLI uses for Docker Hub logins.
const dockerHubKey = "https://index.docker.io/v1/"

// registryAuth returns the X-Registry-Auth value for the registry of ref:
// the spec's credentials, else ~/.docker/config.json (inline auths or a
// credential helper), else none.
func registryAuth(ctx context.Context, a *Auth, ref imageref.Ref) (string, error) {
	server := ref.Domain
	if server == "docker.io" {
		server = dockerHubKey
	}
	var ac registry.AuthConfig
	switch {
	case a != nil:
		ac = registry.AuthConfig{Username: a.Username, Password: a.Password, ServerAddress: server}
	default:
		var err error
		ac, err = authFromConfigFile(ctx, server)
		if err != nil {
			return "", err
		}
	}
	if ac.Username == "" && ac.Password == "" && ac.IdentityToken == "" {
		return "", nil
	}
	return registry.EncodeAuthConfig(ac)
}

type configFile struct {
	Auths map[string]struct {
		Auth          string `json:"auth"`
		IdentityToken string `json:"identitytoken"`
	} `json:"auths"`
	CredsStore  string            `json:"credsStore"`
	CredHelpers map[string]string `json:"credHelpers"`
}

func authFromConfigFile(ctx context.Context, server string) (registry.AuthConfig, error) {
	dir := os.Getenv("DOCKER_CONFIG")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return registry.AuthConfig{}, nil
		}
		dir = filepath.Join(home, ".docker")
	}
	p := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return registry.AuthConfig{}, nil
	}
	if err != nil {
		return registry.AuthConfig{}, fmt.Errorf("read docker credentials: %w", err)
	}
	var cf configFile
	if err := json.Unmarshal(b, &cf); err != nil {
		return registry.AuthConfig{}, fmt.Errorf("parse docker credentials %s: %w", p, err)
	}
	helper := cf.CredHelpers[server]
	if helper == "" {
		helper = cf.CredsStore
	}
	for key, e := range cf.Auths {
		if strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://"), "/") != strings.TrimSuffix(strings.TrimPrefix(server, "https://"), "/") && key != server {
			continue
		}
		if e.Auth == "" && e.IdentityToken == "" {
			break // stored in the helper
		}
		ac := registry.AuthConfig{ServerAddress: server, IdentityToken: e.IdentityToken}
		if e.Auth != "" {
			dec, err := base64.StdEncoding.DecodeString(e.Auth)
			if err != nil {
				return registry.AuthConfig{}, fmt.Errorf("parse docker credentials %s: auth for %s is not base64", p, key)
			}
			ac.Username, ac.Password, _ = strings.Cut(string(dec), ":")
		}
		return ac, nil
	}
	if helper == "" {
		return registry.AuthConfig{}, nil
	}
	return authFromHelper(ctx, helper, server)
}

// authFromHelper asks docker-credential-HELPER, as the docker CLI does.
func authFromHelper(ctx context.Context, helper, server string) (registry.AuthConfig, error) {
	cmd := exec.CommandContext(ctx, "docker-credential-"+helper, "get")
	cmd.Stdin = strings.NewReader(server)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if strings.Contains(string(out)+stderr.String(), "credentials not found") {
			return registry.AuthConfig{}, nil
		}
		return registry.AuthConfig{}, fmt.Errorf("docker credential helper %q for %s: %w", helper, server, err)
	}
	var c struct{ Username, Secret string }
	if err := json.Unmarshal(out, &c); err != nil {
		return registry.AuthConfig{}, fmt.Errorf("docker credential helper %q for %s: bad answer", helper, server)
	}
	if c.Username == "<token>" {
		return registry.AuthConfig{ServerAddress: server, IdentityToken: c.Secret}, nil
	}
	return registry.AuthConfig{ServerAddress: server, Username: c.Username, Password: c.Secret}, nil
}
