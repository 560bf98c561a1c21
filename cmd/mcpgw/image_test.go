package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/mcpgw/internal/enginetest"
)

// TestContainerImage builds the repository's Dockerfile with the real
// engine and runs the image: as its non-root user, with the built-in
// config (a token from MCPGW_TOKEN), /readyz turns 200 and the demo server
// answers through it; with the engine's socket and its group, the gateway
// in the container runs a container server of its own.
//
// No image can be pulled here, so the Dockerfile's builder stage gets a
// local image instead (BUILDER): this machine's Go toolchain and the module
// downloads the build needs, imported as an image of its own (see
// builderImage). The final stage is FROM scratch and needs nothing else.
func TestContainerImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a container image")
	}
	cli := enginetest.Client(t)
	builder := builderImage(t, cli)
	image := gatewayImage(t, cli, builder)

	ctx := t.Context()
	inspect, err := cli.ImageInspect(ctx, image)
	if err != nil {
		t.Fatal(err)
	}
	cfg := inspect.Config
	if cfg.User != "65532:65532" {
		t.Errorf("the image runs as %q, want the unprivileged 65532:65532", cfg.User)
	}
	if diff := cmp.Diff([]string{"/usr/local/bin/mcpgw"}, cfg.Entrypoint); diff != "" {
		t.Errorf("entrypoint (-want +got):\n%s", diff)
	}

	t.Run("built-in config", func(t *testing.T) {
		token := randomToken(t)
		id, base := runGateway(t, cli, &container.Config{Image: image, Env: []string{"MCPGW_TOKEN=" + token}}, &container.HostConfig{})
		ready := awaitReady(t, cli, id, base, token)
		if s := ready.Servers["demo"]; !s.Ready || !strings.HasPrefix(s.Sandbox, "landlock") {
			t.Errorf("demo server: %+v; want it ready, under Landlock", s)
		}
		callEcho(t, base+"/mcp/demo", token)
		stopGateway(t, cli, id)
	})

	t.Run("without a token", func(t *testing.T) {
		id, _ := runGateway(t, cli, &container.Config{Image: image}, &container.HostConfig{})
		res := cli.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
		select {
		case st := <-res.Result:
			if st.StatusCode != 2 {
				t.Errorf("exit code %d, want 2 (a config error)", st.StatusCode)
			}
		case err := <-res.Error:
			t.Fatal(err)
		case <-time.After(30 * time.Second):
			t.Fatal("the gateway did not exit without its token")
		}
		if logs := containerLogs(t, cli, id); !strings.Contains(logs, "MCPGW_TOKEN") {
			t.Errorf("the error does not name MCPGW_TOKEN:\n%s", logs)
		}
	})

	t.Run("engine socket", func(t *testing.T) {
		sock := localEngineSocket(t)
		var st syscall.Stat_t
		if err := syscall.Stat(sock, &st); err != nil {
			t.Fatal(err)
		}
		test := enginetest.TestImage(t)
		token := randomToken(t)
		conf := fmt.Sprintf(`listen: 0.0.0.0:8080
auth:
  tokens: [{name: client, value_env: MCPGW_TOKEN}]
servers:
  echo:
    runtime: container
    timeouts: {kill_grace: 1s}
    container: {image: %q}
`, test)
		id, base := runGateway(t, cli,
			&container.Config{Image: image, Env: []string{"MCPGW_TOKEN=" + token}},
			&container.HostConfig{
				Binds:    []string{sock + ":/var/run/docker.sock"},
				GroupAdd: []string{fmt.Sprint(st.Gid)},
			},
			file{"mcpgw.yaml", conf})
		ready := awaitReady(t, cli, id, base, token)
		if ready.Engine == nil || !ready.Engine.Ready || !ready.Servers["echo"].Ready {
			t.Errorf("engine %+v, server %+v; want both ready", ready.Engine, ready.Servers["echo"])
		}
		callEcho(t, base+"/mcp/echo", token)
		stopGateway(t, cli, id)
	})
}

