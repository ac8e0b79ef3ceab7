// Command consumer creates a ring, prints each message a producer sends,
// and removes the ring when the producer closes. Run it, then the producer.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"

	"github.com/ringwire/ringwire/ring"
)

func main() {
	dir := flag.String("dir", "", "segment directory (default /dev/shm)")
	flag.Parse()
	if err := consume(*dir); err != nil {
		log.Fatal(err)
	}
}

func consume(dir string) error {
	r, err := ring.Create("example", ring.Options{Dir: dir, Capacity: 64 << 10})
	if err != nil {
		return err
	}
	defer r.Unlink() // the owner, and only the owner, removes the ring
	defer r.Close()
	c, err := r.Consumer()
	if err != nil {
		return err
	}
	for {
		msg, err := c.Recv()
		if err == io.EOF { // the producer closed and every message was read
			return nil
		}
		if err != nil {
			return err // ring.ErrPeerDead: the producer died
		}
		fmt.Printf("%s\n", msg)
	}
}
