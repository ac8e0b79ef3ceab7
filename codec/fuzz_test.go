package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func FuzzDecode(f *testing.F) {
	plain := encoded("hello", 0)
	sum := encoded("hello", FlagChecksum)
	empty := encoded("", 0)
	emptySum := encoded("", FlagChecksum)
	padding := make([]byte, 32)
	if err := EncodePadding(padding); err != nil {
		f.Fatal(err)
	}
	badSum := encoded("hello", FlagChecksum)
	badSum[len(badSum)-4] ^= 1

	for _, s := range []struct {
		src       []byte
		off       int
		maxLength int
	}{
		{plain, 0, MaxLength},
		{sum, 0, MaxLength},
		{empty, 0, MaxLength},
		{emptySum, 0, MaxLength},
		{padding, 0, MaxLength},
		{encoded(string(testPayload(100)), FlagChecksum), 0, 1024},
		{cat(plain, sum, padding), 16, 64},
		{cat(sum, padding), 24, 32},
		{cat(plain, sum), 8, MaxLength}, // misaligned: inside a frame
		{plain, 3, MaxLength},
		{plain, -8, MaxLength},
		{plain, 0, 12},                                                       // above maxLength
		{plain[:13], 0, 64},                                                  // alignment padding missing
		{sum[:12], 0, 64},                                                    // truncated checksum
		{plain[:7], 0, 64},                                                   // truncated header
		{badSum, 0, 64},                                                      // checksum mismatch
		{make([]byte, 16), 0, 64},                                            // never written
		{cat(header(-16, TypeData, 0), make([]byte, 8)), 0, 64},              // claimed
		{cat(header(13, 3, 0), make([]byte, 8)), 0, 64},                      // bad type
		{cat(header(13, TypeData, 0x8000), make([]byte, 8)), 0, 64},          // reserved flag
		{cat(header(16, TypePadding, FlagChecksum), make([]byte, 8)), 0, 64}, // flagged padding
		{cat(header(12, TypePadding, 0), make([]byte, 8)), 0, 64},            // unaligned padding
		{cat(header(0x7fffffff, TypeData, 0), make([]byte, 8)), 0, MaxLength},
	} {
		f.Add(s.src, s.off, s.maxLength)
	}

	f.Fuzz(func(t *testing.T, src []byte, off, maxLength int) {
		orig := bytes.Clone(src)
		fr, err := Decode(src, off, maxLength)
		if !bytes.Equal(src, orig) {
			t.Fatal("Decode modified src")
		}
		if err != nil {
			checkDecodeError(t, fr, err)
			return
		}
		checkFrame(t, src, off, maxLength, fr)
	})
}

// checkDecodeError checks that a Decode failure is a malformed-frame error
// with exactly one identity and comes with the zero Frame.
func checkDecodeError(t *testing.T, fr Frame, err error) {
	t.Helper()
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("Decode error %v does not match ErrMalformed", err)
	}
	matched := 0
	for _, s := range malformedSentinels {
		if errors.Is(err, s) {
			matched++
		}
	}
	if matched != 1 {
		t.Fatalf("Decode error %v matches %d sentinels; want 1", err, matched)
	}
	if fr.Type != 0 || fr.Flags != 0 || fr.Length != 0 || fr.Size != 0 || fr.Payload != nil {
		t.Fatalf("Decode returned %+v with error %v", fr, err)
	}
}

