// Package enginetest owns what the container tests share: a client of the
// real container engine, the rule for when a missing engine skips a test or
// fails it, and the test image (the static test server FROM scratch).
//
// A test that needs the engine calls Client first. Without an engine it is
// skipped with a message, unless MCPGW_REQUIRE_DOCKER=1 (set by .ci/run),
// which turns the missing engine into a failure.
package enginetest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/mcpgw/mcpgw/internal/spawn"
)

// EnvRequire set to "1" makes a missing engine a test failure.
const EnvRequire = "MCPGW_REQUIRE_DOCKER"

// Image is the start of the test image's tag (TestImage adds a digest):
// /mcpgw-testserver in an image FROM scratch, as its ENTRYPOINT.
const Image = "mcpgw-testserver:test"

// imageTag is the tag TestImage built: Image plus a digest of the test
// server binary, because every worktree and CI job on one engine builds
// the test image, and a shared tag could be replaced under a running test
// by another build of different code.
var imageTag string

// Client returns a client of the engine at DOCKER_HOST (or the default
// socket). It skips tb when no engine answers, or fails it if EnvRequire
// is set.
func Client(tb testing.TB) *client.Client {
	tb.Helper()
	cli, err := client.New(client.FromEnv)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
		cancel()
		if err != nil {
			_ = cli.Close()
		}
	}
	if err != nil {
		if os.Getenv(EnvRequire) == "1" {
			tb.Fatalf("no container engine answers (%v) and %s=1", err, EnvRequire)
		}
		tb.Skipf("skipping: no container engine answers (%v); start dockerd or set DOCKER_HOST (set %s=1 to make this a failure)", err, EnvRequire)
	}
	tb.Cleanup(func() { _ = cli.Close() })
	return cli
}

var (
	imageOnce sync.Once
	imageErr  error
)

// TestImage builds the test image once per test process and returns its
// tag. It
// calls Client, so it skips or fails like Client does.
func TestImage(tb testing.TB) string {
	tb.Helper()
	cli := Client(tb)
	imageOnce.Do(func() { imageErr = buildImage(cli) })
	if imageErr != nil {
		tb.Fatalf("building the test image: %v", imageErr)
	}
	return imageTag
}

func buildImage(cli *client.Client) error {
	dir, err := os.MkdirTemp("", "mcpgw-testimage-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "mcpgw-testserver")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "github.com/mcpgw/mcpgw/internal/testserver/cmd/mcpgw-testserver")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build of the static test server: %w\n%s", err, out)
	}
	exe, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(exe)
	imageTag = Image + "-" + hex.EncodeToString(sum[:6])
	dockerfile := []byte("FROM scratch\nCOPY mcpgw-testserver /mcpgw-testserver\nENTRYPOINT [\"/mcpgw-testserver\"]\n")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, dockerfile}, {"mcpgw-testserver", 0o755, exe}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data))}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := cli.ImageBuild(ctx, &buf, client.ImageBuildOptions{Tags: []string{imageTag}, Remove: true, ForceRemove: true})
	if err != nil {
		return err
	}
	defer res.Body.Close()
	dec := json.NewDecoder(res.Body)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("reading the build output: %w", err)
		}
		if msg.Error != "" {
			return fmt.Errorf("engine: %s", msg.Error)
		}
	}
}

// Containers lists the containers of mcpgw (running or not) that carry
// every label in labels (KEY=value), besides mcpgw.managed=true.
func Containers(tb testing.TB, cli *client.Client, labels ...string) []container.Summary {
	tb.Helper()
	f := make(client.Filters).Add("label", spawn.LabelManaged+"=true")
	for _, l := range labels {
		f.Add("label", l)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		tb.Fatalf("listing containers: %v", err)
	}
	return res.Items
}
