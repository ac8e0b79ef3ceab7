package natsbridge

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ConnConfig is how to reach NATS: the options nats.go supports for
// credentials and TLS.
type ConnConfig struct {
	URL      string `json:"url"`       // comma-separated server URLs
	Name     string `json:"name"`      // connection name, shown by the server
	Creds    string `json:"creds"`     // a .creds file (JWT and NKey seed)
	NKeyFile string `json:"nkey"`      // an NKey seed file
	User     string `json:"user"`      // user name
	Password string `json:"password"`  // password
	Token    string `json:"token"`     // authentication token
	TLSCert  string `json:"tls_cert"`  // client certificate (with TLSKey)
	TLSKey   string `json:"tls_key"`   // client key
	TLSCA    string `json:"tls_ca"`    // CA certificates to verify the server
	TLSFirst bool   `json:"tls_first"` // TLS handshake before the INFO protocol
}

// PermanentError is an error retrying cannot cure: bad credentials, a
// missing stream with creation disabled, a bad option. The command exits
// non-zero on it.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// IsPermanent reports whether err is permanent.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// isAuthError reports an authentication or authorization failure.
func isAuthError(err error) bool {
	if errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) ||
		errors.Is(err, nats.ErrAuthRevoked) || errors.Is(err, nats.ErrAccountAuthExpired) ||
		errors.Is(err, nats.ErrPermissionViolation) {
		return true
	}
	s := strings.ToLower(err.Error())
	return strings.Contains(s, "authorization violation") || strings.Contains(s, "authentication")
}

// options are the nats.go options for cc, with reconnects forever and the
// events counted in stats and logged with logf.
func (cc ConnConfig) options(stats *Counters, logf func(string, ...any)) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name(cc.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.PingInterval(10 * time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logf("disconnected from NATS: %v; reconnecting", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			stats.Reconnects.Add(1)
			logf("reconnected to %s", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) {
				return // counted by the subscriber
			}
			logf("NATS: %v", err)
		}),
	}
	if cc.Creds != "" {
		if _, err := os.Stat(cc.Creds); err != nil {
			return nil, &PermanentError{fmt.Errorf("credentials file: %w", err)}
		}
		opts = append(opts, nats.UserCredentials(cc.Creds))
	}
	if cc.NKeyFile != "" {
		o, err := nats.NkeyOptionFromSeed(cc.NKeyFile)
		if err != nil {
			return nil, &PermanentError{fmt.Errorf("nkey seed file: %w", err)}
		}
		opts = append(opts, o)
	}
	if cc.User != "" {
		opts = append(opts, nats.UserInfo(cc.User, cc.Password))
	}
	if cc.Token != "" {
		opts = append(opts, nats.Token(cc.Token))
	}
	if cc.TLSCert != "" || cc.TLSKey != "" {
		for _, f := range []string{cc.TLSCert, cc.TLSKey} {
			if _, err := os.Stat(f); err != nil {
				return nil, &PermanentError{fmt.Errorf("TLS client certificate: %w", err)}
			}
		}
		opts = append(opts, nats.ClientCert(cc.TLSCert, cc.TLSKey))
	}
	if cc.TLSCA != "" {
		if _, err := os.Stat(cc.TLSCA); err != nil {
			return nil, &PermanentError{fmt.Errorf("TLS CA: %w", err)}
		}
		opts = append(opts, nats.RootCAs(cc.TLSCA))
	}
	if cc.TLSFirst {
		opts = append(opts, nats.TLSHandshakeFirst())
	}
	return opts, nil
}

// Connect connects to NATS, retrying while the servers are unreachable
// (a transient trouble) until ctx ends; bad credentials and bad options
// are a PermanentError. The connection reconnects by itself forever.
func Connect(ctx context.Context, cc ConnConfig, stats *Counters, logf func(string, ...any), extra ...nats.Option) (*nats.Conn, error) {
	if stats == nil {
		stats = &Counters{}
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	opts, err := cc.options(stats, logf)
	if err != nil {
		return nil, err
	}
	opts = append(opts, extra...)
	url := cc.URL
	if url == "" {
		url = nats.DefaultURL
	}
	backoff := 250 * time.Millisecond
	for {
		nc, err := nats.Connect(url, opts...)
		if err == nil {
			return nc, nil
		}
		if isAuthError(err) {
			return nil, &PermanentError{fmt.Errorf("NATS at %s refused the credentials: %w", url, err)}
		}
		var pathErr *os.PathError
		if errors.As(err, &pathErr) || strings.Contains(err.Error(), "tls:") || strings.Contains(err.Error(), "x509") {
			return nil, &PermanentError{fmt.Errorf("NATS at %s: %w", url, err)}
		}
		logf("connect to %s: %v; retrying in %v", url, err, backoff)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// StreamConfig is the stream EnsureStream creates when it is missing.
type StreamConfig struct {
	Name       string
	Subjects   []string
	Duplicates time.Duration // the duplicate window; 0 means the server's (2 min)
	Replicas   int
}

// EnsureStream checks that the stream exists, and creates it if it does
// not and create is set. A missing stream with creation disabled, or a
// server without JetStream, is a PermanentError.
func EnsureStream(ctx context.Context, js jetstream.JetStream, sc StreamConfig, create bool) error {
	for {
		_, err := js.Stream(ctx, sc.Name)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, jetstream.ErrStreamNotFound):
			if !create {
				return &PermanentError{fmt.Errorf("stream %q does not exist and stream creation is disabled: create it, or run with -create-stream", sc.Name)}
			}
			_, err = js.CreateStream(ctx, jetstream.StreamConfig{
				Name: sc.Name, Subjects: sc.Subjects, Storage: jetstream.FileStorage,
				Duplicates: sc.Duplicates, Replicas: max(sc.Replicas, 1),
			})
			if err == nil || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				return nil
			}
			return &PermanentError{fmt.Errorf("create stream %q: %w", sc.Name, err)}
		case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
			return &PermanentError{fmt.Errorf("stream %q: %w", sc.Name, err)}
		case ctx.Err() != nil:
			return ctx.Err()
		}
		// A timeout while the server starts or reconnects: retry.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
