package bench

import (
	"encoding/binary"
	"fmt"
)

// pattern is what every message carries, so that its receiver can read
// every byte and tell whether they are the ones the sender put there:
//
//   - bytes 0-7: the control word (a sequence number in pingpong; a stop,
//     warm-up or measured mark or a timestamp in stream);
//   - the rest: a fixed body (byte i is byte(i)), except two 8-byte words
//     that carry a per-message key (the message's number in its session):
//     the word at offset 8 and the last whole word, when the message has
//     room for them.
//
// The sender writes the body once and then only the control word and the
// key words, a constant cost at every size. The receiver sums the message
// as little-endian 64-bit words (the bytes after the last whole word one by
// one) and compares the sum with base + control + keys*key: one pass over
// every byte, and a single changed byte, a stale key or a lost message
// changes the sum.
type pattern struct {
	size int
	base uint64 // the sum of the body with the control and key words zero
	keys uint64 // how many key words: 0, 1 or 2
	at   [2]int // their offsets
}

func newPattern(size int) pattern {
	p := pattern{size: size}
	if size >= 16 {
		p.at[p.keys] = 8
		p.keys++
	}
	if last := (size/8 - 1) * 8; last > 8 {
		p.at[p.keys] = last
		p.keys++
	}
	body := make([]byte, size)
	p.fill(body)
	p.base = checksum(body)
	return p
}

// fill writes the body into msg and zeroes the control and key words.
func (p *pattern) fill(msg []byte) {
	for i := range msg {
		msg[i] = byte(i)
	}
	binary.LittleEndian.PutUint64(msg, 0)
	for _, off := range p.at[:p.keys] {
		binary.LittleEndian.PutUint64(msg[off:], 0)
	}
}

// stamp writes a message's control word and key into msg, which fill made.
func (p *pattern) stamp(msg []byte, control, key uint64) {
	binary.LittleEndian.PutUint64(msg, control)
	for _, off := range p.at[:p.keys] {
		binary.LittleEndian.PutUint64(msg[off:], key)
	}
}

// check reads every byte of m and returns its control word; it fails unless
// m is a message of the pattern's size stamped with key.
func (p *pattern) check(m []byte, key uint64) (uint64, error) {
	if len(m) != p.size {
		return 0, fmt.Errorf("%w: message %d has %d bytes, want %d", ErrBadMessage, key, len(m), p.size)
	}
	control := binary.LittleEndian.Uint64(m)
	if checksum(m) != p.base+control+p.keys*key {
		return 0, fmt.Errorf("%w: message %d (control word %d) does not sum to what was sent", ErrBadMessage, key, control)
	}
	return control, nil
}

// checksum is the sum of b as little-endian 64-bit words, then of its last
// len(b)%8 bytes one by one. Four sums run side by side so that reading,
// not adding, sets the pace.
func checksum(b []byte) uint64 {
	var s0, s1, s2, s3 uint64
	for len(b) >= 32 {
		s0 += binary.LittleEndian.Uint64(b[0:8])
		s1 += binary.LittleEndian.Uint64(b[8:16])
		s2 += binary.LittleEndian.Uint64(b[16:24])
		s3 += binary.LittleEndian.Uint64(b[24:32])
		b = b[32:]
	}
	for len(b) >= 8 {
		s0 += binary.LittleEndian.Uint64(b)
		b = b[8:]
	}
	for _, c := range b {
		s1 += uint64(c)
	}
	return s0 + s1 + s2 + s3
}
