package bench

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// TestFloorCarriesMessage: the floor moves every byte of a message each way,
// at sizes that fit in its signal's line and that do not.
func TestFloorCarriesMessage(t *testing.T) {
	for _, size := range []int{8, 56, 64, 5000} {
		env := Env{Dir: t.TempDir(), Mode: PingPong, Size: size}
		s, err := FloorTransport{}.Setup(env)
		if err != nil {
			t.Fatal(err)
		}
		peer, err := FloorTransport{}.Attach(env, s.Addr(), nil)
		if err != nil {
			t.Fatal(err)
		}
		parent, err := s.Accept(time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for trip := range 3 {
			ping, pong := make([]byte, size), make([]byte, size)
			for i := range ping {
				ping[i], pong[i] = byte(i+trip), byte(3*i+trip)
			}
			if err := parent.Send(ping); err != nil {
				t.Fatal(err)
			}
			if m, err := peer.Recv(nil); err != nil || !bytes.Equal(m, ping) {
				t.Fatalf("size %d trip %d: the peer got other bytes (%v)", size, trip, err)
			}
			if err := peer.Send(pong); err != nil {
				t.Fatal(err)
			}
			if m, err := parent.Recv(nil); err != nil || !bytes.Equal(m, pong) {
				t.Fatalf("size %d trip %d: the parent got other bytes (%v)", size, trip, err)
			}
		}
		if err := parent.Send(make([]byte, size+1)); !errors.Is(err, ErrBadMessage) {
			t.Errorf("size %d: a message of another size: %v", size, err)
		}
		peer.Close()
		parent.Close()
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}
}
