package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/ringwire/ringwire/ring"
)

// Raw frames on stdin and stdout: a 4-byte little-endian payload length,
// then the payload.
const rawHeader = 4

func cmdCreate(e *env, args []string) error {
	fs := e.flags("create")
	capacity := fs.String("capacity", "1MiB", "each lane's data region, rounded up to a power of two (4096, 64KiB, 1MiB, ...)")
	mode := fs.String("mode", "spsc", "producer discipline: spsc (one lane) or mpsc (a lane per attached producer)")
	var lanes int
	lanesUsage := fmt.Sprintf("MPSC: lanes, the most producers attached at once (0: %d); the segment holds lanes × capacity bytes", ring.DefaultLanes)
	fs.IntVar(&lanes, "lanes", 0, lanesUsage)
	fs.IntVar(&lanes, "slots", 0, "alias of -lanes")
	maxMsg := fs.String("max-message", "0", "largest message (0: half a lane, less the frame header)")
	checksum := fs.Bool("checksum", false, "frames carry an xxhash64 checksum of their payload")
	perm := fs.String("perm", "0600", "permission bits of the segment, octal (0660 shares it with the group)")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	name := pos[0]
	o := ring.Options{Dir: e.dir, Checksum: *checksum, Slots: lanes}
	if o.Capacity, err = parseSize(*capacity); err != nil {
		return fmt.Errorf("%w: -capacity: %v", errUsage, err)
	}
	if o.MaxMessage, err = parseSize(*maxMsg); err != nil {
		return fmt.Errorf("%w: -max-message: %v", errUsage, err)
	}
	if lanes < 0 {
		return fmt.Errorf("%w: -lanes %d: want a positive count, or 0 for %d", errUsage, lanes, ring.DefaultLanes)
	}
	switch strings.ToLower(*mode) {
	case "spsc":
		o.Mode = ring.SPSC
		if lanes > 1 {
			return fmt.Errorf("%w: -lanes %d: an spsc ring has one lane; -mode mpsc gives a lane per producer", errUsage, lanes)
		}
	case "mpsc":
		o.Mode = ring.MPSC
	default:
		return fmt.Errorf("%w: -mode %q: want spsc or mpsc", errUsage, *mode)
	}
	p, err := strconv.ParseUint(*perm, 8, 32)
	if err != nil || p > 0o777 || p == 0 {
		return fmt.Errorf("%w: -perm %q: want octal permission bits such as 0600 or 0660", errUsage, *perm)
	}
	o.Perm = os.FileMode(p)
	r, err := ring.Create(name, o)
	if err != nil {
		return e.ringError(name, err)
	}
	sum := "off"
	if r.Checksum() {
		sum = "on"
	}
	fmt.Fprintf(e.stdout, "created ring %s in %s: %s, %s, capacity %s per lane, max message %s, checksums %s, perm %04o\n",
		r.Name(), e.dir, r.Mode(), plural(r.Lanes(), "lane"), fmtBytes(uint64(r.Capacity())), fmtBytes(uint64(r.MaxMessage())), sum, o.Perm)
	in, err := r.Info()
	if err != nil {
		r.Close()
		return e.ringError(name, err)
	}
	fmt.Fprintf(e.stdout, "memory: %s × %s = %s, a segment of %s with the control blocks, all reserved now\n",
		plural(r.Lanes(), "lane"), fmtBytes(uint64(r.Capacity())), fmtBytes(uint64(r.Lanes())*uint64(r.Capacity())), fmtExact(uint64(in.SegmentSize)))
	fmt.Fprintf(e.stdout, "it stays until `ringctl rm %s`; while no live process uses it, `ringctl gc` removes it too\n", r.Name())
	return r.Close()
}

// parseSize reads 4096, 64k, 64KiB, 1M, 1MiB, 1G: units are binary.
func parseSize(s string) (int, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := 1
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"kib", 1 << 10}, {"kb", 1 << 10}, {"k", 1 << 10}, {"mib", 1 << 20}, {"mb", 1 << 20}, {"m", 1 << 20},
		{"gib", 1 << 30}, {"gb", 1 << 30}, {"g", 1 << 30}, {"tib", 1 << 40}, {"tb", 1 << 40}, {"t", 1 << 40}, {"b", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSuffix(t, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseUint(strings.TrimSpace(t), 10, 63)
	if err != nil || n > uint64(maxInt/mult) {
		return 0, fmt.Errorf("size %q: want a number of bytes such as 4096, 64KiB or 1MiB", s)
	}
	return int(n) * mult, nil
}

const maxInt = int(^uint(0) >> 1)

// plural says "1 lane", "16 lanes".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func cmdSend(e *env, args []string) error {
	fs := e.flags("send")
	raw := fs.Bool("raw", false, "stdin holds frames (4-byte little-endian length, then the payload) instead of lines")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	name := pos[0]
	// Signals are caught before the role is taken, so that an interrupt
	// always ends in a clean close.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p, err := ring.OpenProducer(name, ring.AttachOptions{Dir: e.dir})
	if err != nil {
		return e.ringError(name, err)
	}
	defer p.Close()

	// Stdin is read by a goroutine so that a signal can end a send blocked
	// on input and still close the producer cleanly.
	msgs := make(chan []byte, 256)
	readErr := make(chan error, 1)
	go func() {
		defer close(msgs)
		readErr <- readMessages(e.stdin, *raw, p.MaxMessage(), msgs)
	}()
	sent := 0
	for {
		select {
		case <-ctx.Done():
			p.Close()
			fmt.Fprintf(e.stderr, "ringctl send: ring %q: interrupted after %d messages\n", name, sent)
			return errInterrupted
		case msg, ok := <-msgs:
			if !ok {
				if err := <-readErr; err != nil {
					p.Close()
					return fmt.Errorf("ring %q: reading stdin after %d messages: %w", name, sent, err)
				}
				if err := p.Close(); err != nil {
					return e.ringError(name, err)
				}
				return nil
			}
			if err := p.SendContext(ctx, msg); err != nil {
				if ctx.Err() != nil {
					continue // the select reports the interruption
				}
				return e.ringError(name, fmt.Errorf("message %d: %w", sent+1, err))
			}
			sent++
		}
	}
}