// builderImage returns the tag of an image that can play the
// Dockerfile's builder stage without a network: this machine's GOROOT
// (without tests) at /usr/local/go, the module downloads of this module
// as a module cache, CA certificates and a writable /tmp and /root. It is
// imported with "docker import" once per toolchain and go.sum.
func builderImage(t *testing.T, cli *client.Client) string {
	t.Helper()
	goroot := goEnv(t, "GOROOT")
	modcache := goEnv(t, "GOMODCACHE")
	sum, err := os.ReadFile("../../go.sum")
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(append([]byte(goruntime.Version()+goroot+"\n"), sum...))
	tag := "mcpgw-builder:local-" + hex.EncodeToString(h[:6])
	if _, err := cli.ImageInspect(t.Context(), tag); err == nil {
		return tag
	}
	zips := moduleZips(t)

	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { // owner: builderImage, which waits for done
		err := writeBuilderTar(pw, goroot, modcache, zips)
		pw.CloseWithError(err)
		done <- err
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	res, err := cli.ImageImport(ctx, client.ImageImportSource{Source: pr, SourceName: "-"}, tag, client.ImageImportOptions{
		Message: "mcpgw test: Go toolchain and module downloads for an offline build",
		Changes: []string{
			"ENV PATH=/usr/local/go/bin:/go/bin",
			"ENV HOME=/root",
			"ENV GOPATH=/go",
			"ENV GOMODCACHE=/go/pkg/mod",
			"ENV GOCACHE=/root/.cache/go-build",
			"ENV GOPROXY=off",
			"ENV GOTOOLCHAIN=local",
			"WORKDIR /",
		},
	})
	if err != nil {
		pr.CloseWithError(err)
		<-done
		t.Fatalf("docker import of the builder image: %v", err)
	}
	out, err := io.ReadAll(res)
	res.Close()
	if werr := <-done; werr != nil {
		t.Fatalf("writing the builder image: %v", werr)
	}
	if err != nil || bytes.Contains(out, []byte(`"error"`)) {
		t.Fatalf("docker import of the builder image: %v %s", err, out)
	}
	return tag
}

// moduleZips lists the module zips that building this module needs, from
// the local module cache ("go mod download" without the network).
func moduleZips(t *testing.T) []string {
	t.Helper()
	cmd := exec.Command("go", "mod", "download", "-json")
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go mod download -json (offline): %v", err)
	}
	var zips []string
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var m struct{ Zip, Error string }
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		if m.Error != "" || m.Zip == "" {
			t.Fatalf("module not in the local cache: %s", m.Error)
		}
		zips = append(zips, m.Zip, m.Zip+"hash")
	}
	return zips
}

// writeBuilderTar writes the builder image's file system.
func writeBuilderTar(w io.Writer, goroot, modcache string, zips []string) error {
	tw := tar.NewWriter(w)
	dirs := map[string]bool{}
	for _, d := range []struct {
		name string
		mode int64
	}{{"tmp", 0o1777}, {"root", 0o700}, {"etc/ssl/certs", 0o755}, {"go/pkg/mod/cache/download", 0o755}} {
		if err := dirMode(tw, dirs, d.name, d.mode); err != nil {
			return err
		}
	}
	// CA certificates, which the Dockerfile copies into the final image.
	certs, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		certs = nil // a test image that trusts no CA is still a test image
	}
	if err := tw.WriteHeader(&tar.Header{Name: "etc/ssl/certs/ca-certificates.crt", Mode: 0o644, Size: int64(len(certs)), ModTime: time.Unix(0, 0)}); err != nil {
		return err
	}
	if _, err := tw.Write(certs); err != nil {
		return err
	}
	// GOROOT, without what building does not use.
	skip := []string{"test", "doc", "api", "misc"}
	err = filepath.WalkDir(goroot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(goroot, path)
		if d.IsDir() && (slices.Contains(skip, rel) || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if strings.HasSuffix(path, "_test.go") {
			return nil
		}
		return addFile(tw, dirs, path, filepath.Join("usr/local/go", rel), d)
	})
	if err != nil {
		return err
	}
	// The module cache: every .mod and .info (the module graph needs
	// go.mod files of versions it does not build) and the zips.
	download := filepath.Join(modcache, "cache", "download")
	err = filepath.WalkDir(download, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !(strings.HasSuffix(path, ".mod") || strings.HasSuffix(path, ".info")) {
			return nil
		}
		rel, _ := filepath.Rel(modcache, path)
		return addFile(tw, dirs, path, filepath.Join("go/pkg/mod", rel), d)
	})
	if err != nil {
		return err
	}
	for _, z := range zips {
		rel, err := filepath.Rel(modcache, z)
		if err != nil || strings.HasPrefix(rel, "..") {
			return fmt.Errorf("module zip %s is outside GOMODCACHE", z)
		}
		fi, err := os.Lstat(z)
		if err != nil {
			return err
		}
		if err := addFile(tw, dirs, z, filepath.Join("go/pkg/mod", rel), fs.FileInfoToDirEntry(fi)); err != nil {
			return err
		}
	}
	return tw.Close()
}

