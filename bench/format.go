package bench

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseSize reads a byte size: a number with an optional suffix B, K or KiB
// (1024), M or MiB (1024*1024), G or GiB; case-insensitive.
func ParseSize(s string) (int, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := 1
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"gib", 1 << 30}, {"mib", 1 << 20}, {"kib", 1 << 10}, {"gb", 1 << 30}, {"mb", 1 << 20}, {"kb", 1 << 10}, {"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}, {"b", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.Atoi(t)
	if err != nil || n <= 0 || n > math.MaxInt32/mult {
		return 0, fmt.Errorf("bad size %q (want a positive number of bytes, like 64, 1KiB, 1MiB)", s)
	}
	return n * mult, nil
}

// ParseSizes reads a comma-separated list of sizes.
func ParseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if strings.TrimSpace(f) == "" {
			continue
		}
		n, err := ParseSize(f)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no size in %q", s)
	}
	return out, nil
}

// FormatSize prints a byte size the way ParseSize reads it: 8 B, 1 KiB.
func FormatSize(n int) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// FormatNS prints nanoseconds with three significant digits: 152 ns,
// 1.23 µs, 45.6 ms.
func FormatNS(ns int64) string {
	v := float64(ns)
	switch {
	case v < 1e3:
		return fmt.Sprintf("%d ns", ns)
	case v < 1e6:
		return sig3(v/1e3) + " µs"
	case v < 1e9:
		return sig3(v/1e6) + " ms"
	}
	return sig3(v/1e9) + " s"
}

// FormatRate prints a rate with an SI prefix: 1.23M, 456k.
func FormatRate(v float64) string {
	switch {
	case v >= 1e9:
		return sig3(v/1e9) + "G"
	case v >= 1e6:
		return sig3(v/1e6) + "M"
	case v >= 1e3:
		return sig3(v/1e3) + "k"
	}
	return sig3(v)
}

// FormatRatio prints a ratio: 1.35x, 0.0034x.
func FormatRatio(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("%.0fx", v)
	}
	if v >= 0.01 {
		return fmt.Sprintf("%.2fx", v)
	}
	return fmt.Sprintf("%.2gx", v)
}

func sig3(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// FormatBytesRate prints a bandwidth: 2.07 GB/s, 291 MB/s (decimal prefixes).
func FormatBytesRate(v float64) string {
	switch {
	case v >= 1e9:
		return sig3(v/1e9) + " GB/s"
	case v >= 1e6:
		return sig3(v/1e6) + " MB/s"
	case v >= 1e3:
		return sig3(v/1e3) + " kB/s"
	}
	return sig3(v) + " B/s"
}