// readMessages reads lines (without their '\n') or raw frames from r.
func readMessages(r io.Reader, raw bool, max int, out chan<- []byte) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for n := 1; ; n++ {
		var msg []byte
		if raw {
			var hdr [rawHeader]byte
			if _, err := io.ReadFull(br, hdr[:]); err == io.EOF {
				return nil
			} else if err != nil {
				return fmt.Errorf("frame %d: truncated length prefix: %w", n, err)
			}
			size := binary.LittleEndian.Uint32(hdr[:])
			if uint64(size) > uint64(max) {
				return fmt.Errorf("frame %d: %d bytes, more than the ring's max message %d: %w", n, size, max, ring.ErrTooLarge)
			}
			msg = make([]byte, size)
			if k, err := io.ReadFull(br, msg); err != nil {
				return fmt.Errorf("frame %d: truncated: %d of %d bytes: %w", n, k, size, io.ErrUnexpectedEOF)
			}
		} else {
			line, err := br.ReadBytes('\n')
			if err != nil && err != io.EOF {
				return err
			}
			if err == io.EOF && len(line) == 0 {
				return nil
			}
			msg = line
			if line[len(line)-1] == '\n' {
				msg = line[:len(line)-1]
			}
			if len(msg) > max {
				return fmt.Errorf("line %d: %d bytes, more than the ring's max message %d: %w", n, len(msg), max, ring.ErrTooLarge)
			}
		}
		out <- msg
	}
}

func cmdRecv(e *env, args []string) error {
	fs := e.flags("recv")
	raw := fs.Bool("raw", false, "write frames (4-byte little-endian length, then the payload) instead of lines")
	count := fs.Int("n", 0, "stop after this many messages (0: until the producer closes)")
	timeout := fs.Duration("timeout", 0, "give up when no message arrives for this long (0: wait forever)")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *count < 0 || *timeout < 0 {
		return fmt.Errorf("%w: -n and -timeout must not be negative", errUsage)
	}
	name := pos[0]
	// Signals are caught before the role is taken, so that an interrupt
	// always ends in a clean close.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := ring.OpenConsumer(name, ring.AttachOptions{Dir: e.dir})
	if err != nil {
		return e.ringError(name, err)
	}
	defer c.Close()
	// A closed stdout is a write error (EPIPE) to report, rather than a
	// SIGPIPE that would kill recv with the consumer role held.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)

	w := bufio.NewWriterSize(e.stdout, 64<<10)
	buf := make([]byte, 0, 64<<10)
	got := 0
	end := func(err error) error {
		ferr := w.Flush()
		cerr := c.Close()
		if err == nil && ferr != nil {
			err = fmt.Errorf("ring %q: writing stdout after %d messages: %w", name, got, ferr)
		}
		if err == nil && cerr != nil {
			err = e.ringError(name, cerr)
		}
		return err
	}
	for *count == 0 || got < *count {
		if ctx.Err() != nil {
			fmt.Fprintf(e.stderr, "ringctl recv: ring %q: interrupted after %d messages\n", name, got)
			return end(errInterrupted)
		}
		buf, err = c.TryRecvAppend(buf[:0])
		if errors.Is(err, ring.ErrEmpty) {
			// Nothing to read now: hand what was read to the reader, then wait.
			if err := w.Flush(); err != nil {
				return end(fmt.Errorf("ring %q: writing stdout after %d messages: %w", name, got, err))
			}
			wctx, cancel := ctx, context.CancelFunc(func() {})
			if *timeout > 0 {
				wctx, cancel = context.WithTimeout(ctx, *timeout)
			}
			buf, err = c.RecvAppendContext(wctx, buf[:0])
			cancel()
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			return end(nil) // the producer closed and everything was read
		case ctx.Err() != nil:
			fmt.Fprintf(e.stderr, "ringctl recv: ring %q: interrupted after %d messages\n", name, got)
			return end(errInterrupted)
		case errors.Is(err, context.DeadlineExceeded):
			return end(fmt.Errorf("ring %q: %w: no message for %v (%d received)", name, errTimeout, *timeout, got))
		default:
			return end(e.ringError(name, fmt.Errorf("after %d messages: %w", got, err)))
		}
		if *raw {
			var hdr [rawHeader]byte
			binary.LittleEndian.PutUint32(hdr[:], uint32(len(buf)))
			w.Write(hdr[:])
		}
		w.Write(buf)
		if !*raw {
			w.WriteByte('\n')
		}
		got++
		if _, err := w.Write(nil); err != nil { // a write failed: bufio keeps the error
			got--
			return end(fmt.Errorf("ring %q: writing stdout after %d messages: %w", name, got, err))
		}
	}
	return end(nil)
}