// dirOf adds the directory name (mode 0755) and its parents, once.
func dirOf(tw *tar.Writer, dirs map[string]bool, name string) error {
	return dirMode(tw, dirs, name, 0o755)
}

func dirMode(tw *tar.Writer, dirs map[string]bool, name string, mode int64) error {
	if dirs[name] || name == "." || name == "/" {
		return nil
	}
	if err := dirOf(tw, dirs, filepath.Dir(name)); err != nil {
		return err
	}
	dirs[name] = true
	return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, ModTime: time.Unix(0, 0)})
}

// addFile adds the file, directory or symlink at path as name.
func addFile(tw *tar.Writer, dirs map[string]bool, path, name string, d fs.DirEntry) error {
	if err := dirOf(tw, dirs, filepath.Dir(name)); err != nil {
		return err
	}
	fi, err := d.Info()
	if err != nil {
		return err
	}
	switch {
	case d.IsDir():
		return dirOf(tw, dirs, name)
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(path)
		if err != nil {
			return err
		}
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, ModTime: fi.ModTime()})
	case !fi.Mode().IsRegular():
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: int64(fi.Mode().Perm()), Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

// contextFiles are what .dockerignore lets into the build context.
func contextFiles(t *testing.T) map[string][]byte {
	t.Helper()
	ignore, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"*", "!Dockerfile", "!go.mod", "!go.sum", "!cmd", "!internal", "!deploy/container.yaml", "**/testdata", "**/*_test.go"} {
		if !slices.Contains(strings.Split(string(ignore), "\n"), want) {
			t.Fatalf(".dockerignore lacks %q, which this test's build context assumes", want)
		}
	}
	files := map[string][]byte{}
	for _, f := range []string{"Dockerfile", ".dockerignore", "go.mod", "go.sum", "deploy/container.yaml"} {
		data, err := os.ReadFile(filepath.Join("../..", f))
		if err != nil {
			t.Fatal(err)
		}
		files[f] = data
	}
	for _, dir := range []string{"cmd", "internal"} {
		err := filepath.WalkDir(filepath.Join("../..", dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "testdata" {
				return filepath.SkipDir
			}
			if d.IsDir() || !d.Type().IsRegular() || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel("../..", path)
			files[filepath.ToSlash(rel)] = data
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// gatewayImage builds the Dockerfile with builder as its BUILDER and
// returns the image's tag, which names the context's digest: an image
// already built from the same files is reused.
func gatewayImage(t *testing.T, cli *client.Client, builder string) string {
	t.Helper()
	files := contextFiles(t)
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range files {
			if !yield(n) {
				return
			}
		}
	})
	h := sha256.New()
	fmt.Fprintln(h, builder)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		fmt.Fprintf(h, "%s %d\n", n, len(files[n]))
		h.Write(files[n])
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
		tw.Write(files[n])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	tag := "mcpgw-gateway:test-" + hex.EncodeToString(h.Sum(nil)[:6])
	if _, err := cli.ImageInspect(t.Context(), tag); err == nil {
		return tag
	}
	version, revision := "v0.0.0-image-test", "0123456789abcdef0123456789abcdef01234567"
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	res, err := cli.ImageBuild(ctx, &buf, client.ImageBuildOptions{
		Tags:        []string{tag},
		Remove:      true,
		ForceRemove: true,
		BuildArgs:   map[string]*string{"BUILDER": &builder, "VERSION": &version, "REVISION": &revision},
	})
	if err != nil {
		t.Fatalf("docker build: %v", err)
	}
	defer res.Body.Close()
	var log strings.Builder
	dec := json.NewDecoder(res.Body)
	for {
		var msg struct {
			Stream, Error string
		}
		if err := dec.Decode(&msg); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("reading the build output: %v\n%s", err, log.String())
		}
		log.WriteString(msg.Stream)
		if msg.Error != "" {
			t.Fatalf("docker build: %s\n%s", msg.Error, log.String())
		}
	}
	// The build stage's images are of no further use; the next build of
	// other sources would leave more of them.
	prune := make(client.Filters).Add("dangling", "true").Add("label", "io.github.mcpgw.stage=build")
	if _, err := cli.ImagePrune(ctx, client.ImagePruneOptions{Filters: prune}); err != nil {
		t.Logf("pruning the build stage's images: %v", err)
	}
	// The build ran "mcpgw version": it says what the build arguments set.
	if !strings.Contains(log.String(), "mcpgw "+version+"\n") || !strings.Contains(log.String(), "revision "+revision+" (set at build time)") {
		t.Errorf("the build's mcpgw version does not report VERSION and REVISION:\n%s", log.String())
	}
	return tag
}

