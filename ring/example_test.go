package ring_test

import (
	"context"
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

// A Poller waits on many rings at once: here three producers close, one
// after sending a message. Wait returns the ready consumers; each is
// received from until ErrEmpty, and gives io.EOF at its end.
func ExamplePoller() {
	dir, _ := os.MkdirTemp("", "ring-example")
	defer os.RemoveAll(dir)
	pl := ring.NewPoller()
	defer pl.Close()
	name := map[*ring.Consumer]string{}
	for i := range 3 {
		r, _ := ring.Create("", ring.Options{Dir: dir})
		defer r.Close()
		p, _ := r.Producer()
		c, _ := r.Consumer()
		pl.Add(c)
		name[c] = fmt.Sprint("ring ", i)
		if i == 1 {
			p.Send([]byte("hello"))
		}
		p.Close()
	}

	for pl.Len() > 0 {
		ready, err := pl.Wait(context.Background())
		if err != nil {
			panic(err)
		}
		for _, c := range ready {
			for {
				msg, err := c.TryRecv()
				if err == ring.ErrEmpty {
					break
				}
				if err != nil { // io.EOF; ErrPeerDead for a dead producer
					fmt.Println(name[c], err)
					pl.Remove(c)
					break
				}
				fmt.Printf("%s %s\n", name[c], msg)
			}
		}
	}
	// Output:
	// ring 0 EOF
	// ring 1 hello
	// ring 2 EOF
	// ring 1 EOF
}

// Next reads ahead without releasing; ReleaseThrough hands a lane's
// messages back up to an id, for example once a downstream system has
// acknowledged them. The id, stable across consumers, deduplicates
// redeliveries after a crash.
func ExampleConsumer_Next() {
	dir, _ := os.MkdirTemp("", "ring-example")
	defer os.RemoveAll(dir)
	r, _ := ring.Create("", ring.Options{Dir: dir})
	defer r.Close()
	p, _ := r.Producer()
	c, _ := r.Consumer()
	for _, m := range []string{"a", "b", "c"} {
		p.Send([]byte(m))
	}

	var last ring.MessageID
	for {
		m, err := c.TryNext()
		if err == ring.ErrEmpty {
			break
		}
		fmt.Printf("%s at lane %d position %d\n", m.Data, m.ID.Lane, m.ID.Pos)
		last = m.ID
	}
	// ... forward the messages, wait for the acknowledgements, then:
	if err := c.ReleaseThrough(last); err != nil {
		panic(err)
	}
	fmt.Println(c.ReleaseThrough(last) != nil) // already released
	// Output:
	// a at lane 0 position 0
	// b at lane 0 position 16
	// c at lane 0 position 32
	// true
}

// Abort gives back a reservation that will not be committed: the
// consumer never sees it, and the next message reuses its space.
func ExampleProducer_Abort() {
	dir, _ := os.MkdirTemp("", "ring-example")
	defer os.RemoveAll(dir)
	r, _ := ring.Create("", ring.Options{Dir: dir})
	defer r.Close()
	p, _ := r.Producer()
	c, _ := r.Consumer()

	buf, _ := p.Reserve(64)
	copy(buf, "half a message, then the encoder failed")
	p.Abort()
	p.Send([]byte("the next one"))

	msg, _ := c.TryRecv()
	fmt.Printf("%s\n", msg)
	_, err := c.TryRecv()
	fmt.Println(err)
	// Output:
	// the next one
	// ring: ring empty
}
