package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
)

// version and revision may be set at build time, where the toolchain
// records neither (a container build without .git, a packager's build):
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.revision=$(git rev-parse HEAD)" ./cmd/mcpgw
var (
	version  = ""
	revision = ""
)

var versionCommand = &command{
	name:    "version",
	summary: "print the version, the VCS revision and how it was built",
	about: `
Prints the module version, the VCS revision it was built from and the Go
toolchain. "go install github.com/mcpgw/mcpgw/cmd/mcpgw@VERSION" records the
module version; "go build" in a git clone records the revision unless
-buildvcs=false (possibly in GOFLAGS) turns that off, which this command then
says.`,
	define: func(_ *flag.FlagSet, c *cli) action {
		return func(context.Context, []string) error {
			writeVersion(c.stdout, readBuild())
			return nil
		}
	},
}

// build is what a binary knows about its own build.
type build struct {
	module    string // module path
	modVer    string // module version: a tag, a pseudo-version, "(devel)" or ""
	ldVersion string // main.version, set with -ldflags -X
	revision  string // full VCS revision; "" when not recorded
	revSource string // where revision came from, when not from the toolchain's VCS stamp
	time      string // commit time (RFC 3339), when recorded
	modified  bool   // the tree had uncommitted changes
	goVersion string
	settings  []string // notable build settings: "-trimpath", "CGO_ENABLED=0", …
}

// pseudoRevision is the revision prefix at the end of a pseudo-version
// (v0.0.0-20261126215923-c9ae3b14b055, v1.2.4-0.2026….-c9ae3b14b055).
var pseudoRevision = regexp.MustCompile(`[.-][0-9]{14}-([0-9a-f]{12})(?:\+dirty)?$`)

func readBuild() build {
	b := build{ldVersion: version, revision: revision, goVersion: runtime.Version()}
	if revision != "" {
		b.revSource = "set at build time"
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	b.module, b.modVer, b.goVersion = bi.Main.Path, bi.Main.Version, bi.GoVersion
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if b.revision == "" {
				b.revision = s.Value
				b.revSource = ""
			}
		case "vcs.time":
			b.time = s.Value
		case "vcs.modified":
			b.modified = s.Value == "true"
		case "-trimpath", "-race":
			if s.Value == "true" {
				b.settings = append(b.settings, s.Key)
			}
		case "CGO_ENABLED", "-tags":
			b.settings = append(b.settings, s.Key+"="+s.Value)
		}
	}
	if b.revision == "" {
		if m := pseudoRevision.FindStringSubmatch(b.modVer); m != nil {
			b.revision = m[1]
			b.revSource = "from the module's pseudo-version"
		}
	}
	return b
}

// short is the version in one word, for the startup line and /readyz: the
// version set at build time, else a released or pseudo module version,
// else "dev-" and the revision prefix, else "dev".
func (b build) short() string {
	switch {
	case b.ldVersion != "":
		return b.ldVersion
	case b.modVer != "" && b.modVer != "(devel)":
		return b.modVer
	case len(b.revision) >= 12:
		s := "dev-" + b.revision[:12]
		if b.modified {
			s += "-dirty"
		}
		return s
	}
	return "dev"
}

func versionString() string { return readBuild().short() }

// writeVersion prints what b knows, and says plainly what it does not.
func writeVersion(w io.Writer, b build) {
	fmt.Fprintf(w, "mcpgw %s\n", b.short())
	module := b.module
	if module == "" {
		module = "github.com/mcpgw/mcpgw"
	}
	switch b.modVer {
	case "", "(devel)":
		fmt.Fprintf(w, "module %s (devel): built from a source tree, not from a released module version\n", module)
	default:
		fmt.Fprintf(w, "module %s %s\n", module, b.modVer)
	}
	switch {
	case b.revision == "":
		fmt.Fprintf(w, "revision unknown: this build recorded no VCS information (go build -buildvcs=false, maybe in GOFLAGS, or a source tree that is not a git clone); build with -buildvcs=true, or set it with -ldflags \"-X main.revision=…\"\n")
	default:
		var notes []string
		if b.revSource != "" {
			notes = append(notes, b.revSource)
		}
		if b.time != "" {
			notes = append(notes, b.time)
		}
		if b.modified {
			notes = append(notes, "with uncommitted changes")
		}
		fmt.Fprintf(w, "revision %s", b.revision)
		if len(notes) > 0 {
			fmt.Fprintf(w, " (%s)", strings.Join(notes, ", "))
		}
		fmt.Fprintln(w)
	}
	platform := b.goVersion + " " + runtime.GOOS + "/" + runtime.GOARCH
	if len(b.settings) > 0 {
		platform += ", " + strings.Join(b.settings, ", ")
	}
	fmt.Fprintf(w, "built with %s\n", platform)
}