type file struct{ name, content string }

// runGateway creates and starts a gateway container that publishes its
// port 8080 on a free loopback port, with files copied into /etc/mcpgw
// first (mcpgw.yaml replaces the image's config, as a mounted one would),
// and returns its id and base URL. The container is
// removed at the end of the test.
func runGateway(t *testing.T, cli *client.Client, cfg *container.Config, hc *container.HostConfig, files ...file) (id, base string) {
	t.Helper()
	ctx := t.Context()
	port := network.MustParsePort("8080/tcp")
	cfg.ExposedPorts = network.PortSet{port: {}}
	cfg.Labels = map[string]string{"mcpgw.test": "image"}
	hc.PortBindings = network.PortMap{port: {{HostIP: netip.MustParseAddr("127.0.0.1")}}}
	created, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg, HostConfig: hc})
	if err != nil {
		t.Fatalf("creating the gateway container: %v", err)
	}
	id = created.ID
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if t.Failed() {
			t.Logf("gateway log:\n%s", containerLogs(t, cli, id))
		}
		_, _ = cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true})
	})
	if len(files) > 0 {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, f := range files {
			tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.content)), ModTime: time.Now()})
			tw.Write([]byte(f.content))
		}
		tw.Close()
		if _, err := cli.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: "/etc/mcpgw", Content: &buf}); err != nil {
			t.Fatalf("copying into the container: %v", err)
		}
	}
	if _, err := cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("starting the gateway container: %v", err)
	}
	ins, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ins.Container.NetworkSettings == nil {
		t.Fatal("the container has no network settings")
	}
	bindings := ins.Container.NetworkSettings.Ports[port]
	if len(bindings) == 0 {
		// The container exited before its port was published.
		return id, ""
	}
	return id, "http://127.0.0.1:" + bindings[0].HostPort
}

