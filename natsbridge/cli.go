package natsbridge

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/ringwire/ringwire/ring"
)

// Duration is a time.Duration that reads "250ms" from JSON.
type Duration time.Duration

// UnmarshalJSON reads a duration string or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		*d = Duration(v)
		return err
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("duration: want a string like \"5s\": %w", err)
	}
	*d = Duration(n)
	return nil
}

// Config is the command's configuration: a JSON file (-config) read first,
// then the flags, which override it.
type Config struct {
	ConnConfig
	Ring         string   `json:"ring"`
	Dir          string   `json:"dir"`
	Subject      string   `json:"subject"`
	Stream       string   `json:"stream"`
	CreateStream bool     `json:"create_stream"`
	Duplicates   Duration `json:"duplicates"`
	MaxInFlight  int      `json:"max_in_flight"`
	AckTimeout   Duration `json:"ack_timeout"`
	Durable      string   `json:"durable"`
	Batch        int      `json:"batch"`
	AckWait      Duration `json:"ack_wait"`
	State        string   `json:"state"`
	PendingMsgs  int      `json:"pending_msgs"`
	Verbose      bool     `json:"verbose"`
	StatsEvery   Duration `json:"stats_every"`
	Metrics      string   `json:"metrics"`
	Wait         string   `json:"wait"`
}

const usage = `ringbridge moves messages between a ringwire ring and NATS.

Usage:
  ringbridge out [flags]   ring -> NATS: takes the ring's consumer role
  ringbridge in  [flags]   NATS -> ring: takes a producer role of the ring

With -stream (JetStream):
  out: every publish carries the message's identity (Nats-Msg-Id) and the
       previous one's (Nats-Expected-Last-Msg-Id); ring space is released
       only once the stream acknowledged the message. A crash or restart of
       the bridge publishes the unreleased messages again with the same ids,
       and the stream's duplicate window drops what it already has: nothing
       acknowledged into the ring is lost, nothing is stored twice, and each
       lane's messages are stored in order.
  in:  a durable pull consumer; a message is acknowledged only after it is
       committed to the ring. With -state, a crash of the bridge puts at most
       one message twice into the ring; without it, at most -batch.
Without -stream (core NATS): AT-MOST-ONCE. out releases a message once it
is written to the connection, in uses a plain subscription: a crash, a
disconnect or a full subscription buffer loses messages (each drop that the
bridge sees is counted and logged).

Messages larger than the server's max payload are dropped, counted and
logged with both sizes; chunking is not provided.

The bridge reconnects forever and never exits on a transient error. It
exits with status 1 on a permanent one (bad credentials, a missing stream
with -create-stream=false, a bad option), and 0 on SIGINT or SIGTERM.

Flags (a -config JSON file may set them too, by their JSON names: "url",
"ring", "subject", "create_stream", "max_in_flight", "ack_wait", ...):
`

// Main runs the command with args (without the program name) and returns
// its exit status.
func Main(args []string, stderr io.Writer) int {
	logger := log.New(stderr, "ringbridge: ", log.LstdFlags|log.Lmicroseconds)
	if len(args) == 0 || (args[0] != "out" && args[0] != "in") {
		fmt.Fprint(stderr, usage)
		fmt.Fprintln(stderr, "  (run \"ringbridge out -h\" or \"ringbridge in -h\" for the flags)")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
			return 0
		}
		return 2
	}
	dir := args[0]
	cfg, err := parseConfig(dir, args[1:], stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		logger.Printf("%v", err)
		return 2
	}
	logger.SetPrefix("ringbridge " + dir + ": ")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = run(ctx, dir, cfg, logger)
	if err != nil && ctx.Err() == nil {
		logger.Printf("fatal: %v", err)
		return 1
	}
	return 0
}

