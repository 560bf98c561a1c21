package backend

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReadLine(t *testing.T) {
	cases := []struct {
		name  string
		in    string
		max   int64
		lines []string
		err   error
	}{
		{"two lines", "a\nbb\n", 10, []string{"a\n", "bb\n"}, io.EOF},
		{"final line without newline", "a\nbb", 10, []string{"a\n", "bb"}, io.EOF},
		{"exactly at bound", "12345\n", 5, []string{"12345\n"}, io.EOF},
		{"over bound", "123456\n", 5, nil, ErrOversized},
		{"over bound without newline", strings.Repeat("x", 100), 50, nil, ErrOversized},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := bufio.NewReaderSize(strings.NewReader(c.in), 16)
			var got []string
			var err error
			for {
				var line []byte
				line, err = readLine(r, nil, c.max)
				if err != nil {
					break
				}
				got = append(got, string(line))
			}
			if !errors.Is(err, c.err) {
				t.Errorf("err = %v, want %v", err, c.err)
			}
			if strings.Join(got, "|") != strings.Join(c.lines, "|") {
				t.Errorf("lines = %q, want %q", got, c.lines)
			}
		})
	}
}

func TestReadBoundedLine(t *testing.T) {
	r := bufio.NewReaderSize(strings.NewReader(strings.Repeat("y", 100)+"\nshort\n"), 16)
	line, trunc, err := readBoundedLine(r, 10)
	if err != nil || !trunc || string(line) != strings.Repeat("y", 10) {
		t.Errorf("long line: %q %v %v", line, trunc, err)
	}
	line, trunc, err = readBoundedLine(r, 10)
	if err != nil || trunc || string(line) != "short" {
		t.Errorf("short line: %q %v %v", line, trunc, err)
	}
}

// FuzzReadLine: the framing never returns a line over the bound, never
// panics, and reassembles the input exactly when nothing is oversized.
func FuzzReadLine(f *testing.F) {
	f.Add([]byte("{\"jsonrpc\":\"2.0\"}\n{}\n"), int64(8))
	f.Add([]byte("\n\n\nabc"), int64(2))
	f.Fuzz(func(t *testing.T, data []byte, max int64) {
		if max < 1 || max > 1<<16 {
			return
		}
		r := bufio.NewReaderSize(bytes.NewReader(data), 16)
		var out []byte
		for {
			line, err := readLine(r, nil, max)
			if errors.Is(err, ErrOversized) {
				return
			}
			if err != nil {
				break
			}
			if int64(len(bytes.TrimSuffix(line, []byte("\n")))) > max {
				t.Fatalf("line of %d bytes over bound %d", len(line), max)
			}
			out = append(out, line...)
		}
		if !bytes.Equal(out, data) {
			t.Fatalf("reassembled %q, want %q", out, data)
		}
	})
}
