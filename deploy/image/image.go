// Package image builds tactd's container image without a container
// runtime: an OCI image of one layer holding the static tactd binary, the
// CA certificates, /etc/passwd and /etc/group naming the unprivileged user
// 65532 it runs as, and an empty /var/lib/tact owned by that user for the
// data directory; nothing else (no shell, no package manager). The image
// is written as an OCI archive (an OCI image layout in a tar), which
// `podman load`, `skopeo copy oci-archive:...` and registries' push tools
// read. It uses go-containerregistry, the library ko is built on.
package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// User is the unprivileged user and group tactd runs as (distroless's
// "nonroot").
const User = 65532

// DataDir is the image's data directory, owned by User; a Deployment
// mounts a volume there (the root filesystem is read-only).
const DataDir = "/var/lib/tact"

// Options say what goes into the image.
type Options struct {
	Binary  string // the static tactd binary (CGO_ENABLED=0)
	CACerts string // a PEM bundle of CA certificates, e.g. /etc/ssl/certs/ca-certificates.crt
	Version string // the org.opencontainers.image.version label
	// Created is the image's and its files' time (reproducible builds:
	// SOURCE_DATE_EPOCH); zero means the Unix epoch.
	Created time.Time
}

// Build makes the image.
func Build(o Options) (v1.Image, error) {
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return nil, fmt.Errorf("image: binary: %w", err)
	}
	certs, err := os.ReadFile(o.CACerts)
	if err != nil {
		return nil, fmt.Errorf("image: CA certificates: %w", err)
	}
	created := o.Created
	if created.IsZero() {
		created = time.Unix(0, 0)
	}
	created = created.UTC()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(name string, uid int) {
		_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, Uid: uid, Gid: uid, ModTime: created})
	}
	file := func(name string, mode int64, data []byte) {
		_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: created})
		_, _ = tw.Write(data)
	}
	// Writes to a bytes.Buffer cannot fail; Close reports a bad header.
	dir("etc", 0)
	file("etc/passwd", 0o644, fmt.Appendf(nil, "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", User, User))
	file("etc/group", 0o644, fmt.Appendf(nil, "root:x:0:\nnonroot:x:%d:\n", User))
	dir("etc/ssl", 0)
	dir("etc/ssl/certs", 0)
	file("etc/ssl/certs/ca-certificates.crt", 0o644, certs)
	dir("home", 0)
	dir("home/nonroot", User)
	dir("tmp", 0)
	dir("var", 0)
	dir("var/lib", 0)
	dir(DataDir[1:], User)
	file("tactd", 0o755, bin)
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("image: layer: %w", err)
	}
	raw := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: created}, CreatedBy: "tact deploy/image: tactd, CA certificates, /etc/passwd", Comment: "one layer"}})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = "linux", "amd64", v1.Time{Time: created}
	cf.Config = v1.Config{
		User:         fmt.Sprintf("%d:%d", User, User),
		Entrypoint:   []string{"/tactd"},
		Cmd:          []string{"--data-dir", DataDir},
		WorkingDir:   "/",
		Env:          []string{"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"},
		ExposedPorts: map[string]struct{}{"9090/tcp": {}, "8080/tcp": {}},
		Labels: map[string]string{
			"org.opencontainers.image.title":   "tactd",
			"org.opencontainers.image.version": o.Version,
			"org.opencontainers.image.source":  "https://github.com/tact-nba/tact",
		},
	}
	return mutate.ConfigFile(img, cf)
}

// WriteArchive writes img as an OCI archive at path, named tag.
func WriteArchive(img v1.Image, tag, path string) error {
	tmp, err := os.MkdirTemp("", "tact-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	p, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
		return err
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(out)
	err = filepath.WalkDir(tmp, func(path string, d os.DirEntry, err error) error {
		if err != nil || path == tmp {
			return err
		}
		rel, _ := filepath.Rel(tmp, path) // under tmp by the walk
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name, hdr.ModTime, hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname, hdr.Mode = filepath.ToSlash(rel), time.Unix(0, 0), 0, 0, "", "", 0o644
		if d.IsDir() {
			hdr.Name, hdr.Mode = hdr.Name+"/", 0o755
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if cerr := tw.Close(); err == nil {
		err = cerr
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
