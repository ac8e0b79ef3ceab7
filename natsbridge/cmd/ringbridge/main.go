// Command ringbridge moves messages between a ringwire ring and NATS: "out"
// publishes a ring's messages, "in" sends NATS messages into a ring. Run it
// with -h for the delivery guarantees and the flags.
package main

import (
	"os"

	"github.com/ringwire/ringwire/natsbridge"
)

func main() { os.Exit(natsbridge.Main(os.Args[1:], os.Stderr)) }
