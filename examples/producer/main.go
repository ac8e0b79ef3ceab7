// Command producer attaches to the ring the consumer created and sends it
// a few messages.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"time"

	"github.com/ringwire/ringwire/ring"
)

func main() {
	dir := flag.String("dir", "", "segment directory (default /dev/shm)")
	flag.Parse()
	p, err := ring.OpenProducer("example", ring.AttachOptions{Dir: *dir})
	for i := 0; errors.Is(err, fs.ErrNotExist) && i < 100; i++ {
		time.Sleep(50 * time.Millisecond) // the consumer has not created it yet
		p, err = ring.OpenProducer("example", ring.AttachOptions{Dir: *dir})
	}
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close() // the consumer reads what was sent, then gets io.EOF
	for i := range 3 {
		if err := p.Send(fmt.Appendf(nil, "order %d", i)); err != nil {
			log.Fatal(err) // ring.ErrClosed or ErrPeerDead: the consumer is gone
		}
	}
}