func parseConfig(dir string, args []string, stderr io.Writer) (Config, error) {
	cfg := Config{
		ConnConfig:   ConnConfig{URL: nats.DefaultURL, Name: "ringbridge-" + dir},
		CreateStream: true,
		MaxInFlight:  DefaultMaxInFlight,
		AckTimeout:   Duration(DefaultAckTimeout),
		Batch:        DefaultBatch,
		AckWait:      Duration(DefaultAckWait),
		StatsEvery:   Duration(5 * time.Second),
		Wait:         "block",
	}
	// The config file first, so that flags override it.
	for i, a := range args {
		var path string
		switch {
		case a == "-config" || a == "--config":
			if i+1 < len(args) {
				path = args[i+1]
			}
		case strings.HasPrefix(a, "-config="), strings.HasPrefix(a, "--config="):
			path = a[strings.Index(a, "=")+1:]
		}
		if path != "" {
			b, err := os.ReadFile(path)
			if err != nil {
				return cfg, fmt.Errorf("config: %w", err)
			}
			dec := json.NewDecoder(strings.NewReader(string(b)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&cfg); err != nil {
				return cfg, fmt.Errorf("config %s: %w", path, err)
			}
		}
	}
	fs := flag.NewFlagSet("ringbridge "+dir, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	fs.String("config", "", "a JSON configuration file, read before the flags")
	fs.StringVar(&cfg.Ring, "ring", cfg.Ring, "the ring's name (required)")
	fs.StringVar(&cfg.Dir, "dir", cfg.Dir, "the directory of ring segments (default /dev/shm)")
	fs.StringVar(&cfg.URL, "nats", cfg.URL, "NATS server URLs, comma-separated")
	fs.StringVar(&cfg.Name, "name", cfg.Name, "the NATS connection's name")
	fs.StringVar(&cfg.Creds, "creds", cfg.Creds, "a NATS credentials file (JWT and NKey)")
	fs.StringVar(&cfg.NKeyFile, "nkey", cfg.NKeyFile, "an NKey seed file")
	fs.StringVar(&cfg.User, "user", cfg.User, "user name")
	fs.StringVar(&cfg.Password, "password", cfg.Password, "password")
	fs.StringVar(&cfg.Token, "token", cfg.Token, "authentication token")
	fs.StringVar(&cfg.TLSCert, "tls-cert", cfg.TLSCert, "TLS client certificate file")
	fs.StringVar(&cfg.TLSKey, "tls-key", cfg.TLSKey, "TLS client key file")
	fs.StringVar(&cfg.TLSCA, "tls-ca", cfg.TLSCA, "CA certificates to verify the server")
	fs.BoolVar(&cfg.TLSFirst, "tls-first", cfg.TLSFirst, "TLS handshake before the NATS protocol")
	fs.StringVar(&cfg.Subject, "subject", cfg.Subject, "out: the subject to publish to; {lane} is replaced by the message's lane (e.g. orders.lane.{lane}); in: the subject to take, wildcards allowed (required)")
	fs.StringVar(&cfg.Stream, "stream", cfg.Stream, "the JetStream stream; empty means core NATS, at-most-once")
	fs.BoolVar(&cfg.CreateStream, "create-stream", cfg.CreateStream, "create the stream if it is missing (false: a missing stream is a fatal error)")
	dup := time.Duration(cfg.Duplicates)
	fs.DurationVar(&dup, "duplicates", dup, "a created stream's duplicate window (0: the server's default, 2m); make it longer than any outage of the out bridge")
	fs.BoolVar(&cfg.Verbose, "v", cfg.Verbose, "print the counters every -stats-every")
	every := time.Duration(cfg.StatsEvery)
	fs.DurationVar(&every, "stats-every", every, "how often -v prints the counters")
	fs.StringVar(&cfg.Wait, "wait", cfg.Wait, "how the bridge waits on the ring: block (a futex: no CPU while idle, leaves the CPUs to the NATS client), adaptive, yield or spin")
	fs.StringVar(&cfg.Metrics, "metrics", cfg.Metrics, "serve Prometheus metrics on this address (e.g. :9464) at /metrics")
	ackTimeout := time.Duration(cfg.AckTimeout)
	ackWait := time.Duration(cfg.AckWait)
	if dir == "out" {
		fs.IntVar(&cfg.MaxInFlight, "max-in-flight", cfg.MaxInFlight, "JetStream publishes awaiting acknowledgement, at most")
		fs.DurationVar(&ackTimeout, "ack-timeout", ackTimeout, "publish again a message not acknowledged in this time")
	} else {
		fs.StringVar(&cfg.Durable, "durable", cfg.Durable, "the durable consumer's name (default ringbridge-<ring>)")
		fs.IntVar(&cfg.Batch, "batch", cfg.Batch, "messages fetched and not yet acknowledged, at most (the consumer's MaxAckPending)")
		fs.DurationVar(&ackWait, "ack-wait", ackWait, "the consumer's acknowledgement wait")
		fs.StringVar(&cfg.State, "state", cfg.State, "the file recording the last stream sequence committed to the ring (default /dev/shm/ringbridge-<ring>-<durable>.seq; \"none\" to go without, and allow up to -batch duplicates after a crash)")
		fs.IntVar(&cfg.PendingMsgs, "pending-msgs", cfg.PendingMsgs, "core NATS: the subscription's buffer in messages (0: nats.go's default)")
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	cfg.Duplicates, cfg.StatsEvery = Duration(dup), Duration(every)
	cfg.AckTimeout, cfg.AckWait = Duration(ackTimeout), Duration(ackWait)
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if cfg.Ring == "" || cfg.Subject == "" {
		return cfg, errors.New("-ring and -subject are required (see -h)")
	}
	if dir == "in" && cfg.Durable == "" {
		cfg.Durable = "ringbridge-" + cfg.Ring
	}
	if dir == "in" && cfg.State == "" && cfg.Stream != "" {
		d := cfg.Dir
		if d == "" {
			d = "/dev/shm"
		}
		cfg.State = d + "/ringbridge-" + cfg.Ring + "-" + cfg.Durable + ".seq"
	}
	if cfg.State == "none" {
		cfg.State = ""
	}
	return cfg, nil
}

// streamSubjects is the subject filter a created stream captures.
func streamSubjects(subject string) []string {
	return []string{strings.ReplaceAll(subject, "{lane}", "*")}
}

func run(ctx context.Context, dir string, cfg Config, logger *log.Logger) error {
	stats := &Counters{}
	logf := logger.Printf
	if cfg.Metrics != "" {
		ln, err := net.Listen("tcp", cfg.Metrics)
		if err != nil {
			return &PermanentError{fmt.Errorf("metrics: %w", err)}
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", stats.MetricsHandler(dir, cfg.Ring))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		logf("metrics on http://%s/metrics", ln.Addr())
	}
	if cfg.Verbose {
		go func() {
			t := time.NewTicker(time.Duration(cfg.StatsEvery))
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					logf("%s", stats)
				}
			}
		}()
	}
	nc, err := Connect(ctx, cfg.ConnConfig, stats, logf)
	if err != nil {
		return err
	}
	defer nc.Close()
	logf("connected to %s", nc.ConnectedUrlRedacted())
	if cfg.Stream != "" {
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		sc := StreamConfig{Name: cfg.Stream, Subjects: streamSubjects(cfg.Subject), Duplicates: time.Duration(cfg.Duplicates)}
		if dir == "in" {
			sc.Subjects = []string{cfg.Subject}
		}
		if err := EnsureStream(ctx, js, sc, cfg.CreateStream); err != nil {
			return err
		}
	}
	mode, err := ring.ParseWaitMode(cfg.Wait)
	if err != nil {
		return &PermanentError{err}
	}
	ao := ring.AttachOptions{Dir: cfg.Dir, Wait: ring.Wait{Mode: mode}}
	if dir == "out" {
		c, err := waitRing(ctx, logf, cfg.Ring, func() (*ring.Consumer, error) { return ring.OpenConsumer(cfg.Ring, ao) })
		if err != nil {
			return err
		}
		defer c.Close()
		out, err := NewOut(c, nc, OutConfig{Subject: cfg.Subject, Stream: cfg.Stream, MaxInFlight: cfg.MaxInFlight,
			AckTimeout: time.Duration(cfg.AckTimeout), Logf: logf, Counters: stats})
		if err != nil {
			return err
		}
		logf("forwarding ring %q to %s (stream %q)", cfg.Ring, cfg.Subject, cfg.Stream)
		err = out.Run(ctx)
		logf("stopping: %s", stats)
		return err
	}
	p, err := waitRing(ctx, logf, cfg.Ring, func() (*ring.Producer, error) { return ring.OpenProducer(cfg.Ring, ao) })
	if err != nil {
		return err
	}
	defer p.Close()
	in, err := NewIn(p, nc, InConfig{Subject: cfg.Subject, Stream: cfg.Stream, Durable: cfg.Durable, Batch: cfg.Batch,
		AckWait: time.Duration(cfg.AckWait), StatePath: cfg.State, PendingMsgs: cfg.PendingMsgs, Logf: logf, Counters: stats})
	if err != nil {
		return err
	}
	logf("forwarding %s (stream %q) to ring %q", cfg.Subject, cfg.Stream, cfg.Ring)
	err = in.Run(ctx)
	logf("stopping: %s", stats)
	return err
}

// waitRing opens a role on the ring, waiting while the ring does not exist
// yet or the role is held by a live process (a bridge being replaced).
func waitRing[T any](ctx context.Context, logf func(string, ...any), name string, open func() (T, error)) (T, error) {
	logged := false
	for {
		h, err := open()
		if err == nil {
			return h, nil
		}
		if !errors.Is(err, os.ErrNotExist) && !errors.Is(err, ring.ErrBusy) && !errors.Is(err, ring.ErrNotReady) {
			return h, &PermanentError{fmt.Errorf("ring %q: %w", name, err)}
		}
		if !logged {
			logf("ring %q: %v; waiting", name, err)
			logged = true
		}
		select {
		case <-ctx.Done():
			return h, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
