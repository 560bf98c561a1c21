package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// maxReadBytes bounds read_file: larger files are refused rather than
// truncated, so a model never mistakes a prefix for the whole file.
const maxReadBytes = 1 << 20

// maxListEntries bounds list_files; larger directories are truncated (after
// sorting by name) and say so.
const maxListEntries = 1000

type listFilesArgs struct {
	Path string `json:"path,omitempty" jsonschema:"directory to list, relative to the server's working directory; defaults to ."`
}

type listFilesResult struct {
	Path      string      `json:"path" jsonschema:"the directory that was listed"`
	Entries   []fileEntry `json:"entries" jsonschema:"the directory's entries, sorted by name"`
	Truncated bool        `json:"truncated,omitempty" jsonschema:"true if the directory has more entries than were returned"`
}

type fileEntry struct {
	Name string `json:"name" jsonschema:"the entry's name"`
	Type string `json:"type" jsonschema:"one of file, dir, symlink or other"`
	Size int64  `json:"size" jsonschema:"size in bytes for regular files; 0 otherwise"`
}

type readFileArgs struct {
	Path string `json:"path" jsonschema:"file to read, relative to the server's working directory"`
}

func (s *Server) listFiles(_ context.Context, _ *mcp.CallToolRequest, in listFilesArgs) (*mcp.CallToolResult, listFilesResult, error) {
	dir := in.Path
	if dir == "" {
		dir = "."
	}
	if s.root == nil {
		return nil, listFilesResult{}, s.rootErr
	}
	f, err := s.root.Open(dir)
	if err != nil {
		return nil, listFilesResult{}, pathError("listing", dir, err)
	}
	defer f.Close()
	ents, err := f.ReadDir(-1)
	if err != nil {
		return nil, listFilesResult{}, pathError("listing", dir, err)
	}
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })

	res := listFilesResult{Path: dir, Entries: make([]fileEntry, 0, min(len(ents), maxListEntries))}
	if len(ents) > maxListEntries {
		ents, res.Truncated = ents[:maxListEntries], true
	}
	for _, e := range ents {
		fe := fileEntry{Name: e.Name()}
		switch t := e.Type(); {
		case t.IsRegular():
			fe.Type = "file"
			// The entry may vanish between ReadDir and Info; list it without
			// a size rather than failing the whole listing.
			if info, err := e.Info(); err == nil {
				fe.Size = info.Size()
			}
		case t.IsDir():
			fe.Type = "dir"
		case t&fs.ModeSymlink != 0:
			fe.Type = "symlink"
		default:
			fe.Type = "other"
		}
		res.Entries = append(res.Entries, fe)
	}
	return nil, res, nil
}

func (s *Server) readFile(_ context.Context, _ *mcp.CallToolRequest, in readFileArgs) (*mcp.CallToolResult, any, error) {
	if in.Path == "" {
		return nil, nil, errors.New("path is required")
	}
	if s.root == nil {
		return nil, nil, s.rootErr
	}
	// Stat before opening: opening a FIFO would block until a writer appears,
	// and a directory or device has no text to return.
	info, err := s.root.Stat(in.Path)
	if err != nil {
		return nil, nil, pathError("reading", in.Path, err)
	}
	switch {
	case info.IsDir():
		return nil, nil, fmt.Errorf("reading %q: is a directory; use list_files", in.Path)
	case !info.Mode().IsRegular():
		return nil, nil, fmt.Errorf("reading %q: not a regular file", in.Path)
	case info.Size() > maxReadBytes:
		return nil, nil, tooLarge(in.Path)
	}
	f, err := s.root.Open(in.Path)
	if err != nil {
		return nil, nil, pathError("reading", in.Path, err)
	}
	defer f.Close()
	// The file may have grown since Stat; never read more than the limit.
	data, err := io.ReadAll(io.LimitReader(f, maxReadBytes+1))
	if err != nil {
		return nil, nil, pathError("reading", in.Path, err)
	}
	if len(data) > maxReadBytes {
		return nil, nil, tooLarge(in.Path)
	}
	if !utf8.Valid(data) {
		return nil, nil, fmt.Errorf("reading %q: not UTF-8 text", in.Path)
	}
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: string(data)}}}, nil, nil
}

func tooLarge(path string) error {
	return fmt.Errorf("reading %q: file is larger than the 1 MiB read_file limit", path)
}

// pathError names the operation and the path as the client gave it, dropping
// the [fs.PathError] wrapper whose op ("openat", "statat") means nothing to a
// model. os.Root reports escapes as "path escapes from parent".
func pathError(op, path string, err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		err = pe.Err
	}
	return fmt.Errorf("%s %q: %w", op, path, err)
}
