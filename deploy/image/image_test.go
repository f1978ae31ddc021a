package main

import (
	"archive/tar"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestImage builds the image of a static relaywatch, reads the tarball back
// as a container runtime would, checks its configuration and files, and, as
// root, runs the binary from the unpacked image with chroot as user 65532:
// nothing but what the image holds (no shell, no libc) is there.
func TestImage(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "relaywatch")
	gobuild := exec.Command("go", "build", "-trimpath", "-ldflags", "-X main.version=v9.9.9-test", "-o", bin, "../../cmd/relaywatch")
	gobuild.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := gobuild.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out := filepath.Join(dir, "image.tar")
	if err := build(bin, "amd64", "v9.9.9+test", "/etc/ssl/certs/ca-certificates.crt", out); err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != "65532:65532" || len(cfg.Config.Entrypoint) != 1 || cfg.Config.Entrypoint[0] != "/usr/bin/relaywatch" || cfg.OS != "linux" {
		t.Errorf("config: user %q entrypoint %v os %q", cfg.Config.User, cfg.Config.Entrypoint, cfg.OS)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("%d layers, %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	root := filepath.Join(dir, "rootfs")
	files := map[string]bool{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = true
		p := filepath.Join(root, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, os.FileMode(h.Mode)); err != nil {
				t.Fatal(err)
			}
			os.Chmod(p, os.FileMode(h.Mode))
			os.Chown(p, h.Uid, h.Gid)
		case tar.TypeReg:
			b, _ := io.ReadAll(tr)
			if err := os.WriteFile(p, b, os.FileMode(h.Mode)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, want := range []string{"usr/bin/relaywatch", "etc/passwd", "etc/ssl/certs/ca-certificates.crt", "var/lib/relaywatch/"} {
		if !files[want] {
			t.Errorf("the image lacks %s", want)
		}
	}
	for f := range files {
		if strings.HasPrefix(f, "bin/") || strings.HasSuffix(f, "/sh") || strings.HasPrefix(f, "lib") {
			t.Errorf("the image holds %s: no shell or libraries wanted", f)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("not root: the unpacked image is not run with chroot")
	}
	run, err := exec.Command("chroot", "--userspec=65532:65532", root, "/usr/bin/relaywatch", "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(run), "relaywatch v9.9.9-test") {
		t.Errorf("relaywatch version in the image: %v: %s", err, run)
	}
	t.Logf("in the image: %s", run)
}
