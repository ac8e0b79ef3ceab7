package codec

import (
	"encoding/binary"
	"math"
	"strconv"

	"github.com/cespare/xxhash/v2"
)

// The frame layout. This block is the single definition of the format; every
// function in the package, docs/FRAME.md and the peers in other languages
// follow it. All integers are little-endian.
//
//	[OffLength, +4)                    length    int32  HeaderLen(flags) + len(payload), not padded
//	[OffType, +2)                      type      uint16 TypeData or TypePadding
//	[OffFlags, +2)                     flags     uint16 0 or FlagChecksum; FlagsReserved bits are 0
//	[OffChecksum, +ChecksumSize)       checksum  uint64 Checksum(payload); only with FlagChecksum
//	[HeaderLen(flags), length)         payload
//	[length, AlignUp(length))          alignment padding: zeros from Encode, ignored by Decode
//
// Invariants:
//   - a frame starts at a multiple of Align and occupies AlignUp(length) bytes,
//     so the next frame starts aligned too;
//   - the fixed fields end at HeaderSize == OffChecksum, and the checksum, when
//     present, ends at HeaderSize+ChecksumSize; both header lengths are
//     multiples of Align, so the payload is Align-aligned;
//   - the length word is at offset 0 and 4-byte aligned, so the ring can load
//     and store it atomically;
//   - a decodable frame has HeaderLen(flags) <= length <= MaxLength;
//   - a padding frame has flags 0 and a length that is a multiple of Align.
const (
	Align        = 8 // frames start at, and occupy, multiples of Align bytes
	HeaderSize   = 8 // header length without checksum
	ChecksumSize = 8 // size of the optional checksum field

	OffLength   = 0 // int32 length word
	OffType     = 4 // uint16 Type
	OffFlags    = 6 // uint16 Flags
	OffChecksum = 8 // uint64 checksum, present only with FlagChecksum

	// MaxLength is the largest value the length word can hold. Pass it to
	// Decode as maxLength to bound a frame by its buffer alone.
	MaxLength = math.MaxInt32
)

// Type is a frame's type field.
type Type uint16

// Frame types. Zero and every other value are invalid.
const (
	TypeData    Type = 1 // a message: header, payload, alignment padding
	TypePadding Type = 2 // filler up to the end of the ring's data region
)