// checkFrame checks that a frame Decode accepted is self-consistent and
// reproduced by the encoders.
func checkFrame(t *testing.T, src []byte, off, maxLength int, fr Frame) {
	t.Helper()
	if off < 0 || off%Align != 0 || off > len(src) {
		t.Fatalf("accepted offset %d in %d bytes", off, len(src))
	}
	hl := HeaderLen(fr.Flags)
	switch {
	case fr.Length < hl, fr.Length > maxLength, fr.Length > MaxLength:
		t.Fatalf("accepted length %d (header %d, max %d)", fr.Length, hl, maxLength)
	case fr.Size != AlignUp(fr.Length):
		t.Fatalf("Size %d; want AlignUp(%d)", fr.Size, fr.Length)
	case fr.Size > len(src)-off:
		t.Fatalf("Size %d at %d overruns %d bytes", fr.Size, off, len(src))
	case int(int32(binary.LittleEndian.Uint32(src[off+OffLength:]))) != fr.Length:
		t.Fatalf("Length %d differs from the length word", fr.Length)
	}
	frame := src[off : off+fr.Length]

	switch fr.Type {
	case TypeData:
		if fr.Flags&FlagsReserved != 0 {
			t.Fatalf("accepted flags %v", fr.Flags)
		}
		if len(fr.Payload) != fr.Length-hl || cap(fr.Payload) != len(fr.Payload) || fr.Payload == nil {
			t.Fatalf("payload len %d cap %d; want %d", len(fr.Payload), cap(fr.Payload), fr.Length-hl)
		}
		if len(fr.Payload) > 0 && &fr.Payload[0] != &src[off+hl] {
			t.Fatal("Payload does not alias src")
		}
		// Re-encoding gives back the same bytes, alignment padding zeroed.
		buf := bytes.Repeat([]byte{0xcc}, fr.Size)
		n, err := Encode(buf, fr.Payload, fr.Flags)
		if err != nil || n != fr.Size {
			t.Fatalf("re-Encode = %d, %v; want %d", n, err, fr.Size)
		}
		if !bytes.Equal(buf[:fr.Length], frame) {
			t.Fatalf("re-Encode:\n got % x\nwant % x", buf[:fr.Length], frame)
		}
		if !bytes.Equal(buf[fr.Length:], make([]byte, fr.Size-fr.Length)) {
			t.Fatal("re-Encode left alignment padding dirty")
		}
		// So does sealing the payload in place.
		sealed := bytes.Clone(frame)
		clear(sealed[OffType:hl])
		l, err := Seal(sealed, fr.Flags)
		if err != nil || int(l) != fr.Length || !bytes.Equal(sealed, frame) {
			t.Fatalf("Seal = %d, %v, % x; want %d, % x", l, err, sealed, fr.Length, frame)
		}
	case TypePadding:
		if fr.Flags != 0 || fr.Payload != nil || fr.Length%Align != 0 || fr.Size != fr.Length {
			t.Fatalf("padding frame %+v", fr)
		}
		gap := bytes.Clone(src[off : off+fr.Size])
		if err := EncodePadding(gap); err != nil || !bytes.Equal(gap, src[off:off+fr.Size]) {
			t.Fatalf("EncodePadding = %v, % x; want % x", err, gap, src[off:off+fr.Size])
		}
	default:
		t.Fatalf("accepted type %v", fr.Type)
	}

	// The frame decodes the same with src cut right after it, and not at all
	// with one byte less.
	again, err := Decode(src[:off+fr.Size], off, maxLength)
	if err != nil || again.Type != fr.Type || again.Flags != fr.Flags ||
		again.Length != fr.Length || again.Size != fr.Size || !bytes.Equal(again.Payload, fr.Payload) {
		t.Fatalf("Decode at the tail = %+v, %v; want %+v", again, err, fr)
	}
	if _, err := Decode(src[:off+fr.Size-1], off, maxLength); !errors.Is(err, ErrTruncated) {
		t.Fatalf("Decode one byte short: %v; want ErrTruncated", err)
	}
}

func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte(""), false, uint8(0), byte(0))
	f.Add([]byte("hello"), true, uint8(1), byte(0xff))
	f.Add([]byte("ringwire"), false, uint8(3), byte(0xa5))
	f.Add(testPayload(100), true, uint8(7), byte(1))

	f.Fuzz(func(t *testing.T, payload []byte, checksum bool, slot uint8, fill byte) {
		var fl Flags
		if checksum {
			fl = FlagChecksum
		}
		off := int(slot%32) * Align
		size := FrameSize(len(payload), fl)
		length := HeaderLen(fl) + len(payload)
		buf := bytes.Repeat([]byte{fill}, off+size+Align)

		n, err := Encode(buf[off:], payload, fl)
		if err != nil || n != size {
			t.Fatalf("Encode = %d, %v; want %d", n, err, size)
		}
		fr, err := Decode(buf, off, length)
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		if fr.Type != TypeData || fr.Flags != fl || fr.Length != length || fr.Size != size || !bytes.Equal(fr.Payload, payload) {
			t.Fatalf("Decode = %+v", fr)
		}
		checkFrame(t, buf, off, length, fr)
		if _, err := Decode(buf, off, length-1); !errors.Is(err, ErrBadLength) {
			t.Fatalf("Decode with maxLength %d: %v; want ErrBadLength", length-1, err)
		}
	})
}
