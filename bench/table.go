package bench

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// WriteTable prints the report as the table pingpong shows.
func WriteTable(w io.Writer, rep *Report) {
	c := rep.Config
	pin := "not pinned"
	if c.Pin {
		pin = "pinned cpu0/cpu1"
	}
	run := fmt.Sprintf("%d interleaved rounds of %v per case", c.Rounds, time.Duration(c.RoundNS))
	if c.N > 0 && c.RoundNS > 0 {
		run = fmt.Sprintf("%d interleaved rounds, %d messages or %v each per case", c.Rounds, c.N, time.Duration(c.RoundNS))
	} else if c.N > 0 {
		run = fmt.Sprintf("%d messages per case in %d interleaved rounds", c.N, c.Rounds)
	}
	h := rep.Host
	fmt.Fprintf(w, "%s, %d CPUs, %s %s, %s, timer %s\n", h.CPU, h.CPUs, h.OS, h.Kernel, h.Go, h.Timer)
	switch c.Mode {
	case Stream:
		fmt.Fprintf(w, "stream: one way; ring wait %s; %s; %s after %v warm-up\n", c.Wait, pin, run, time.Duration(c.WarmupNS))
	default:
		gap := "back to back"
		if c.GapNS > 0 {
			gap = fmt.Sprintf("%v idle before each ping", time.Duration(c.GapNS))
		}
		fmt.Fprintf(w, "pingpong: round trip; ring wait %s; %s; %s; %s after %v warm-up\n", c.Wait, gap, pin, run, time.Duration(c.WarmupNS))
	}
	fmt.Fprintln(w)
	tw := &grid{}
	ratio := func(r Result, k string) string { return FormatSpread(r.Spread[k]) }
	if c.Mode == Stream {
		fmt.Fprintln(tw, "transport\tsize\tmsgs/s\tbytes/s\tlat p50\tp90\tp99\tp99.9\tmax\tmsgs/uds\tbytes/memcpy\t")
	} else {
		fmt.Fprintln(tw, "transport\tsize\tp50\tp90\tp99\tp99.9\tmax\tmsgs/s\tp50/floor\tp50/line\tp50/uds\t")
	}
	prev := -1
	var errs []string
	for _, r := range rep.Results {
		if prev >= 0 && r.Size != prev {
			tw.blank()
		}
		prev = r.Size
		if r.Error != "" {
			msg := r.Error
			if i := strings.IndexByte(msg, '\n'); i >= 0 {
				msg = msg[:i]
			}
			errs = append(errs, fmt.Sprintf("%s %s: %s", r.Transport, FormatSize(r.Size), msg))
			fmt.Fprintf(tw, "%s\t%s\terror\t\n", r.Transport, FormatSize(r.Size))
			continue
		}
		lat := []string{"-", "-", "-", "-", "-"}
		if l := r.Latency; l != nil && l.Samples > 0 {
			lat = []string{FormatNS(l.P50NS), FormatNS(l.P90NS), FormatNS(l.P99NS), FormatNS(l.P999NS), FormatNS(l.MaxNS)}
		}
		if c.Mode == Stream {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Transport, FormatSize(r.Size),
				FormatRate(r.MsgsPerSec), FormatBytesRate(r.BytesPerSec), lat[0], lat[1], lat[2], lat[3], lat[4],
				ratio(r, "msgs/uds"), ratio(r, "bytes/memcpy"))
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Transport, FormatSize(r.Size),
				lat[0], lat[1], lat[2], lat[3], lat[4], FormatRate(r.MsgsPerSec),
				ratio(r, "p50/floor"), ratio(r, "p50/line"), ratio(r, "p50/uds"))
		}
	}
	tw.flush(w)
	for _, e := range errs {
		fmt.Fprintf(w, "error: %s\n", e)
	}
	fmt.Fprintln(w)
	if c.Mode == Stream {
		fmt.Fprintln(w, "lat: one-way latency from CLOCK_MONOTONIC timestamps (1 message in 32), queueing included;")
		fmt.Fprintln(w, "msgs/uds, bytes/memcpy: this row's msgs/s and bytes/s over the unix socket's and memcpy's (which copies")
		fmt.Fprintln(w, "and reads back) at the same size;")
	} else {
		fmt.Fprintln(w, "msgs/s: round trips per second (1 / mean round trip); percentiles over every round;")
		fmt.Fprintln(w, "p50/floor, p50/line, p50/uds: this row's median round trip over the floor's (which copies the message in")
		fmt.Fprintln(w, "and reads it), the line's (one cache line, 8 bytes) and the unix socket's at the same size;")
	}
	fmt.Fprintln(w, "ratios are computed round by round: the median over the rounds, [first-third quartile] after it")
}

// FormatSpread prints a ratio's median and quartiles over the rounds:
// "1.52x [1.48-1.60]", or "1.52x" for one round, or "-" for none.
func FormatSpread(s Spread) string {
	switch {
	case s.Rounds == 0:
		return "-"
	case s.Rounds == 1:
		return FormatRatio(s.Median)
	}
	return fmt.Sprintf("%s [%s-%s]", FormatRatio(s.Median), strings.TrimSuffix(FormatRatio(s.P25), "x"), FormatRatio(s.P75))
}

// grid lays out rows of tab-separated cells: the first column left-aligned,
// the others right-aligned, two spaces apart.
type grid struct {
	rows [][]string
}

func (g *grid) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimSuffix(string(p), "\n"), "\n") {
		g.rows = append(g.rows, strings.Split(strings.TrimSuffix(line, "\t"), "\t"))
	}
	return len(p), nil
}

func (g *grid) blank() { g.rows = append(g.rows, nil) }

func (g *grid) flush(w io.Writer) {
	var width []int
	for _, r := range g.rows {
		for i, c := range r {
			if i >= len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	for _, r := range g.rows {
		var b strings.Builder
		for i, c := range r {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if i == 0 {
				b.WriteString(c + pad)
			} else {
				b.WriteString("  " + pad + c)
			}
		}
		fmt.Fprintln(w, b.String())
	}
	g.rows = nil
}
