// Package debpkg tests the Debian package that .ci/package builds, by
// inspecting and extracting it with dpkg-deb (never installing it). The
// tests carry the integration build tag.
package debpkg
