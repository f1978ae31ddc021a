// Command image builds relaywatch's container image without a container
// daemon: one layer holding the static binary, CA certificates (for Slack
// and Alertmanager over HTTPS), a passwd entry for the non-root user 65532
// and its state directory; no shell, no libc. It writes a tarball that
// `docker load`, `podman load` or `skopeo copy docker-archive:…` accept.
//
//	CGO_ENABLED=0 go build -o relaywatch ./cmd/relaywatch
//	go run ./deploy/image -binary relaywatch -version v1.2.3 -out relaywatch-image.tar
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// uid is the image's user: non-root, as distroless images have it.
const uid = 65532

func main() {
	binary := flag.String("binary", "", "the static linux relaywatch binary (CGO_ENABLED=0)")
	arch := flag.String("arch", "amd64", "GOARCH of the binary")
	version := flag.String("version", "dev", "image tag")
	certs := flag.String("ca-certificates", "/etc/ssl/certs/ca-certificates.crt", "CA bundle to put in the image")
	out := flag.String("out", "relaywatch-image.tar", "tarball to write")
	flag.Parse()
	if *binary == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: image -binary FILE [-arch A] [-version V] [-ca-certificates FILE] [-out FILE]")
		os.Exit(2)
	}
	if err := build(*binary, *arch, *version, *certs, *out); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
	fmt.Println(*out)
}

var badTag = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// build writes the image of binary to out.
func build(binary, arch, version, certs, out string) error {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return err
	}
	ca, err := os.ReadFile(certs)
	if err != nil {
		return fmt.Errorf("CA certificates: %w", err)
	}
	layer, err := rootfs(bin, ca)
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", arch
	cfg.Created = v1.Time{Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	cfg.Config.Entrypoint = []string{"/usr/bin/relaywatch"}
	cfg.Config.Cmd = []string{"help"}
	cfg.Config.User = fmt.Sprintf("%d:%d", uid, uid)
	cfg.Config.WorkingDir = "/var/lib/relaywatch"
	cfg.Config.ExposedPorts = map[string]struct{}{"9792/tcp": {}}
	cfg.Config.Env = []string{"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"}
	cfg.Config.Labels = map[string]string{
		"org.opencontainers.image.title":    "relaywatch",
		"org.opencontainers.image.version":  version,
		"org.opencontainers.image.source":   "https://github.com/relaywatch/relaywatch",
		"org.opencontainers.image.licenses": "Apache-2.0",
	}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return err
	}
	tag, err := name.NewTag("relaywatch:" + badTag.ReplaceAllString(version, "_"))
	if err != nil {
		return err
	}
	return tarball.WriteToFile(out, tag, img)
}

// rootfs is the image's only layer.
func rootfs(bin, ca []byte) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	dir := func(name string, mode int64, owner int) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, Uid: owner, Gid: owner, ModTime: mtime})
	}
	file := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: mtime}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, step := range []func() error{
		func() error { return dir("etc/", 0o755, 0) },
		func() error {
			return file("etc/passwd", 0o644, []byte(fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/var/lib/relaywatch:/sbin/nologin\n", uid, uid)))
		},
		func() error { return file("etc/group", 0o644, []byte(fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", uid))) },
		func() error { return dir("etc/ssl/", 0o755, 0) },
		func() error { return dir("etc/ssl/certs/", 0o755, 0) },
		func() error { return file("etc/ssl/certs/ca-certificates.crt", 0o644, ca) },
		func() error { return dir("tmp/", 0o1777, 0) },
		func() error { return dir("usr/", 0o755, 0) },
		func() error { return dir("usr/bin/", 0o755, 0) },
		func() error { return file("usr/bin/relaywatch", 0o755, bin) },
		func() error { return dir("var/", 0o755, 0) },
		func() error { return dir("var/lib/", 0o755, 0) },
		func() error { return dir("var/lib/relaywatch/", 0o750, uid) },
	} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
}
