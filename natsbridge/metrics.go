package natsbridge

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
)

// Counters are a bridge's statistics. All fields are safe for concurrent
// use; Snapshot reads them together.
type Counters struct {
	// Forwarded: messages handed on (Out: published to NATS; In: committed
	// to the ring).
	Forwarded atomic.Uint64
	// Acknowledged: Out: publishes the stream acknowledged, so their ring
	// space was released; In: messages acknowledged to JetStream.
	Acknowledged atomic.Uint64
	// Duplicates: Out: publishes the stream's duplicate window dropped
	// (a redelivery after a crash or a retry); In: messages already
	// committed to the ring, skipped.
	Duplicates atomic.Uint64
	// Redeliveries: Out: messages published again after a failure;
	// In: messages JetStream delivered more than once.
	Redeliveries atomic.Uint64
	// InFlight: Out: publishes not yet acknowledged; In: messages committed
	// to the ring whose acknowledgement is not confirmed (0 or 1 at a time).
	InFlight atomic.Int64
	// Reconnects to the NATS server.
	Reconnects atomic.Uint64

	mu      sync.Mutex
	dropped map[string]uint64 // by reason
}

// Drop counts a dropped message under reason and logs it with the error.
func (c *Counters) Drop(logf func(string, ...any), reason string, err error) {
	c.mu.Lock()
	if c.dropped == nil {
		c.dropped = make(map[string]uint64)
	}
	c.dropped[reason]++
	n := c.dropped[reason]
	c.mu.Unlock()
	if logf != nil {
		logf("dropped a message (%s, %d so far): %v", reason, n, err)
	}
}

// Dropped returns the drops by reason.
func (c *Counters) Dropped() map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]uint64, len(c.dropped))
	for k, v := range c.dropped {
		m[k] = v
	}
	return m
}

// DroppedTotal returns the number of drops for every reason.
func (c *Counters) DroppedTotal() uint64 {
	var n uint64
	for _, v := range c.Dropped() {
		n += v
	}
	return n
}

// String is a one-line summary, as -v prints it.
func (c *Counters) String() string {
	return fmt.Sprintf("forwarded=%d acknowledged=%d duplicates=%d redeliveries=%d in_flight=%d reconnects=%d dropped=%d",
		c.Forwarded.Load(), c.Acknowledged.Load(), c.Duplicates.Load(), c.Redeliveries.Load(),
		c.InFlight.Load(), c.Reconnects.Load(), c.DroppedTotal())
}

// WritePrometheus writes the counters in the Prometheus text format, each
// labelled with the bridge's direction ("out" or "in") and ring.
func (c *Counters) WritePrometheus(w io.Writer, direction, ringName string) error {
	lbl := fmt.Sprintf(`direction=%q,ring=%q`, direction, ringName)
	var err error
	p := func(format string, args ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, args...)
		}
	}
	counter := func(name, help string, v uint64) {
		p("# HELP ringbridge_%s %s\n# TYPE ringbridge_%s counter\nringbridge_%s{%s} %d\n", name, help, name, name, lbl, v)
	}
	counter("forwarded_total", "Messages handed on (out: published; in: committed to the ring).", c.Forwarded.Load())
	counter("acknowledged_total", "Messages acknowledged (out: by the stream; in: to the stream).", c.Acknowledged.Load())
	counter("duplicates_total", "Duplicates detected and dropped.", c.Duplicates.Load())
	counter("redeliveries_total", "Messages delivered or published again.", c.Redeliveries.Load())
	counter("reconnects_total", "Reconnections to the NATS server.", c.Reconnects.Load())
	p("# HELP ringbridge_in_flight Messages not yet acknowledged.\n# TYPE ringbridge_in_flight gauge\nringbridge_in_flight{%s} %d\n", lbl, c.InFlight.Load())
	p("# HELP ringbridge_dropped_total Messages dropped, by reason.\n# TYPE ringbridge_dropped_total counter\n")
	d := c.Dropped()
	reasons := make([]string, 0, len(d))
	for r := range d {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	if len(reasons) == 0 {
		p("ringbridge_dropped_total{%s,reason=\"none\"} 0\n", lbl)
	}
	for _, r := range reasons {
		p("ringbridge_dropped_total{%s,reason=%q} %d\n", lbl, r, d[r])
	}
	return err
}

// MetricsHandler serves the counters as Prometheus text.
func (c *Counters) MetricsHandler(direction, ringName string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		if err := c.WritePrometheus(w, direction, ringName); err != nil {
			log.Printf("metrics: %v", err)
		}
	})
}
