// Command package builds relaywatch's .deb and .rpm with nfpm: the binary,
// the systemd unit, an example config in /etc/relaywatch (kept on upgrade),
// a system user in group adm and its state directory.
//
//	go run ./deploy/package -binary dist/relaywatch-linux-amd64 -arch amd64 -version 1.2.3 -out dist
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
	_ "github.com/goreleaser/nfpm/v2/rpm" // registers the rpm packager
)

func main() {
	binary := flag.String("binary", "", "the linux relaywatch binary to package")
	arch := flag.String("arch", "amd64", "GOARCH of the binary (amd64, arm64)")
	version := flag.String("version", "", "package version (1.2.3 or v1.2.3)")
	root := flag.String("root", ".", "the repository (for deploy/)")
	out := flag.String("out", ".", "directory to write the packages to")
	formats := flag.String("formats", "deb,rpm", "package formats")
	flag.Parse()
	if *binary == "" || *version == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: package -binary FILE -version V [-arch A] [-root DIR] [-out DIR] [-formats deb,rpm]")
		os.Exit(2)
	}
	paths, err := build(*binary, *arch, *version, *root, *out, strings.Split(*formats, ","))
	if err != nil {
		fmt.Fprintln(os.Stderr, "package:", err)
		os.Exit(1)
	}
	for _, p := range paths {
		fmt.Println(p)
	}
}

// build writes one package per format and returns their paths.
func build(binary, arch, version, root, out string, formats []string) ([]string, error) {
	if _, err := os.Stat(binary); err != nil {
		return nil, err
	}
	deploy := filepath.Join(root, "deploy")
	// The unit in deploy/ runs /usr/local/bin/relaywatch (installed by
	// hand); the package installs /usr/bin/relaywatch.
	unit, err := os.ReadFile(filepath.Join(deploy, "systemd", "relaywatch.service"))
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "relaywatch-package-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	unitFile := filepath.Join(tmp, "relaywatch.service")
	unit = []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/relaywatch", "/usr/bin/relaywatch"))
	if err := os.WriteFile(unitFile, unit, 0o644); err != nil {
		return nil, err
	}
	var paths []string
	for _, format := range formats {
		info := &nfpm.Info{
			Name:        "relaywatch",
			Arch:        arch,
			Platform:    "linux",
			Version:     version,
			Section:     "mail",
			Priority:    "optional",
			Maintainer:  "relaywatch maintainers <relaywatch@users.noreply.github.com>",
			Description: "alarm for mail servers turning into open relays\nrelaywatch reads Postfix, Exim and Exchange logs in batch (analyze) or live as a\nsidecar (watch) and alerts Slack, Alertmanager and Prometheus when the server\nrelays mail for strangers.",
			Homepage:    "https://github.com/relaywatch/relaywatch",
			License:     "Apache-2.0",
			MTime:       time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), // reproducible
			Overridables: nfpm.Overridables{
				Contents: files.Contents{
					{Source: binary, Destination: "/usr/bin/relaywatch", FileInfo: &files.ContentFileInfo{Mode: 0o755}},
					{Source: unitFile, Destination: "/lib/systemd/system/relaywatch.service", FileInfo: &files.ContentFileInfo{Mode: 0o644}},
					{Source: filepath.Join(deploy, "relaywatch.yml"), Destination: "/etc/relaywatch/relaywatch.yml", Type: files.TypeConfigNoReplace, FileInfo: &files.ContentFileInfo{Mode: 0o644}},
					{Source: filepath.Join(deploy, "prometheus", "relaywatch.rules.yml"), Destination: "/usr/share/relaywatch/prometheus/relaywatch.rules.yml", FileInfo: &files.ContentFileInfo{Mode: 0o644}},
					{Source: filepath.Join(deploy, "grafana", "relaywatch.json"), Destination: "/usr/share/relaywatch/grafana/relaywatch.json", FileInfo: &files.ContentFileInfo{Mode: 0o644}},
					{Source: filepath.Join(root, "LICENSE"), Destination: "/usr/share/doc/relaywatch/LICENSE", FileInfo: &files.ContentFileInfo{Mode: 0o644}},
				},
				Scripts: nfpm.Scripts{
					PostInstall: filepath.Join(deploy, "package", "postinstall.sh"),
					PreRemove:   filepath.Join(deploy, "package", "preremove.sh"),
					PostRemove:  filepath.Join(deploy, "package", "postremove.sh"),
				},
			},
		}
		if format == "deb" {
			info.Depends = []string{"passwd"}
		}
		info = nfpm.WithDefaults(info)
		if err := nfpm.PrepareForPackager(info, format); err != nil {
			return nil, fmt.Errorf("%s: %w", format, err)
		}
		if err := info.Validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", format, err)
		}
		pkgr, err := nfpm.Get(format)
		if err != nil {
			return nil, err
		}
		path := filepath.Join(out, pkgr.ConventionalFileName(info))
		f, err := os.Create(path)
		if err != nil {
			return nil, err
		}
		if err := pkgr.Package(info, f); err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", format, err)
		}
		if err := f.Close(); err != nil {
			return nil, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}