// String returns "data", "padding", or "Type(N)" for an invalid value.
func (t Type) String() string {
	switch t {
	case TypeData:
		return "data"
	case TypePadding:
		return "padding"
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// Flags is a frame's flags field.
type Flags uint16

const (
	// FlagChecksum marks a data frame whose header carries the xxhash64 of
	// its payload at OffChecksum.
	FlagChecksum Flags = 1 << 0

	// FlagsReserved are the bits that must be zero in every frame.
	FlagsReserved = ^FlagChecksum
)

// String returns the flags as "0", "checksum", or a "|"-separated list in
// which reserved bits appear in hex, such as "checksum|0x8000".
func (f Flags) String() string {
	if f == 0 {
		return "0"
	}
	s := ""
	if f&FlagChecksum != 0 {
		s = "checksum"
	}
	if r := f & FlagsReserved; r != 0 {
		if s != "" {
			s += "|"
		}
		s += "0x" + strconv.FormatUint(uint64(r), 16)
	}
	return s
}

// HeaderLen returns the header length of a frame with flags f:
// HeaderSize (8), or HeaderSize+ChecksumSize (16) when f has FlagChecksum.
// Reserved bits are ignored.
func HeaderLen(f Flags) int {
	if f&FlagChecksum != 0 {
		return HeaderSize + ChecksumSize
	}
	return HeaderSize
}

// AlignUp rounds n up to a multiple of Align. n must be at least 0 and at
// most math.MaxInt-(Align-1).
func AlignUp(n int) int {
	return (n + Align - 1) &^ (Align - 1)
}

// FrameSize returns the number of bytes a data frame with a payload of
// payloadLen bytes and flags f occupies: AlignUp(HeaderLen(f)+payloadLen).
// It is what Encode returns and the distance to the next frame.
func FrameSize(payloadLen int, f Flags) int {
	return AlignUp(HeaderLen(f) + payloadLen)
}

// Checksum returns the checksum of payload as stored in a frame with
// FlagChecksum: xxhash.Sum64(payload), the 64-bit xxHash with seed 0.
func Checksum(payload []byte) uint64 {
	return xxhash.Sum64(payload)
}

// Seal completes a data frame whose payload is already in place. frame must
// be exactly the frame's unpadded bytes, HeaderLen(f)+payloadLen long, with
// the payload at frame[HeaderLen(f):]. Seal writes the type, the flags and,
// with FlagChecksum, the checksum of frame[HeaderLen(f):]. It does not touch
// the length word frame[OffLength:OffLength+4], nor anything outside frame;
// instead it returns the value to publish there, int32(len(frame)).
//
// This is the writer's half of the ring protocol: claim, write the payload,
// Seal, then store the returned length atomically.
//
// Seal fails with ErrBadFlags if f has reserved bits, ErrShortBuffer if
// frame is shorter than HeaderLen(f), and ErrTooLarge if len(frame) exceeds
// MaxLength.
func Seal(frame []byte, f Flags) (int32, error) {
	if f&FlagsReserved != 0 {
		return 0, errReservedFlags(f)
	}
	hl := HeaderLen(f)
	if len(frame) < hl {
		return 0, errShortFrame(len(frame), hl)
	}
	if len(frame) > MaxLength {
		return 0, errTooLarge(len(frame))
	}
	putHeader(frame, TypeData, f)
	if f&FlagChecksum != 0 {
		binary.LittleEndian.PutUint64(frame[OffChecksum:], xxhash.Sum64(frame[hl:]))
	}
	return int32(len(frame)), nil
}

// SealPadding completes a padding frame that covers all of gap: it writes the
// type (TypePadding) and flags (0), leaves the length word and the body
// untouched, and returns the length to publish, int32(len(gap)).
//
// len(gap) must be a multiple of Align and at least HeaderSize: SealPadding
// fails with ErrShortBuffer if it is shorter, ErrBadLength if it is not a
// multiple of Align, and ErrTooLarge if it exceeds MaxLength.
func SealPadding(gap []byte) (int32, error) {
	switch {
	case len(gap) < HeaderSize:
		return 0, errShortFrame(len(gap), HeaderSize)
	case len(gap)%Align != 0:
		return 0, errPaddingLength(len(gap))
	case len(gap) > MaxLength:
		return 0, errTooLarge(len(gap))
	}
	putHeader(gap, TypePadding, 0)
	return int32(len(gap)), nil
}

// Encode writes a complete data frame carrying payload, with flags f, at
// dst[0:] and returns the number of bytes used, FrameSize(len(payload), f).
// It writes the length word, type, flags, checksum (with FlagChecksum) and
// payload, and zeroes the alignment padding; it writes nothing past the
// frame's Size. payload may overlap dst.
//
// Encode fails with ErrBadFlags if f has reserved bits, ErrTooLarge if the
// frame's length would exceed MaxLength, and ErrShortBuffer if dst is
// shorter than the frame's Size. It writes nothing when it fails.
func Encode(dst, payload []byte, f Flags) (int, error) {
	if f&FlagsReserved != 0 {
		return 0, errReservedFlags(f)
	}
	hl := HeaderLen(f)
	if len(payload) > MaxLength-hl {
		return 0, errTooLarge(len(payload) + hl)
	}
	n := hl + len(payload)
	size, ok := fitAligned(n, len(dst))
	if !ok {
		return 0, errShortBuffer(len(dst), n)
	}
	copy(dst[hl:n], payload)
	binary.LittleEndian.PutUint32(dst[OffLength:], uint32(n))
	putHeader(dst, TypeData, f)
	if f&FlagChecksum != 0 {
		binary.LittleEndian.PutUint64(dst[OffChecksum:], xxhash.Sum64(dst[hl:n]))
	}
	clear(dst[n:size])
	return size, nil
}

// EncodePadding writes a complete padding frame covering all of dst: length
// len(dst), TypePadding, flags 0. It leaves the body, dst[HeaderSize:],
// untouched. It fails like SealPadding.
func EncodePadding(dst []byte) error {
	n, err := SealPadding(dst)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(dst[OffLength:], uint32(n))
	return nil
}

// Frame is a decoded frame.
type Frame struct {
	Type   Type
	Flags  Flags
	Length int // the length word: header + payload, not padded
	Size   int // bytes the frame occupies, AlignUp(Length); the next frame starts Size bytes on

	// Payload is the frame's payload, src[off+HeaderLen(Flags) : off+Length].
	// It aliases src and its capacity equals its length. It is nil for a
	// padding frame and empty, not nil, for a data frame without payload.
	Payload []byte
}

// Decode validates and decodes the frame at src[off:]. off is the frame's
// offset in src and must be a multiple of Align; maxLength bounds the length
// word (the ring passes its maximum frame length; MaxLength imposes no bound
// beyond src itself, and maxLength <= 0 rejects every frame). The frame's
// AlignUp(length) bytes must lie within src. When the frame carries a
// checksum, Decode verifies it.
//
// Decode never panics and never reads outside src[:len(src)]. On failure it
// returns the zero Frame and an error matching ErrMalformed and one of
// ErrMisaligned (an off past len(src) counts as misaligned), ErrTruncated,
// ErrBadLength, ErrBadType, ErrBadFlags or ErrChecksum; the package
// documentation lists the checks in the order Decode makes them.
func Decode(src []byte, off int, maxLength int) (Frame, error) {
	if off < 0 || off > len(src) || off%Align != 0 {
		return Frame{}, errMisaligned(off, len(src))
	}
	b := src[off:]
	if len(b) < HeaderSize {
		return Frame{}, errTruncatedHeader(off, len(b), HeaderSize)
	}
	length := int32(binary.LittleEndian.Uint32(b[OffLength:]))
	t := Type(binary.LittleEndian.Uint16(b[OffType:]))
	f := Flags(binary.LittleEndian.Uint16(b[OffFlags:]))
	if length <= 0 {
		return Frame{}, errUncommitted(off, length)
	}
	switch t {
	case TypeData:
		if f&FlagsReserved != 0 {
			return Frame{}, errFlagsAt(off, t, f)
		}
	case TypePadding:
		if f != 0 {
			return Frame{}, errFlagsAt(off, t, f)
		}
	default:
		return Frame{}, errType(off, t)
	}
	hl := HeaderLen(f)
	if len(b) < hl {
		return Frame{}, errTruncatedHeader(off, len(b), hl)
	}
	n := int(length)
	if n < hl || n > maxLength || (t == TypePadding && n%Align != 0) {
		return Frame{}, errLength(off, t, n, hl, maxLength)
	}
	size, ok := fitAligned(n, len(b))
	if !ok {
		return Frame{}, errTruncatedBody(off, n, len(b))
	}
	if t == TypePadding {
		return Frame{Type: t, Flags: f, Length: n, Size: size}, nil
	}
	payload := b[hl:n:n]
	if f&FlagChecksum != 0 {
		want := binary.LittleEndian.Uint64(b[OffChecksum:])
		if got := xxhash.Sum64(payload); got != want {
			return Frame{}, errChecksum(off, got, want)
		}
	}
	return Frame{Type: t, Flags: f, Length: n, Size: size, Payload: payload}, nil
}

// putHeader writes the type and flags fields of the frame at b[0:].
func putHeader(b []byte, t Type, f Flags) {
	_ = b[OffFlags+1] // one bounds check
	binary.LittleEndian.PutUint16(b[OffType:], uint16(t))
	binary.LittleEndian.PutUint16(b[OffFlags:], uint16(f))
}

// fitAligned reports whether AlignUp(n) bytes fit in room bytes and, if so,
// returns AlignUp(n). Unlike AlignUp(n) <= room it cannot overflow, even on
// 32-bit platforms with n close to MaxLength. n and room must be >= 0.
func fitAligned(n, room int) (int, bool) {
	if n > room {
		return 0, false
	}
	pad := -n & (Align - 1)
	if room-n < pad {
		return 0, false
	}
	return n + pad, true
}
