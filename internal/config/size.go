package config

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// sizeUnits maps each accepted size suffix to its multiplier. Single letters
// follow Docker (512m is 512 MiB); KiB/MiB/GiB are IEC binary units; kB, KB,
// MB and GB are SI decimal units. Case matters: "mb" is rejected rather than
// guessed.
var sizeUnits = map[string]int64{
	"":    1,
	"B":   1,
	"k":   1 << 10,
	"K":   1 << 10,
	"KiB": 1 << 10,
	"m":   1 << 20,
	"M":   1 << 20,
	"MiB": 1 << 20,
	"g":   1 << 30,
	"G":   1 << 30,
	"GiB": 1 << 30,
	"kB":  1e3,
	"KB":  1e3,
	"MB":  1e6,
	"GB":  1e9,
}

var errSizeSyntax = errors.New("must be a size: a whole number of bytes, optionally followed by k, m, g (×1024), KiB, MiB, GiB (×1024) or kB, MB, GB (×1000), e.g. 4MiB")

// parseSize parses a byte count such as 4194304, 512m, 4MiB or 10 MB.
// Its errors never contain s.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	digits := 0
	for digits < len(s) && s[digits] >= '0' && s[digits] <= '9' {
		digits++
	}
	if digits == 0 {
		return 0, errSizeSyntax
	}
	mult, ok := sizeUnits[strings.TrimLeft(s[digits:], " ")]
	if !ok {
		return 0, errSizeSyntax
	}
	n, err := strconv.ParseInt(s[:digits], 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, errors.New("is too large")
	}
	return n * mult, nil
}

// formatSize renders n in the largest binary unit that divides it, the way
// an operator would write it in the file.
func formatSize(n int64) string {
	switch {
	case n != 0 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "GiB"
	case n != 0 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n != 0 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	}
	return strconv.FormatInt(n, 10)
}

// parseDuration parses a Go duration. Its errors never contain s.
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err == nil {
		return d, nil
	}
	t := strings.TrimSpace(s)
	switch {
	case t != "" && strings.Trim(t, "0123456789") == "":
		return 0, errors.New("must be a duration with a unit, e.g. 30s, 5m or 1h30m")
	case strings.HasSuffix(t, "d"):
		return 0, errors.New("must be a Go duration, which has no days: use hours, e.g. 24h")
	}
	return 0, errors.New("must be a duration such as 30s, 5m or 1h30m")
}

// formatDuration renders d without the zero tails of Duration.String
// ("10m" rather than "10m0s").
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
