// Command ringctl shows, uses and cleans up ringwire rings from the shell.
//
// Usage:
//
//	ringctl [-dir DIR] COMMAND [flags] [NAME]
//
// Commands:
//
//	ls                  every segment in the directory: rings, and foreign segments
//	stat NAME           one ring in detail; -watch refreshes live rates
//	create NAME         make a ring (-capacity, -mode, -lanes, -max-message, -checksum, -perm)
//	rm NAME             remove a ring that nothing uses (-force: even if used)
//	send NAME           send stdin's lines (or -raw frames) into a ring
//	recv NAME           print a ring's messages as lines (or -raw frames)
//	gc                  remove rings whose every process is provably dead
//
// ls, stat and gc -dry-run only read: they open rings read-only, take no
// role and change nothing. gc and rm never touch a segment that is not a
// ringwire ring.
//
// Exit status: 0 on success, 1 on an error, 2 on a usage error.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ringwire/ringwire/ring"
	"github.com/ringwire/ringwire/shm"
)

// Errors of this command, besides those of the ring and shm packages.
var (
	// errUsage: the command line is wrong; exit status 2.
	errUsage = errors.New("usage")
	// errInUse: rm found live processes using the ring.
	errInUse = errors.New("ring is in use")
	// errNotRing: the segment is not a ringwire ring, so ringctl leaves it alone.
	errNotRing = errors.New("not a ringwire ring")
	// errTimeout: recv waited longer than -timeout for a message.
	errTimeout = errors.New("timed out")
	// errInterrupted: a signal ended send, recv or stat -watch.
	errInterrupted = errors.New("interrupted")
)

const defaultDir = "/dev/shm"

// env is what every subcommand gets: the segment directory and the
// standard streams.
type env struct {
	dir    string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

type command struct {
	name, args, summary string
	run                 func(e *env, args []string) error
}

var commands []command

func init() {
	commands = []command{
		{"ls", "[-json]", "list every segment: rings with their state, and foreign segments", cmdLs},
		{"stat", "[-json] [-watch [-interval D] [-count N]] NAME", "show one ring in detail; -watch refreshes live rates", cmdStat},
		{"create", "[-capacity N] [-mode spsc|mpsc] [-lanes N] [-max-message N] [-checksum] [-perm 0600] NAME", fmt.Sprintf("make a ring of lanes × capacity bytes (mpsc: -lanes, %d by default)", ring.DefaultLanes), cmdCreate},
		{"rm", "[-force] NAME...", "remove rings that no live process uses", cmdRm},
		{"send", "[-raw] NAME", "send each line of stdin (or each -raw frame) as a message", cmdSend},
		{"recv", "[-raw] [-n N] [-timeout D] NAME", "write each message to stdout as a line (or a -raw frame)", cmdRecv},
		{"gc", "[-dry-run]", "remove rings whose owner and every attached process are provably dead", cmdGC},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{dir: defaultDir, stdin: stdin, stdout: stdout, stderr: stderr}
	global := flag.NewFlagSet("ringctl", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	global.StringVar(&e.dir, "dir", defaultDir, "directory of segments")
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "ringctl: %v\n", err)
		usage(stderr)
		return 2
	}
	args = global.Args()
	if len(args) == 0 {
		fmt.Fprintln(stderr, "ringctl: no command given")
		usage(stderr)
		return 2
	}
	if args[0] == "help" {
		usage(stdout)
		return 0
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(e, args[1:])
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			fmt.Fprintf(stderr, "ringctl %s: %v\nusage: ringctl [-dir DIR] %s %s\n", c.name, err, c.name, c.args)
			return 2
		case errors.Is(err, errInterrupted):
			return 130
		}
		fmt.Fprintf(stderr, "ringctl %s: %v\n", c.name, err)
		return 1
	}
	fmt.Fprintf(stderr, "ringctl: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: ringctl [-dir DIR] COMMAND [flags] [NAME]\n\n")
	fmt.Fprintf(w, "  -dir DIR   directory of segments (default %s)\n\ncommands:\n", defaultDir)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-7s %s\n          %s\n", c.name, c.args, c.summary)
	}
	fmt.Fprintf(w, "\nexit status: 0 ok, 1 error, 2 usage error\n")
}

// flags makes a subcommand's flag set, with -dir repeated so that it may
// come after the command too.
func (e *env) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("ringctl "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.StringVar(&e.dir, "dir", e.dir, "directory of segments")
	return fs
}

// parse parses args with flags and positional arguments in any order
// ("create orders -capacity 1MiB" as well as "create -capacity 1MiB
// orders") and checks the count of positional arguments.
func parse(fs *flag.FlagSet, args []string, minPos, maxPos int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	switch {
	case len(pos) < minPos && minPos == 1:
		return nil, fmt.Errorf("%w: no ring name given", errUsage)
	case len(pos) < minPos:
		return nil, fmt.Errorf("%w: %d arguments, want at least %d", errUsage, len(pos), minPos)
	case maxPos >= 0 && len(pos) > maxPos:
		return nil, fmt.Errorf("%w: unexpected arguments %q", errUsage, pos[maxPos:])
	}
	return pos, nil
}

// shmOpts are the shm options for e.dir.
func (e *env) shmOpts() []shm.Option { return []shm.Option{shm.Dir(e.dir)} }

// path is the file of segment name.
func (e *env) path(name string) string { return filepath.Join(e.dir, strings.TrimPrefix(name, "/")) }

// ringError names the ring and says, first, which of the causes a user
// meets it is: the detail follows in parentheses.
func (e *env) ringError(name string, err error) error {
	cause := causeOf(err)
	if errors.Is(err, fs.ErrNotExist) {
		// The detail adds nothing but the path, which the cause has.
		return fmt.Errorf("ring %q: %s in %s: %w", name, cause, e.dir, err)
	}
	return fmt.Errorf("ring %q: %s (%w)", name, cause, err)
}

// causeOf says in a few words why an operation on a segment failed.
func causeOf(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "no such ring"
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EPERM):
		return "permission denied"
	case errors.Is(err, ring.ErrForeign), errors.Is(err, errNotRing), errors.Is(err, shm.ErrNotSegment):
		return "foreign segment: not a ringwire ring"
	case errors.Is(err, ring.ErrVersion):
		return "layout version mismatch"
	case errors.Is(err, ring.ErrNotReady):
		return "not initialised: a ring still being created, or a zero-filled segment that is not a ring"
	case errors.Is(err, ring.ErrTruncated):
		return "segment truncated"
	case errors.Is(err, ring.ErrCorrupt):
		return "corrupt ring"
	case errors.Is(err, shm.ErrInvalidName):
		return "invalid name"
	case errors.Is(err, fs.ErrExist):
		return "already exists"
	case errors.Is(err, ring.ErrBusy):
		return "role already taken by a live process"
	case errors.Is(err, ring.ErrPeerDead):
		return "peer died"
	case errors.Is(err, ring.ErrClosed):
		return "closed by the peer"
	case errors.Is(err, ring.ErrBadOptions):
		return "bad options"
	case errors.Is(err, ring.ErrTooLarge):
		return "message too large"
	case errors.Is(err, syscall.ENOSPC):
		return "no space left in the segment directory (see docs/OPERATIONS.md: sizing /dev/shm)"
	}
	return "error"
}
