package bench

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

// External runs transports that live outside this binary (shmipc, in the
// nested module peers/): given the command line, it runs the whole
// benchmark in another binary that knows them, and returns its exit status.
type External func(args []string, stdout, stderr io.Writer) int

// Program describes the command that Main implements.
type Program struct {
	Name       string      // for messages and usage: "pingpong"
	Transports []Transport // the transports this binary runs
	// Externals maps transport names this binary does not run to the
	// binary that does. A run that asks for one of them is handed over
	// whole, so that every transport is still measured in one run.
	Externals map[string]External
}

// Defaults of the command line.
const (
	DefaultSizes  = "8,64,1KiB,64KiB"
	DefaultRounds = 20
	DefaultRound  = 50 * time.Millisecond
	DefaultWarmup = 100 * time.Millisecond
)

// DefaultTransports are the transports run when -transport is not given.
func DefaultTransports(m Mode) []string {
	if m == Stream {
		return []string{"ring", "memcpy", "uds"}
	}
	return []string{"ring", "floor", "line", "uds"}
}

// options are the parsed command line.
type options struct {
	c           Case // template: everything but Transport and Size
	sizes       []int
	transports  []string
	json, quiet bool
	plot        string
}

func (p *Program) flags(stderr io.Writer) (*flag.FlagSet, func() (*options, error)) {
	fs := flag.NewFlagSet(p.Name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var names []string
	for _, t := range p.Transports {
		names = append(names, t.Name())
	}
	for n := range p.Externals {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	mode := fs.String("mode", string(PingPong), "pingpong (round-trip latency) or stream (one-way throughput and latency)")
	transports := fs.String("transport", "", "comma-separated transports: "+strings.Join(names, ", ")+
		"\n(default ring,floor,line,uds in pingpong; ring,memcpy,uds in stream)")
	sizes := fs.String("size", DefaultSizes, "comma-separated message sizes (8, 64, 1KiB, 64KiB, 1MiB)")
	rounds := fs.Int("rounds", DefaultRounds, "interleaved rounds per size: in each, every transport runs once; ratios are medians over rounds")
	round := fs.Duration("round", DefaultRound, "measured time of one transport in one round")
	n := fs.Int64("n", 0, "measured messages per case (round trips in pingpong), spread over the rounds; overrides the default -round")
	duration := fs.Duration("duration", 0, "measured time per case, spread over the rounds (sets -round to it / -rounds)")
	warmup := fs.Duration("warmup", DefaultWarmup, "unrecorded time per case before its first round")
	wait := fs.String("wait", "adaptive", "the ring's wait strategy: spin, yield, block or adaptive")
	gap := fs.Duration("gap", 0, "idle time before each ping, so a waiting peer parks (pingpong)")
	pin := fs.Bool("pin", false, "pin the measuring thread to cpu0 and the peer's to cpu1 (sched_setaffinity)")
	capacity := fs.String("capacity", "1MiB", "the ring's data region")
	zeroCopy := fs.Bool("zerocopy", true, "the ring's receiver reads in place (Peek/Release); false: it copies out (RecvAppend)")
	jsonOut := fs.Bool("json", false, "print the results as JSON (schema "+Schema+") instead of a table")
	plot := fs.String("plot", "", "draw latency percentile curves to `FILE`.svg or FILE.png")
	dir := fs.String("dir", "", "directory for shared-memory segments (default /dev/shm)")
	quiet := fs.Bool("q", false, "no progress line on stderr")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: %s [flags]\n\n", p.Name)
		fmt.Fprintf(fs.Output(), "Measures ringwire's ring against the hardware floor and the usual transports,\n")
		fmt.Fprintf(fs.Output(), "between this process and a copy of it started as the peer.\n\nflags:\n")
		fs.PrintDefaults()
	}
	return fs, func() (*options, error) {
		o := &options{json: *jsonOut, quiet: *quiet, plot: *plot}
		var set = map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		m, err := ParseMode(*mode)
		if err != nil {
			return nil, err
		}
		if o.sizes, err = ParseSizes(*sizes); err != nil {
			return nil, err
		}
		for _, s := range o.sizes {
			if s < MinSize {
				return nil, fmt.Errorf("size %s is below the minimum, %d B (each message carries an 8-byte word)", FormatSize(s), MinSize)
			}
		}
		capBytes, err := ParseSize(*capacity)
		if err != nil {
			return nil, fmt.Errorf("-capacity: %w", err)
		}
		if *n < 0 {
			return nil, errors.New("-n must not be negative")
		}
		if *duration < 0 || *round < 0 || *warmup < 0 || *gap < 0 {
			return nil, errors.New("-duration, -round, -warmup and -gap must not be negative")
		}
		if *rounds < 1 {
			return nil, errors.New("-rounds must be at least 1")
		}
		if set["duration"] && set["round"] {
			return nil, errors.New("give -round or -duration, not both")
		}
		d := *round
		if set["duration"] {
			d = *duration / time.Duration(*rounds)
		}
		if set["n"] && !set["duration"] && !set["round"] {
			d = 0
		}
		if *n == 0 && d == 0 {
			return nil, errors.New("give -n, or a -round or -duration above 0")
		}
		if _, err := ParseWait(*wait); err != nil {
			return nil, err
		}
		if *pin && !PinSupported() {
			return nil, errors.New("-pin needs sched_setaffinity (Linux)")
		}
		if m == Stream && *gap > 0 {
			return nil, errors.New("-gap applies to pingpong mode only")
		}
		if *transports == "" {
			o.transports = DefaultTransports(m)
		} else {
			for _, t := range strings.Split(*transports, ",") {
				if t = strings.TrimSpace(t); t != "" && !slices.Contains(o.transports, t) {
					o.transports = append(o.transports, t)
				}
			}
			if len(o.transports) == 0 {
				return nil, errors.New("-transport: empty list")
			}
		}
		for _, name := range o.transports {
			t, err := Lookup(p.Transports, name)
			if err != nil {
				if p.Externals[name] != nil {
					continue
				}
				return nil, fmt.Errorf("-transport: unknown transport %q (have %s)", name, strings.Join(names, ", "))
			}
			if !supports(t, m) {
				return nil, fmt.Errorf("-transport %s: runs in %s mode only", name, otherMode(m))
			}
		}
		if *plot != "" && !strings.HasSuffix(*plot, ".svg") && !strings.HasSuffix(*plot, ".png") {
			return nil, fmt.Errorf("-plot %s: want a .svg or .png file", *plot)
		}
		o.c = Case{Mode: m, N: *n, Duration: d, Warmup: *warmup, Wait: *wait, Gap: *gap, Pin: *pin,
			Rounds: *rounds, Capacity: capBytes, Dir: *dir, ZeroCopy: *zeroCopy}
		return o, nil
	}
}

func otherMode(m Mode) Mode {
	if m == Stream {
		return PingPong
	}
	return Stream
}

// ParseWait checks a wait strategy's name.
func ParseWait(s string) (string, error) {
	switch s {
	case "spin", "yield", "block", "adaptive":
		return s, nil
	}
	return "", fmt.Errorf("-wait %q: want spin, yield, block or adaptive", s)
}

// Main runs the command line args (without the program name) and returns
// the exit status: 0 when every case ran, 1 when one failed, 2 for a bad
// command line. It handles SIGINT and SIGTERM: the segments of the running
// case are removed and its peer killed before the process exits.
func (p *Program) Main(args []string, stdout, stderr io.Writer) int {
	fs, parse := p.flags(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", p.Name, fs.Arg(0))
		fs.Usage()
		return 2
	}
	o, err := parse()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", p.Name, err)
		fs.Usage()
		return 2
	}
	for _, name := range o.transports {
		if _, err := Lookup(p.Transports, name); err != nil {
			return p.Externals[name](args, stdout, stderr)
		}
	}
	if slices.Contains(o.transports, "ring") {
		max, err := RingMaxMessage(o.c.Dir, o.c.Capacity)
		if err != nil {
			fmt.Fprintf(stderr, "%s: ring: %v\n", p.Name, err)
			return 1
		}
		for _, s := range o.sizes {
			if s > max {
				fmt.Fprintf(stderr, "%s: -size %s is larger than the ring's largest message, %d B at -capacity %s (a message may take at most half the ring); raise -capacity\n",
					p.Name, FormatSize(s), max, FormatSize(o.c.Capacity))
				return 2
			}
		}
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		s, ok := <-sigs
		if !ok {
			return
		}
		err := Interrupt()
		fmt.Fprintf(stderr, "\n%s: %v: stopped; segments removed\n", p.Name, s)
		if err != nil {
			fmt.Fprintf(stderr, "%s: cleanup: %v\n", p.Name, err)
		}
		code := 130
		if s == syscall.SIGTERM {
			code = 143
		}
		os.Exit(code)
	}()

	rep := &Report{Schema: Schema, Date: time.Now().UTC().Truncate(time.Second), Host: ThisHost(), Config: Config{
		Mode: o.c.Mode, Transports: o.transports, Sizes: o.sizes, N: o.c.N,
		DurationNS: int64(o.c.Duration) * int64(o.c.Rounds), Rounds: o.c.Rounds, RoundNS: int64(o.c.Duration),
		WarmupNS: int64(o.c.Warmup), Wait: o.c.Wait, GapNS: int64(o.c.Gap), Pin: o.c.Pin,
		Capacity: o.c.Capacity, ZeroCopy: o.c.ZeroCopy,
	}}
	status := 0
	var ts []Transport
	for _, name := range o.transports {
		t, _ := Lookup(p.Transports, name)
		ts = append(ts, t)
	}
	prog := startProgress(stderr, !o.quiet && isTerminal(stderr))
	for _, size := range o.sizes {
		c := o.c
		c.Size = size
		rs, errs := runSize(ts, c, func(round int, name string) (*Progress, func()) {
			return prog.show(fmt.Sprintf("%s %s round %d/%d %s", c.Mode, FormatSize(size), round+1, c.Rounds, name)), func() {}
		})
		for i, err := range errs {
			if err != nil {
				fmt.Fprintf(stderr, "%s: %v\n", p.Name, err)
				status = 1
			}
			rep.Results = append(rep.Results, rs[i])
		}
	}
	prog.stop()
	ComputeRatios(rep.Results)
	if o.json {
		if err := rep.WriteJSON(stdout); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", p.Name, err)
			return 1
		}
	} else {
		WriteTable(stdout, rep)
	}
	if o.plot != "" {
		if err := Plot(rep, o.plot); err != nil {
			fmt.Fprintf(stderr, "%s: -plot: %v\n", p.Name, err)
			return 1
		}
	}
	return status
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
