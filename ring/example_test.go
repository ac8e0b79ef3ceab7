package ring_test

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ringwire/ringwire/ring"
)

// A producer and a consumer, as two processes would use them. Here both
// live in one process for the example; across processes, the second calls
// ring.OpenConsumer(name, ...) with the ring's name.
func Example() {
	dir, _ := os.MkdirTemp("", "ring-example") // tests only: rings normally live in /dev/shm
	defer os.RemoveAll(dir)

	r, err := ring.Create("orders", ring.Options{Dir: dir, Capacity: 64 << 10})
	if err != nil {
		panic(err)
	}
	defer r.Unlink() // the owner removes the ring when it is done with it
	defer r.Close()

	p, _ := r.Producer()
	c, err := ring.OpenConsumer("orders", ring.AttachOptions{Dir: dir})
	if err != nil {
		panic(err)
	}
	defer c.Close()

	for _, m := range []string{"buy 10", "sell 3", ""} {
		p.Send([]byte(m))
	}
	p.Close()

	for {
		msg, err := c.Recv()
		if err == io.EOF {
			fmt.Println("end of stream")
			break
		}
		fmt.Printf("%q\n", msg)
	}
	// Output:
	// "buy 10"
	// "sell 3"
	// ""
	// end of stream
}

// Reserve and Commit write a message in place, Peek and Release read it in
// place: no copy on either side.
func ExampleProducer_Reserve() {
	dir, _ := os.MkdirTemp("", "ring-example")
	defer os.RemoveAll(dir)
	r, _ := ring.Create("", ring.Options{Dir: dir})
	defer r.Close()
	p, _ := r.Producer()
	c, _ := r.Consumer()

	buf, _ := p.Reserve(11)
	copy(buf, "hello world")
	p.Commit()

	msg, _ := c.Peek()
	fmt.Printf("%s\n", msg)
	c.Release()
	// Output: hello world
}

// TrySend never blocks: a full ring is an error the caller can act on.
func ExampleProducer_TrySend() {
	dir, _ := os.MkdirTemp("", "ring-example")
	defer os.RemoveAll(dir)
	r, _ := ring.Create("", ring.Options{Dir: dir, Capacity: 4096})
	defer r.Close()
	p, _ := r.Producer()

	sent := 0
	for {
		err := p.TrySend(make([]byte, 1000))
		if errors.Is(err, ring.ErrFull) {
			break
		}
		sent++
	}
	fmt.Println("sent before full:", sent)
	// Output: sent before full: 4
}

// Open tells a ring from anything else in /dev/shm.
func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "ring-example")
	defer os.RemoveAll(dir)
	os.WriteFile(dir+"/notes", []byte("not a ring, just a file"), 0o600)

	_, err := ring.Open("notes", ring.AttachOptions{Dir: dir})
	fmt.Println(errors.Is(err, ring.ErrForeign))
	_, err = ring.Open("missing", ring.AttachOptions{Dir: dir})
	fmt.Println(errors.Is(err, os.ErrNotExist))
	// Output:
	// true
	// true
}
