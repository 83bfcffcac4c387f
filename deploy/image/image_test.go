package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/tact-nba/tact/server/servertest"
)

// TestImage builds tactd statically, writes its image as an OCI archive,
// reads the archive back as a registry tool would, checks what is in it
// (the binary, the CA certificates, the user 65532 and nothing else), then
// runs the binary taken from the layer and asks it /healthz: no container
// runtime needed.
func TestImage(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "tactd")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/tactd")
	build.Dir = filepath.Join("..", "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build tactd: %v\n%s", err, out)
	}
	certs := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(certs, []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := Build(Options{Binary: bin, CACerts: certs, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "tact-image.tar")
	if err := WriteArchive(img, "tact:test", archive); err != nil {
		t.Fatal(err)
	}

	// Read it back: untar the layout, find the image by its name.
	lay := filepath.Join(dir, "layout")
	untar(t, archive, lay)
	p, err := layout.FromPath(lay)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 1 || im.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "tact:test" {
		t.Fatalf("index: %+v, %v; want one image named tact:test", im, err)
	}
	got, err := p.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := got.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "65532:65532" || strings.Join(cf.Config.Entrypoint, " ") != "/tactd" || cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("config: user %q, entrypoint %v, %s/%s", cf.Config.User, cf.Config.Entrypoint, cf.OS, cf.Architecture)
	}
	if layers, _ := got.Layers(); len(layers) != 1 {
		t.Errorf("%d layers, want 1", len(layers))
	}

	// The files: exactly these, the data dir owned by 65532.
	files := map[string]*tar.Header{}
	var tactd []byte
	tr := tar.NewReader(mutate.Extract(got))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimSuffix(h.Name, "/")] = h
		switch h.Name {
		case "tactd":
			tactd, _ = io.ReadAll(tr)
		case "etc/passwd":
			b, _ := io.ReadAll(tr)
			if !strings.Contains(string(b), "nonroot:x:65532:65532:") {
				t.Errorf("/etc/passwd lacks user 65532:\n%s", b)
			}
		case "etc/ssl/certs/ca-certificates.crt":
			b, _ := io.ReadAll(tr)
			if !strings.Contains(string(b), "BEGIN CERTIFICATE") {
				t.Errorf("CA bundle: %q", b)
			}
		}
	}
	want := []string{"etc", "etc/passwd", "etc/group", "etc/ssl", "etc/ssl/certs", "etc/ssl/certs/ca-certificates.crt",
		"home", "home/nonroot", "tmp", "var", "var/lib", "var/lib/tact", "tactd"}
	if len(files) != len(want) {
		t.Errorf("files %v, want %v", keys(files), want)
	}
	for _, w := range want {
		if files[w] == nil {
			t.Errorf("no %s in the image", w)
		}
	}
	if h := files["var/lib/tact"]; h == nil || h.Uid != User {
		t.Errorf("the data directory is not owned by %d: %+v", User, h)
	}
	if h := files["tactd"]; h == nil || h.Mode&0o111 == 0 {
		t.Errorf("tactd is not executable: %+v", h)
	}

	// The binary from the layer starts and answers /healthz.
	run := filepath.Join(dir, "from-image")
	if err := os.WriteFile(run, tactd, 0o755); err != nil {
		t.Fatal(err)
	}
	httpAddr, grpcAddr := servertest.FreeAddr(t), servertest.FreeAddr(t)
	cmd := exec.Command(run, "--data-dir", filepath.Join(dir, "data"), "--http-addr", httpAddr, "--grpc-addr", grpcAddr, "--demo=true", "--drain-delay=0s")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + httpAddr + "/healthz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"ok"`) {
				t.Fatalf("/healthz: %d %s", resp.StatusCode, body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the image's tactd did not answer /healthz: %v\n%s", err, stderr.String())
		}
	}
}

func untar(t *testing.T, archive, dir string) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(p, dir) {
			t.Fatalf("%s escapes the archive", h.Name)
		}
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func keys(m map[string]*tar.Header) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
