package codec

import (
	"errors"
	"fmt"
)

// ErrMalformed is matched, with errors.Is, by every error that reports a
// malformed frame: all errors returned by Decode, and ErrBadFlags or
// ErrBadLength from the encoding functions. Each such error also matches its
// own sentinel below.
var ErrMalformed = errors.New("codec: malformed frame")

// Errors for malformed frames. Each matches ErrMalformed as well as itself.
var (
	// ErrMisaligned: the offset given to Decode is negative, past the end of
	// src, or not a multiple of Align.
	ErrMisaligned = newMalformed("codec: misaligned frame offset")

	// ErrTruncated: src ends before the frame does, be it within the 8-byte
	// header, within the checksum, or within AlignUp(length).
	ErrTruncated = newMalformed("codec: truncated frame")

	// ErrBadLength: the length word is <= 0 (never written or not yet
	// committed), below the header length, above the maxLength bound, or,
	// for a padding frame, not a multiple of Align.
	ErrBadLength = newMalformed("codec: bad frame length")

	// ErrBadType: the type field is neither TypeData nor TypePadding.
	ErrBadType = newMalformed("codec: bad frame type")

	// ErrBadFlags: reserved flag bits are set, or a padding frame has flags.
	ErrBadFlags = newMalformed("codec: bad frame flags")

	// ErrChecksum: the payload's xxhash64 differs from the checksum field.
	ErrChecksum = newMalformed("codec: checksum mismatch")
)

// Errors for frames that cannot be written. They do not match ErrMalformed.
var (
	// ErrShortBuffer: the destination is too small for the frame.
	ErrShortBuffer = errors.New("codec: buffer too short for frame")

	// ErrTooLarge: the frame's length would not fit in the int32 length word.
	ErrTooLarge = errors.New("codec: frame too large")
)

// malformedError is the type of the malformed-frame sentinels: it matches
// ErrMalformed in errors.Is while staying a distinct value itself.
type malformedError struct{ msg string }

func newMalformed(msg string) error { return &malformedError{msg} }

func (e *malformedError) Error() string { return e.msg }

// Is reports whether target is ErrMalformed.
func (e *malformedError) Is(target error) bool { return target == ErrMalformed }

// The constructors below wrap a sentinel with context. They are only called
// on failure, so their allocations never touch the success paths.

func errMisaligned(off, n int) error {
	return fmt.Errorf("%w: offset %d in a %d-byte buffer", ErrMisaligned, off, n)
}

func errTruncatedHeader(off, have, want int) error {
	return fmt.Errorf("%w: frame at %d: %d bytes left, header needs %d", ErrTruncated, off, have, want)
}

func errTruncatedBody(off, length, have int) error {
	return fmt.Errorf("%w: frame at %d: length %d occupies %d bytes, %d left",
		ErrTruncated, off, length, alignUp64(length), have)
}

func errUncommitted(off int, length int32) error {
	state := "never written"
	if length < 0 {
		state = "not committed"
	}
	return fmt.Errorf("%w: frame at %d: length %d (%s)", ErrBadLength, off, length, state)
}

func errLength(off int, t Type, length, hl, maxLength int) error {
	switch {
	case length < hl:
		return fmt.Errorf("%w: frame at %d: length %d below header length %d", ErrBadLength, off, length, hl)
	case length > maxLength:
		return fmt.Errorf("%w: frame at %d: length %d exceeds maximum %d", ErrBadLength, off, length, maxLength)
	}
	return fmt.Errorf("%w: frame at %d: %s length %d not a multiple of %d", ErrBadLength, off, t, length, Align)
}

func errType(off int, t Type) error {
	return fmt.Errorf("%w: frame at %d: type %d", ErrBadType, off, uint16(t))
}

func errFlagsAt(off int, t Type, f Flags) error {
	return fmt.Errorf("%w: frame at %d: %s frame with flags %#04x", ErrBadFlags, off, t, uint16(f))
}

func errChecksum(off int, got, want uint64) error {
	return fmt.Errorf("%w: frame at %d: payload hashes to %#016x, header says %#016x", ErrChecksum, off, got, want)
}

func errReservedFlags(f Flags) error {
	return fmt.Errorf("%w: reserved bits %#04x set", ErrBadFlags, uint16(f&FlagsReserved))
}

func errPaddingLength(n int) error {
	return fmt.Errorf("%w: padding length %d not a multiple of %d", ErrBadLength, n, Align)
}

func errShortFrame(have, hl int) error {
	return fmt.Errorf("%w: %d bytes, header needs %d", ErrShortBuffer, have, hl)
}

func errShortBuffer(have, length int) error {
	return fmt.Errorf("%w: %d bytes, frame of length %d occupies %d", ErrShortBuffer, have, length, alignUp64(length))
}

func errTooLarge(length int) error {
	return fmt.Errorf("%w: length %d exceeds %d", ErrTooLarge, length, MaxLength)
}

// alignUp64 is AlignUp for messages, safe from overflow on 32-bit platforms.
func alignUp64(n int) int64 {
	return (int64(n) + Align - 1) &^ (Align - 1)
}
