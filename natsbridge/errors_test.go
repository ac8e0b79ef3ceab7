package natsbridge

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/ringwire/ringwire/ring"
)

// TestOverMaxPayload: a ring message larger than the server's max payload
// is dropped, counted and logged with both sizes, in both modes, and the
// messages around it go through.
func TestOverMaxPayload(t *testing.T) {
	for _, stream := range []string{"S", ""} {
		t.Run(fmt.Sprintf("stream=%q", stream), func(t *testing.T) {
			dir := t.TempDir()
			s := startServer(t, t.TempDir(), -1, func(o *server.Options) { o.MaxPayload = 1024 })
			defer stopServer(s)
			r := createRing(t, dir, "a", ring.Options{Capacity: 64 << 10})
			nc := connect(t, s.ClientURL(), nil)
			sub, err := nc.SubscribeSync("big")
			if err != nil {
				t.Fatal(err)
			}
			if stream != "" {
				ensureStream(t, nc, stream, "big")
			}
			nc.Flush()
			p, err := r.Producer()
			if err != nil {
				t.Fatal(err)
			}
			for _, size := range []int{10, 2000, 20} {
				if err := p.Send(make([]byte, size)); err != nil {
					t.Fatal(err)
				}
			}
			c, err := r.Consumer()
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var logged []string
			logf := func(f string, a ...any) {
				mu.Lock()
				defer mu.Unlock()
				logged = append(logged, fmt.Sprintf(f, a...))
			}
			stats := &Counters{}
			out, err := NewOut(c, nc, OutConfig{Subject: "big", Stream: stream, Logf: logf, Counters: stats})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- out.Run(ctx) }()
			for _, want := range []int{10, 20} {
				m, err := sub.NextMsg(10 * time.Second)
				if err != nil {
					t.Fatal(err)
				}
				if len(m.Data) != want {
					t.Fatalf("got a message of %d bytes, want %d", len(m.Data), want)
				}
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if d := stats.Dropped()["max_payload"]; d != 1 {
				t.Fatalf("max_payload drops: %d, want 1", d)
			}
			mu.Lock()
			defer mu.Unlock()
			all := strings.Join(logged, "\n")
			if !strings.Contains(all, "of 2000 bytes") || !strings.Contains(all, "max payload of 1024 bytes") {
				t.Fatalf("the log does not name both sizes:\n%s", all)
			}
			t.Logf("logged: %s", all)
		})
	}
}

// mainResult runs the command in this process with a deadline.
func mainResult(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out lockedWriter
	done := make(chan int, 1)
	go func() { done <- Main(args, &out) }()
	select {
	case code := <-done:
		return code, out.String()
	case <-time.After(20 * time.Second):
		t.Fatalf("ringbridge %s did not exit; it said:\n%s", strings.Join(args, " "), out.String())
	}
	return 0, ""
}

// TestMissingStream: with stream creation disabled, a missing stream is a
// fatal error with a clear message, for both directions.
func TestMissingStream(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, t.TempDir(), -1, nil)
	defer stopServer(s)
	createRing(t, dir, "a", ring.Options{Capacity: 64 << 10})
	for _, d := range []string{"out", "in"} {
		args := []string{d, "-ring", "a", "-dir", dir, "-nats", s.ClientURL(), "-subject", "x", "-stream", "NOPE", "-create-stream=false"}
		if d == "in" {
			args = append(args, "-state", "none")
		}
		code, out := mainResult(t, args...)
		if code != 1 || !strings.Contains(out, `stream "NOPE" does not exist and stream creation is disabled`) {
			t.Fatalf("%s: exit %d, said:\n%s", d, code, out)
		}
		t.Logf("%s: exit %d: %s", d, code, lastLines(out, 1))
	}
}

// TestBadCredentials: credentials the server refuses are a fatal error
// with a clear message, not an endless retry.
func TestBadCredentials(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, t.TempDir(), -1, func(o *server.Options) { o.Username, o.Password = "bridge", "secret" })
	defer stopServer(s)
	createRing(t, dir, "a", ring.Options{Capacity: 64 << 10})
	code, out := mainResult(t, "out", "-ring", "a", "-dir", dir, "-nats", s.ClientURL(), "-subject", "x", "-user", "bridge", "-password", "wrong")
	if code != 1 || !strings.Contains(out, "refused the credentials") {
		t.Fatalf("exit %d, said:\n%s", code, out)
	}
	t.Logf("exit %d: %s", code, lastLines(out, 1))
	code, out = mainResult(t, "out", "-ring", "a", "-dir", dir, "-nats", s.ClientURL(), "-subject", "x", "-creds", dir+"/missing.creds")
	if code != 1 || !strings.Contains(out, "credentials file") {
		t.Fatalf("missing creds file: exit %d, said:\n%s", code, out)
	}
	t.Logf("exit %d: %s", code, lastLines(out, 1))
}

// TestMetrics: the Prometheus text names every counter.
func TestMetrics(t *testing.T) {
	var c Counters
	c.Forwarded.Add(3)
	c.Drop(nil, "max_payload", nil)
	var b strings.Builder
	if err := c.WritePrometheus(&b, "out", "orders"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`ringbridge_forwarded_total{direction="out",ring="orders"} 3`,
		`ringbridge_dropped_total{direction="out",ring="orders",reason="max_payload"} 1`,
		`ringbridge_in_flight{direction="out",ring="orders"} 0`,
		"ringbridge_acknowledged_total", "ringbridge_duplicates_total", "ringbridge_redeliveries_total", "ringbridge_reconnects_total",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, b.String())
		}
	}
}