// readyBody is the part of /readyz that the test reads.
type readyBody struct {
	Status string `json:"status"`
	Engine *struct {
		Ready bool   `json:"ready"`
		Error string `json:"error"`
	} `json:"engine"`
	Servers map[string]struct {
		Ready   bool   `json:"ready"`
		Detail  string `json:"detail"`
		Sandbox string `json:"sandbox"`
	} `json:"servers"`
}

// awaitReady polls /readyz until it answers 200 (within a minute, while
// the container runs), then reads its detail with the token.
func awaitReady(t *testing.T, cli *client.Client, id, base, token string) readyBody {
	t.Helper()
	if base == "" {
		t.Fatalf("the gateway container did not publish its port:\n%s", containerLogs(t, cli, id))
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(time.Minute)
	last := ""
	for {
		resp, err := hc.Get(base + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		ins, err := cli.ContainerInspect(t.Context(), id, client.ContainerInspectOptions{})
		if err == nil && ins.Container.State != nil && !ins.Container.State.Running {
			t.Fatalf("the gateway container exited (%d):\n%s", ins.Container.State.ExitCode, containerLogs(t, cli, id))
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz did not turn 200 within a minute; last: %s", last)
		}
		time.Sleep(100 * time.Millisecond)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/readyz", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r readyBody
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Status != "ready" {
		t.Fatalf("/readyz with the token: %v %+v", err, r)
	}
	return r
}

// callEcho calls the echo tool of the server at endpoint with the token.
func callEcho(t *testing.T, endpoint, token string) {
	t.Helper()
	hc := &http.Client{Transport: bearer{token: token, next: &http.Transport{}}}
	defer hc.CloseIdleConnections()
	c := mcp.NewClient(&mcp.Implementation{Name: "image-test", Version: "1"}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatalf("connecting to %s: %v", endpoint, err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "through the image"}})
	if err != nil || res.IsError {
		t.Fatalf("echo: %v %+v", err, res)
	}
	if text, ok := res.Content[0].(*mcp.TextContent); !ok || !strings.Contains(text.Text, "through the image") {
		t.Errorf("echo answered %+v", res.Content)
	}
}

type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// stopGateway stops the container with SIGTERM and checks that the
// gateway drained and exited 0.
func stopGateway(t *testing.T, cli *client.Client, id string) {
	t.Helper()
	timeout := 40
	if _, err := cli.ContainerStop(t.Context(), id, client.ContainerStopOptions{Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	ins, err := cli.ContainerInspect(t.Context(), id, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if code := ins.Container.State.ExitCode; code != 0 {
		t.Errorf("the gateway exited %d after SIGTERM, want 0", code)
	}
}

func containerLogs(t *testing.T, cli *client.Client, id string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer rc.Close()
	// The stream is multiplexed: 8-byte frame headers, then the payload.
	var out strings.Builder
	r := bufio.NewReader(rc)
	for {
		var hdr [8]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			break
		}
		n := int64(hdr[4])<<24 | int64(hdr[5])<<16 | int64(hdr[6])<<8 | int64(hdr[7])
		if _, err := io.CopyN(&out, r, n); err != nil {
			break
		}
	}
	return out.String()
}

// localEngineSocket returns the engine's socket on this machine, or skips
// the test when the engine is reached some other way (it cannot be
// mounted into a container then).
func localEngineSocket(t *testing.T) string {
	t.Helper()
	sock := "/var/run/docker.sock"
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		p, ok := strings.CutPrefix(h, "unix://")
		if !ok {
			t.Skipf("skipping: DOCKER_HOST=%s is not a local socket that could be mounted into the gateway container", h)
		}
		sock = p
	}
	if _, err := os.Stat(sock); err != nil {
		t.Skipf("skipping: the engine's socket %s is not on this machine: %v", sock, err)
	}
	return sock
}

func goEnv(t *testing.T, key string) string {
	t.Helper()
	out, err := exec.Command("go", "env", key).Output()
	if err != nil {
		t.Fatalf("go env %s: %v", key, err)
	}
	return strings.TrimSpace(string(out))
}

func randomToken(t *testing.T) string {
	t.Helper()
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}
