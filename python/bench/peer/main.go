// Command peer is the Go side of python/bench.py: an echo, a sink and a
// source over rings that bench.py creates (Python owns the segments).
//
//	peer echo PING PONG        receive on PING, send each message back on PONG, until the end of the stream
//	peer sink RING N           receive N messages, then print "done N BYTES"
//	peer source RING N SIZE    send N messages of SIZE bytes, then close
//
// RING, PING and PONG are segment paths (/dev/shm/NAME). The wait strategy is
// $RINGWIRE_WAIT's, by default Adaptive (poll, yield, then park).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/ringwire/ringwire/ring"
)

// wait is the strategy from $RINGWIRE_WAIT (adaptive, spin, yield, block;
// default adaptive).
func wait() ring.Wait {
	m, err := ring.ParseWaitMode(os.Getenv("RINGWIRE_WAIT"))
	if os.Getenv("RINGWIRE_WAIT") == "" {
		m, err = ring.Adaptive, nil
	}
	if err != nil {
		fail(err)
	}
	return ring.Wait{Mode: m}
}

func open(path string) *ring.Ring {
	r, err := ring.Open(filepath.Base(path), ring.AttachOptions{Dir: filepath.Dir(path), Wait: wait()})
	if err != nil {
		fail(err)
	}
	return r
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "peer:", err)
	os.Exit(1)
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		fail(err)
	}
	return n
}

func main() {
	if len(os.Args) < 3 {
		fail(errors.New("usage: peer echo PING PONG | sink RING N | source RING N SIZE"))
	}
	switch os.Args[1] {
	case "echo":
		in, out := open(os.Args[2]), open(os.Args[3])
		c, err := in.Consumer()
		if err != nil {
			fail(err)
		}
		p, err := out.Producer()
		if err != nil {
			fail(err)
		}
		fmt.Println("ready")
		var buf []byte
		for {
			buf, err = c.RecvAppend(buf[:0])
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				fail(err)
			}
			if err := p.Send(buf); err != nil {
				fail(err)
			}
		}
		p.Close()
	case "sink":
		r := open(os.Args[2])
		n := atoi(os.Args[3])
		c, err := r.Consumer()
		if err != nil {
			fail(err)
		}
		fmt.Println("ready")
		var total int64
		for range n {
			m, err := c.Peek()
			if err != nil {
				fail(err)
			}
			total += int64(len(m))
			if err := c.Release(); err != nil {
				fail(err)
			}
		}
		fmt.Println("done", n, total)
		c.Close()
	case "source":
		r := open(os.Args[2])
		n, size := atoi(os.Args[3]), atoi(os.Args[4])
		p, err := r.Producer()
		if err != nil {
			fail(err)
		}
		msg := make([]byte, size)
		for i := range msg {
			msg[i] = byte(i)
		}
		for i := range n {
			msg[0] = byte(i)
			if err := p.Send(msg); err != nil {
				fail(err)
			}
		}
		p.Close()
	default:
		fail(fmt.Errorf("unknown mode %q", os.Args[1]))
	}
}
