// Package codec encodes and decodes the frames that ringwire moves through
// its shared-memory ring.
//
// A frame is a small fixed header followed by an opaque payload. The format
// is a cross-language contract: C, Rust and Python peers read and write the
// same bytes, so it is fixed byte by byte and is identical on every GOARCH.
// docs/FRAME.md in the repository describes it for implementers in other
// languages and carries test vectors.
//
// # Layout
//
// All integers are little-endian. A frame starts at an offset that is a
// multiple of [Align] (8) and occupies AlignUp(length) bytes:
//
//	offset  size  field
//	0       4     length    int32: header length + payload length (not padded)
//	4       2     type      uint16: 1 = data, 2 = padding; anything else is invalid
//	6       2     flags     uint16: bit 0 = checksum present; all other bits reserved, 0
//	8       8     checksum  uint64: xxhash64 of the payload, only when flags bit 0 is set
//	8 or 16 n     payload
//	...     0-7   alignment padding up to the next multiple of 8
//
// The header is 8 bytes ([HeaderSize]), or 16 when the checksum is present
// ([HeaderLen]). Both are multiples of 8, so the payload itself is 8-byte
// aligned. The checksum is [xxhash.Sum64] of exactly the payload bytes
// (see [Checksum]); it covers neither the header nor the alignment padding.
// [Encode] writes the alignment padding as zeros; [Decode] ignores it.
// The next frame starts at offset + AlignUp(length), the frame's Size.
//
// # Padding frames
//
// When a record does not fit before the end of the ring's data region, the
// ring covers the remaining gap with a padding frame and continues at the
// start of the region. A padding frame has type 2, flags 0, no checksum, and
// a length equal to the whole gap: a multiple of 8, at least 8. Its body
// (the gap after the 8-byte header) is ignored; [EncodePadding] and
// [SealPadding] leave it as it is.
//
// # The length word and the ring
//
// The length word at offset 0 doubles as the ring's commit flag:
//
//	 0  never written
//	<0  claimed by a writer, not yet committed
//	>0  committed: the rest of the frame is complete
//
// Because a frame starts 8-byte aligned, the length word is 4-byte aligned and
// the ring can load and store it atomically. This package only ever reads and
// writes it as plain bytes; publishing is the ring's job. A writer therefore
// uses the package like this:
//
//  1. claim the space, with its length word still 0 (how depends on the
//     ring's mode: see package ring);
//  2. write the payload in place, at frame[HeaderLen(f):];
//  3. call [Seal], which fills in type, flags and checksum but does not
//     touch the length word, and returns the length to publish;
//  4. store that length atomically, with release semantics.
//
// A reader loads the length word atomically (acquire). Only when it is
// positive does it call [Decode] on the frame, whose bytes are then stable
// until the reader releases the space. Decode itself treats a length <= 0 as
// malformed ([ErrBadLength]): it cannot tell "not yet committed" from
// corruption, so that distinction belongs to the ring.
//
// [Encode] and [EncodePadding] write complete frames, length included, into
// private memory (buffers, files, tests); they are not a way to publish into
// a live ring.
//
// # Validation
//
// [Decode] never panics and never reads outside src[:len(src)], whatever the
// bytes are. It checks, in this order, and reports the first failure:
//
//   - off is negative, past len(src), or not a multiple of 8: [ErrMisaligned]
//   - fewer than 8 bytes remain at off: [ErrTruncated]
//   - length <= 0 (never written, or not committed): [ErrBadLength]
//   - type is not 1 or 2: [ErrBadType]
//   - reserved flag bits are set, or a padding frame has any flag: [ErrBadFlags]
//   - the flags call for a checksum but fewer than 16 bytes remain: [ErrTruncated]
//   - length is below the header length, above maxLength, or (padding) not a
//     multiple of 8: [ErrBadLength]
//   - AlignUp(length) bytes do not fit in src at off: [ErrTruncated]
//   - the payload does not match the checksum: [ErrChecksum]
//
// # Errors
//
// Every error that reports malformed frame bytes matches [ErrMalformed] with
// [errors.Is] and also keeps its own identity: an error from a corrupt
// payload matches both ErrMalformed and ErrChecksum. All errors returned by
// Decode are of this kind. Errors are usually wrapped with context (the
// offset and the offending value), so compare them with errors.Is, never
// with ==. [ErrShortBuffer] and [ErrTooLarge] report a caller's buffer or
// payload that cannot hold or be described by a frame; they do not match
// ErrMalformed.
//
// # Cost
//
// The success paths of [Encode], [Seal], [SealPadding], [EncodePadding] and
// [Decode] allocate nothing; only errors allocate. A decoded frame's Payload
// aliases src (its capacity is capped at its length, so appending to it
// cannot overwrite the next frame). The functions keep no state and are safe
// for concurrent use on distinct buffers.
package codec
