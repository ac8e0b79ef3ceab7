package codec

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
)

// TestLayout pins every constant of the wire format. Changing any of these
// breaks every peer: update docs/FRAME.md and the peers first.
func TestLayout(t *testing.T) {
	for _, tt := range []struct {
		name      string
		got, want int
	}{
		{"Align", Align, 8},
		{"HeaderSize", HeaderSize, 8},
		{"ChecksumSize", ChecksumSize, 8},
		{"OffLength", OffLength, 0},
		{"OffType", OffType, 4},
		{"OffFlags", OffFlags, 6},
		{"OffChecksum", OffChecksum, 8},
		{"MaxLength", MaxLength, 1<<31 - 1},
		{"TypeData", int(TypeData), 1},
		{"TypePadding", int(TypePadding), 2},
		{"FlagChecksum", int(FlagChecksum), 1},
		{"FlagsReserved", int(FlagsReserved), 0xfffe},
		{"HeaderLen(0)", HeaderLen(0), 8},
		{"HeaderLen(FlagChecksum)", HeaderLen(FlagChecksum), 16},
		// The fields are contiguous and in this order.
		{"OffType-OffLength", OffType - OffLength, 4},
		{"OffFlags-OffType", OffFlags - OffType, 2},
		{"HeaderSize-OffFlags", HeaderSize - OffFlags, 2},
		{"OffChecksum-HeaderSize", OffChecksum - HeaderSize, 0},
		// Payloads start aligned.
		{"HeaderLen(0)%Align", HeaderLen(0) % Align, 0},
		{"HeaderLen(FlagChecksum)%Align", HeaderLen(FlagChecksum) % Align, 0},
		// The length word can be accessed atomically.
		{"OffLength%4", OffLength % 4, 0},
	} {
		if tt.got != tt.want {
			t.Errorf("%s = %d; want %d", tt.name, tt.got, tt.want)
		}
	}
}

// goldenFrames are byte-exact frames. docs/FRAME.md repeats them as test
// vectors for other languages; keep the two in sync.
var goldenFrames = []struct {
	name    string
	payload string
	flags   Flags
	hex     string
}{
	{"empty", "", 0, "08000000 0100 0000"},
	{"empty/checksum", "", FlagChecksum, "10000000 0100 0100 99e9d85137db46ef"},
	{"hello", "hello", 0, "0d000000 0100 0000 68656c6c6f 000000"},
	{"hello/checksum", "hello", FlagChecksum, "15000000 0100 0100 a36d9f887d82c726 68656c6c6f 000000"},
	{"ringwire", "ringwire", 0, "10000000 0100 0000 72696e6777697265"},
	{"ringwire/checksum", "ringwire", FlagChecksum, "18000000 0100 0100 835d78613083c149 72696e6777697265"},
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGolden(t *testing.T) {
	for _, tt := range goldenFrames {
		t.Run(tt.name, func(t *testing.T) {
			want := unhex(t, tt.hex)
			dst := bytes.Repeat([]byte{0xee}, 64)
			n, err := Encode(dst, []byte(tt.payload), tt.flags)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if !bytes.Equal(dst[:n], want) {
				t.Fatalf("Encode:\n got % x\nwant % x", dst[:n], want)
			}
			fr, err := Decode(want, 0, MaxLength)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if fr.Type != TypeData || fr.Flags != tt.flags || string(fr.Payload) != tt.payload || fr.Size != len(want) {
				t.Fatalf("Decode = %+v", fr)
			}
		})
	}
	t.Run("padding", func(t *testing.T) {
		want := unhex(t, "18000000 0200 0000 eeeeeeeeeeeeeeee eeeeeeeeeeeeeeee")
		dst := bytes.Repeat([]byte{0xee}, 24)
		if err := EncodePadding(dst); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(dst, want) {
			t.Fatalf("EncodePadding:\n got % x\nwant % x", dst, want)
		}
	})
	if got, want := Checksum([]byte("hello")), uint64(0x26c7827d889f6da3); got != want {
		t.Errorf("Checksum(hello) = %#x; want %#x", got, want)
	}
}

func TestAlignUp(t *testing.T) {
	for _, tt := range []struct{ n, want int64 }{
		{0, 0}, {1, 8}, {7, 8}, {8, 8}, {9, 16}, {15, 16}, {16, 16}, {17, 24},
		{MaxLength - 7, MaxLength - 7},
		{MaxLength, MaxLength + 1}, // the int32 length word's largest frame
	} {
		if tt.want > math.MaxInt {
			continue // 32-bit: documented to overflow
		}
		if got := AlignUp(int(tt.n)); int64(got) != tt.want {
			t.Errorf("AlignUp(%d) = %d; want %d", tt.n, got, tt.want)
		}
	}
}

func TestFrameSize(t *testing.T) {
	for _, tt := range []struct {
		payload int
		f       Flags
		want    int
	}{
		{0, 0, 8}, {1, 0, 16}, {8, 0, 16}, {9, 0, 24},
		{0, FlagChecksum, 16}, {1, FlagChecksum, 24}, {8, FlagChecksum, 24}, {9, FlagChecksum, 32},
		{4096, 0, 4104}, {4096, FlagChecksum, 4112},
	} {
		if got := FrameSize(tt.payload, tt.f); got != tt.want {
			t.Errorf("FrameSize(%d, %v) = %d; want %d", tt.payload, tt.f, got, tt.want)
		}
	}
}

func TestFitAligned(t *testing.T) {
	for _, tt := range []struct {
		n, room int
		size    int
		ok      bool
	}{
		{0, 0, 0, true},
		{8, 8, 8, true},
		{9, 16, 16, true},
		{9, 15, 0, false},
		{9, 9, 0, false},
		{9, 8, 0, false},
		{16, 8, 0, false},
		{MaxLength, MaxLength, 0, false}, // AlignUp would overflow on 32-bit
		{MaxLength - 7, MaxLength, MaxLength - 7, true},
	} {
		size, ok := fitAligned(tt.n, tt.room)
		if size != tt.size || ok != tt.ok {
			t.Errorf("fitAligned(%d, %d) = %d, %v; want %d, %v", tt.n, tt.room, size, ok, tt.size, tt.ok)
		}
	}
}

func TestString(t *testing.T) {
	for _, tt := range []struct {
		got, want string
	}{
		{TypeData.String(), "data"},
		{TypePadding.String(), "padding"},
		{Type(0).String(), "Type(0)"},
		{Type(65535).String(), "Type(65535)"},
		{Flags(0).String(), "0"},
		{FlagChecksum.String(), "checksum"},
		{Flags(0x8000).String(), "0x8000"},
		{Flags(0x8003).String(), "checksum|0x8002"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q; want %q", tt.got, tt.want)
		}
	}
}

var testSizes = []int{0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 63, 64, 65, 255, 256, 1000, 4095, 4096, 4097, 65536}

var testFlags = []Flags{0, FlagChecksum}

func testPayload(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + 1)
	}
	return p
}

func TestRoundTrip(t *testing.T) {
	for _, f := range testFlags {
		for _, size := range testSizes {
			for _, off := range []int{0, 8, 24} {
				t.Run(fmt.Sprintf("flags=%v/size=%d/off=%d", f, size, off), func(t *testing.T) {
					testRoundTrip(t, testPayload(size), f, off)
				})
			}
		}
	}
}

func testRoundTrip(t *testing.T, payload []byte, f Flags, off int) {
	t.Helper()
	frameSize := FrameSize(len(payload), f)
	const slack = 32
	buf := bytes.Repeat([]byte{0xa5}, off+frameSize+slack)

	n, err := Encode(buf[off:], payload, f)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	if n != frameSize {
		t.Fatalf("Encode used %d bytes; want FrameSize %d", n, frameSize)
	}
	length := HeaderLen(f) + len(payload)
	if got := binary.LittleEndian.Uint32(buf[off+OffLength:]); got != uint32(length) {
		t.Fatalf("length word = %d; want %d", got, length)
	}
	for i, c := range buf[off+length : off+n] {
		if c != 0 {
			t.Fatalf("alignment padding byte %d = %#x; want 0", i, c)
		}
	}
	for i, c := range buf[:off] {
		if c != 0xa5 {
			t.Fatalf("Encode wrote byte %d before dst", i)
		}
	}
	for i, c := range buf[off+n:] {
		if c != 0xa5 {
			t.Fatalf("Encode wrote byte %d past its frame", off+n+i)
		}
	}

	fr, err := Decode(buf, off, length)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	want := Frame{Type: TypeData, Flags: f, Length: length, Size: frameSize}
	if fr.Type != want.Type || fr.Flags != want.Flags || fr.Length != want.Length || fr.Size != want.Size {
		t.Fatalf("Decode = %+v; want %+v", fr, want)
	}
	if fr.Payload == nil || !bytes.Equal(fr.Payload, payload) {
		t.Fatalf("Decode payload = %x; want %x", fr.Payload, payload)
	}
	if cap(fr.Payload) != len(fr.Payload) {
		t.Fatalf("cap(Payload) = %d; want len %d", cap(fr.Payload), len(fr.Payload))
	}
	if len(payload) > 0 && &fr.Payload[0] != &buf[off+HeaderLen(f)] {
		t.Fatal("Payload does not alias src")
	}

	// The same frame through the ring's path: payload in place, Seal, publish.
	ring := bytes.Repeat([]byte{0xa5}, length)
	binary.LittleEndian.PutUint32(ring[OffLength:], 0xdeadbeef)
	copy(ring[HeaderLen(f):], payload)
	l, err := Seal(ring, f)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if l != int32(length) {
		t.Fatalf("Seal = %d; want %d", l, length)
	}
	if got := binary.LittleEndian.Uint32(ring[OffLength:]); got != 0xdeadbeef {
		t.Fatalf("Seal changed the length word to %#x", got)
	}
	binary.LittleEndian.PutUint32(ring[OffLength:], uint32(l))
	if !bytes.Equal(ring, buf[off:off+length]) {
		t.Fatalf("Seal then publish:\n got % x\nwant % x", ring, buf[off:off+length])
	}
}

// TestEncodeZeroesPadding checks that every alignment padding byte is zeroed
// over a dirty buffer, and nothing past the frame is written.
func TestEncodeZeroesPadding(t *testing.T) {
	for _, f := range testFlags {
		for size := 0; size <= 24; size++ {
			dst := bytes.Repeat([]byte{0xff}, 64)
			n, err := Encode(dst, testPayload(size), f)
			if err != nil {
				t.Fatal(err)
			}
			length := HeaderLen(f) + size
			if !bytes.Equal(dst[length:n], make([]byte, n-length)) {
				t.Errorf("flags=%v size=%d: padding = % x; want zeros", f, size, dst[length:n])
			}
			if !bytes.Equal(dst[n:], bytes.Repeat([]byte{0xff}, 64-n)) {
				t.Errorf("flags=%v size=%d: Encode wrote past its frame", f, size)
			}
		}
	}
}

func TestEncodeOverlap(t *testing.T) {
	// Payload already in place, as when a caller builds a frame in dst.
	for _, f := range testFlags {
		payload := []byte("in place")
		dst := make([]byte, 64)
		hl := HeaderLen(f)
		copy(dst[hl:], payload)
		n, err := Encode(dst, dst[hl:hl+len(payload)], f)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]byte, 64)
		if _, err := Encode(want, payload, f); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(dst[:n], want[:n]) {
			t.Errorf("flags=%v: in-place Encode = % x; want % x", f, dst[:n], want[:n])
		}
	}
}

func TestSealLeavesLengthAndTail(t *testing.T) {
	for _, f := range testFlags {
		for _, lw := range []uint32{0, 0xffffffff, 0x80000000, 12345} {
			buf := bytes.Repeat([]byte{0x5a}, 64)
			binary.LittleEndian.PutUint32(buf[OffLength:], lw)
			frame := buf[:HeaderLen(f)+5] // unaligned length: the tail is padding
			if _, err := Seal(frame, f); err != nil {
				t.Fatal(err)
			}
			if got := binary.LittleEndian.Uint32(buf[OffLength:]); got != lw {
				t.Errorf("flags=%v: Seal changed length word %#x to %#x", f, lw, got)
			}
			if !bytes.Equal(buf[len(frame):], bytes.Repeat([]byte{0x5a}, 64-len(frame))) {
				t.Errorf("flags=%v: Seal wrote past the frame", f)
			}
		}
	}
}

func TestPadding(t *testing.T) {
	for _, n := range []int{8, 16, 24, 64, 4096} {
		gap := bytes.Repeat([]byte{0x77}, n)
		l, err := SealPadding(gap)
		if err != nil {
			t.Fatalf("SealPadding(%d): %v", n, err)
		}
		if l != int32(n) {
			t.Fatalf("SealPadding(%d) = %d", n, l)
		}
		if !bytes.Equal(gap[:OffType], []byte{0x77, 0x77, 0x77, 0x77}) {
			t.Fatalf("SealPadding(%d) touched the length word", n)
		}
		if !bytes.Equal(gap[HeaderSize:], bytes.Repeat([]byte{0x77}, n-HeaderSize)) {
			t.Fatalf("SealPadding(%d) touched the body", n)
		}
		if err := EncodePadding(gap); err != nil {
			t.Fatalf("EncodePadding(%d): %v", n, err)
		}
		if !bytes.Equal(gap[HeaderSize:], bytes.Repeat([]byte{0x77}, n-HeaderSize)) {
			t.Fatalf("EncodePadding(%d) touched the body", n)
		}
		fr, err := Decode(gap, 0, n)
		if err != nil {
			t.Fatalf("Decode padding %d: %v", n, err)
		}
		if want := (Frame{Type: TypePadding, Length: n, Size: n}); fr.Type != want.Type ||
			fr.Flags != 0 || fr.Length != n || fr.Size != n || fr.Payload != nil {
			t.Fatalf("Decode padding = %+v; want %+v", fr, want)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	for _, tt := range []struct {
		name    string
		call    func() error
		want    error
		malform bool
	}{
		{"Encode/short/header", func() error { _, err := Encode(make([]byte, 7), nil, 0); return err }, ErrShortBuffer, false},
		{"Encode/short/checksum", func() error { _, err := Encode(make([]byte, 15), nil, FlagChecksum); return err }, ErrShortBuffer, false},
		{"Encode/short/alignment", func() error { _, err := Encode(make([]byte, 15), []byte{1}, 0); return err }, ErrShortBuffer, false},
		{"Encode/short/nil", func() error { _, err := Encode(nil, nil, 0); return err }, ErrShortBuffer, false},
		{"Encode/reserved", func() error { _, err := Encode(make([]byte, 64), nil, 2); return err }, ErrBadFlags, true},
		{"Encode/reserved/high", func() error { _, err := Encode(make([]byte, 64), nil, 0x8001); return err }, ErrBadFlags, true},
		{"Seal/short", func() error { _, err := Seal(make([]byte, 7), 0); return err }, ErrShortBuffer, false},
		{"Seal/short/checksum", func() error { _, err := Seal(make([]byte, 15), FlagChecksum); return err }, ErrShortBuffer, false},
		{"Seal/reserved", func() error { _, err := Seal(make([]byte, 64), 4); return err }, ErrBadFlags, true},
		{"SealPadding/empty", func() error { _, err := SealPadding(nil); return err }, ErrShortBuffer, false},
		{"SealPadding/7", func() error { _, err := SealPadding(make([]byte, 7)); return err }, ErrShortBuffer, false},
		{"SealPadding/12", func() error { _, err := SealPadding(make([]byte, 12)); return err }, ErrBadLength, true},
		{"EncodePadding/4", func() error { return EncodePadding(make([]byte, 4)) }, ErrShortBuffer, false},
		{"EncodePadding/20", func() error { return EncodePadding(make([]byte, 20)) }, ErrBadLength, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v; want %v", err, tt.want)
			}
			if got := errors.Is(err, ErrMalformed); got != tt.malform {
				t.Fatalf("errors.Is(%v, ErrMalformed) = %v; want %v", err, got, tt.malform)
			}
		})
	}
}

// TestEncodeTooLarge needs a buffer larger than the length word can describe.
// Untouched, it costs address space, not memory.
func TestEncodeTooLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 2 GiB of address space")
	}
	if strconv.IntSize < 64 {
		t.Skip("needs a 64-bit address space")
	}
	size := int64(MaxLength) + 1 // a variable, so that this compiles on 32-bit
	big := make([]byte, size)
	for _, tt := range []struct {
		name string
		call func() error
		want error
	}{
		{"Encode", func() error { _, err := Encode(nil, big[:MaxLength-HeaderSize+1], 0); return err }, ErrTooLarge},
		{"Encode/checksum", func() error {
			_, err := Encode(nil, big[:MaxLength-HeaderSize-ChecksumSize+1], FlagChecksum)
			return err
		}, ErrTooLarge},
		// One byte less fits the length word; then dst is what is too short.
		{"Encode/max", func() error { _, err := Encode(nil, big[:MaxLength-HeaderSize], 0); return err }, ErrShortBuffer},
		{"Encode/max/checksum", func() error { _, err := Encode(nil, big[:MaxLength-HeaderSize-ChecksumSize], FlagChecksum); return err }, ErrShortBuffer},
		{"Seal", func() error { _, err := Seal(big, 0); return err }, ErrTooLarge},
		{"SealPadding", func() error { _, err := SealPadding(big); return err }, ErrTooLarge},
		{"EncodePadding", func() error { return EncodePadding(big) }, ErrTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v; want %v", err, tt.want)
			}
		})
	}
}

// header builds a frame header: the length word, type and flags.
func header(length int32, typ Type, f Flags) []byte {
	b := make([]byte, HeaderSize)
	binary.LittleEndian.PutUint32(b[OffLength:], uint32(length))
	binary.LittleEndian.PutUint16(b[OffType:], uint16(typ))
	binary.LittleEndian.PutUint16(b[OffFlags:], uint16(f))
	return b
}

// encoded returns a valid data frame carrying payload, padded to its Size.
func encoded(payload string, f Flags) []byte {
	b := make([]byte, FrameSize(len(payload), f))
	if _, err := Encode(b, []byte(payload), f); err != nil {
		panic(err)
	}
	return b
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

var malformedSentinels = []error{ErrMisaligned, ErrTruncated, ErrBadLength, ErrBadType, ErrBadFlags, ErrChecksum}

func TestDecodeMalformed(t *testing.T) {
	valid := encoded("hello", 0)               // 16 bytes, length 13
	validSum := encoded("hello", FlagChecksum) // 24 bytes, length 21
	corrupt := encoded("hello", FlagChecksum)
	corrupt[OffChecksum] ^= 1
	flipped := encoded("hello", FlagChecksum)
	flipped[16] ^= 0x20 // "Hello"

	for _, tt := range []struct {
		name      string
		src       []byte
		off       int
		maxLength int // 0 means MaxLength
		want      error
	}{
		// Offset.
		{"off/negative", valid, -8, 0, ErrMisaligned},
		{"off/negative/unaligned", valid, -1, 0, ErrMisaligned},
		{"off/unaligned", cat(valid, valid), 4, 0, ErrMisaligned},
		{"off/unaligned/1", cat(valid, valid), 1, 0, ErrMisaligned},
		{"off/past-end", valid, 24, 0, ErrMisaligned},
		{"off/past-empty", nil, 8, 0, ErrMisaligned},
		{"off/huge", valid, math.MaxInt &^ 7, 0, ErrMisaligned},

		// Too few bytes for the header.
		{"header/nil", nil, 0, 0, ErrTruncated},
		{"header/empty", []byte{}, 0, 0, ErrTruncated},
		{"header/7", valid[:7], 0, 0, ErrTruncated},
		{"header/at-end", valid, 16, 0, ErrTruncated},
		{"header/4-at-end", cat(valid, valid[:4]), 16, 0, ErrTruncated},
		{"header/checksum/8", validSum[:8], 0, 0, ErrTruncated},
		{"header/checksum/15", validSum[:15], 0, 0, ErrTruncated},

		// The length word.
		{"length/zero", header(0, TypeData, 0), 0, 0, ErrBadLength},
		{"length/zeroed-memory", make([]byte, 64), 0, 0, ErrBadLength},
		{"length/claimed", cat(header(-16, TypeData, 0), make([]byte, 8)), 0, 0, ErrBadLength},
		{"length/min-int32", cat(header(math.MinInt32, TypeData, 0), make([]byte, 8)), 0, 0, ErrBadLength},
		{"length/below-header", cat(header(4, TypeData, 0), make([]byte, 8)), 0, 0, ErrBadLength},
		{"length/7", header(7, TypeData, 0), 0, 0, ErrBadLength},
		{"length/below-checksum-header", cat(header(12, TypeData, FlagChecksum), make([]byte, 8)), 0, 0, ErrBadLength},
		{"length/15/checksum", cat(header(15, TypeData, FlagChecksum), make([]byte, 8)), 0, 0, ErrBadLength},
		{"length/above-max", valid, 0, 12, ErrBadLength},
		{"length/above-max/checksum", validSum, 0, 20, ErrBadLength},
		{"length/max-negative", valid, 0, -1, ErrBadLength},
		{"length/max-int32/above-max", cat(header(math.MaxInt32, TypeData, 0), make([]byte, 8)), 0, 1 << 20, ErrBadLength},
		{"padding/length/12", cat(header(12, TypePadding, 0), make([]byte, 8)), 0, 0, ErrBadLength},
		{"padding/length/4", cat(header(4, TypePadding, 0), make([]byte, 8)), 0, 0, ErrBadLength},
		{"padding/length/9", cat(header(9, TypePadding, 0), make([]byte, 8)), 0, 0, ErrBadLength},
		{"padding/above-max", cat(header(16, TypePadding, 0), make([]byte, 8)), 0, 8, ErrBadLength},

		// The frame runs past src.
		{"body/payload", valid[:12], 0, 0, ErrTruncated},
		{"body/alignment", valid[:13], 0, 0, ErrTruncated},
		{"body/alignment/15", valid[:15], 0, 0, ErrTruncated},
		{"body/checksum", validSum[:20], 0, 0, ErrTruncated},
		{"body/second", cat(valid, valid[:15]), 16, 0, ErrTruncated},
		{"body/max-int32", cat(header(math.MaxInt32, TypeData, 0), make([]byte, 8)), 0, 0, ErrTruncated},
		{"body/max-int32/checksum", cat(header(math.MaxInt32, TypeData, FlagChecksum), make([]byte, 8)), 0, 0, ErrTruncated},
		{"padding/past-end", cat(header(24, TypePadding, 0), make([]byte, 8)), 0, 0, ErrTruncated},

		// Type.
		{"type/0", cat(header(13, 0, 0), make([]byte, 8)), 0, 0, ErrBadType},
		{"type/3", cat(header(13, 3, 0), make([]byte, 8)), 0, 0, ErrBadType},
		{"type/0x100", cat(header(13, 0x100, 0), make([]byte, 8)), 0, 0, ErrBadType},
		{"type/max", cat(header(13, 0xffff, 0), make([]byte, 8)), 0, 0, ErrBadType},

		// Flags.
		{"flags/bit1", cat(header(13, TypeData, 2), make([]byte, 8)), 0, 0, ErrBadFlags},
		{"flags/bit15", cat(header(13, TypeData, 0x8000), make([]byte, 8)), 0, 0, ErrBadFlags},
		{"flags/all", cat(header(24, TypeData, 0xffff), make([]byte, 16)), 0, 0, ErrBadFlags},
		{"flags/padding/checksum", cat(header(16, TypePadding, FlagChecksum), make([]byte, 8)), 0, 0, ErrBadFlags},
		{"flags/padding/reserved", cat(header(16, TypePadding, 4), make([]byte, 8)), 0, 0, ErrBadFlags},

		// Checksum.
		{"checksum/field", corrupt, 0, 0, ErrChecksum},
		{"checksum/payload", flipped, 0, 0, ErrChecksum},
		{"checksum/second", cat(valid, corrupt), 16, 0, ErrChecksum},
		{"checksum/empty-payload", cat(header(16, TypeData, FlagChecksum), make([]byte, 8)), 0, 0, ErrChecksum},
	} {
		t.Run(tt.name, func(t *testing.T) {
			maxLength := tt.maxLength
			if maxLength == 0 {
				maxLength = MaxLength
			}
			fr, err := Decode(tt.src, tt.off, maxLength)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode = %+v, %v; want %v", fr, err, tt.want)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("errors.Is(%v, ErrMalformed) = false", err)
			}
			for _, other := range malformedSentinels {
				if other != tt.want && errors.Is(err, other) {
					t.Fatalf("error %v also matches %v", err, other)
				}
			}
			if errors.Is(err, ErrShortBuffer) || errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v matches an encoding error", err)
			}
			if fr.Type != 0 || fr.Flags != 0 || fr.Length != 0 || fr.Size != 0 || fr.Payload != nil {
				t.Fatalf("Decode returned %+v with its error; want the zero Frame", fr)
			}
			if !strings.HasPrefix(err.Error(), "codec: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
		})
	}
}

// TestDecodeFlippedBits flips every bit of a checksummed frame's payload and
// checksum: each must be caught.
func TestDecodeFlippedBits(t *testing.T) {
	frame := encoded("the quick brown fox", FlagChecksum)
	length := HeaderLen(FlagChecksum) + len("the quick brown fox")
	for i := OffChecksum; i < length; i++ {
		for bit := range 8 {
			frame[i] ^= 1 << bit
			_, err := Decode(frame, 0, MaxLength)
			if !errors.Is(err, ErrChecksum) || !errors.Is(err, ErrMalformed) {
				t.Fatalf("byte %d bit %d flipped: err = %v; want ErrChecksum", i, bit, err)
			}
			frame[i] ^= 1 << bit
		}
	}
	if _, err := Decode(frame, 0, MaxLength); err != nil {
		t.Fatalf("restored frame: %v", err)
	}

	// Without a checksum, nothing can tell.
	plain := encoded("the quick brown fox", 0)
	plain[HeaderSize] ^= 0x20
	fr, err := Decode(plain, 0, MaxLength)
	if err != nil || string(fr.Payload) != "The quick brown fox" {
		t.Fatalf("Decode = %q, %v", fr.Payload, err)
	}
}

// TestDecodeTail decodes a frame that ends at, or is cut short by, the end of
// src, where the bytes past len(src) (still within cap) hold the rest of a
// valid frame: a decoder that looked past len(src) would succeed.
func TestDecodeTail(t *testing.T) {
	for _, f := range testFlags {
		for _, size := range []int{0, 1, 5, 8, 13, 64} {
			const off = 16
			buf := make([]byte, 256)
			n, err := Encode(buf[off:], testPayload(size), f)
			if err != nil {
				t.Fatal(err)
			}
			for end := off; end < off+n; end++ {
				src := buf[:end] // cap(src) == 256
				_, err := Decode(src, off, MaxLength)
				if !errors.Is(err, ErrTruncated) {
					t.Fatalf("flags=%v size=%d end=%d: err = %v; want ErrTruncated", f, size, end, err)
				}
			}
			fr, err := Decode(buf[:off+n], off, MaxLength)
			if err != nil || fr.Size != n || !bytes.Equal(fr.Payload, testPayload(size)) {
				t.Fatalf("flags=%v size=%d at the tail: %+v, %v", f, size, fr, err)
			}
			if cap(fr.Payload) != len(fr.Payload) {
				t.Fatalf("Payload capacity reaches past the frame")
			}
		}
	}
}

// TestDecodeWalk walks a region the way a ring reader does.
func TestDecodeWalk(t *testing.T) {
	region := make([]byte, 256)
	var want []string
	off := 0
	for i, msg := range []string{"a", "", "sixteen bytes!!!", "hello, ring", "x"} {
		f := Flags(i % 2)
		n, err := Encode(region[off:], []byte(msg), f)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, msg)
		off += n
	}
	if err := EncodePadding(region[off:]); err != nil {
		t.Fatal(err)
	}
	var got []string
	for off := 0; off < len(region); {
		fr, err := Decode(region, off, 256)
		if err != nil {
			t.Fatalf("at %d: %v", off, err)
		}
		if fr.Type == TypeData {
			got = append(got, string(fr.Payload))
		}
		off += fr.Size
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("walked %q; want %q", got, want)
	}
}

func TestErrors(t *testing.T) {
	for _, err := range malformedSentinels {
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("errors.Is(%v, ErrMalformed) = false", err)
		}
		if !errors.Is(err, err) {
			t.Errorf("errors.Is(%v, itself) = false", err)
		}
		if errors.Is(ErrMalformed, err) {
			t.Errorf("errors.Is(ErrMalformed, %v) = true", err)
		}
		for _, other := range malformedSentinels {
			if other != err && errors.Is(err, other) {
				t.Errorf("errors.Is(%v, %v) = true", err, other)
			}
		}
		wrapped := fmt.Errorf("ring: %w", err)
		if !errors.Is(wrapped, err) || !errors.Is(wrapped, ErrMalformed) {
			t.Errorf("wrapped %v lost its identity", err)
		}
	}
	for _, err := range []error{ErrShortBuffer, ErrTooLarge} {
		if errors.Is(err, ErrMalformed) {
			t.Errorf("errors.Is(%v, ErrMalformed) = true", err)
		}
	}
}

// TestAllocs checks that the success paths allocate nothing.
func TestAllocs(t *testing.T) {
	for _, f := range testFlags {
		for _, size := range []int{0, 5, 64, 4096} {
			payload := testPayload(size)
			dst := make([]byte, FrameSize(size, f))
			frame := make([]byte, HeaderLen(f)+size)
			for _, tt := range []struct {
				name string
				fn   func()
			}{
				{"Encode", func() {
					if _, err := Encode(dst, payload, f); err != nil {
						t.Fatal(err)
					}
				}},
				{"Seal", func() {
					if _, err := Seal(frame, f); err != nil {
						t.Fatal(err)
					}
				}},
				{"Decode", func() {
					if _, err := Decode(dst, 0, MaxLength); err != nil {
						t.Fatal(err)
					}
				}},
			} {
				if n := testing.AllocsPerRun(100, tt.fn); n != 0 {
					t.Errorf("%s flags=%v size=%d: %v allocs per run; want 0", tt.name, f, size, n)
				}
			}
		}
	}
	gap := make([]byte, 64)
	for _, tt := range []struct {
		name string
		fn   func()
	}{
		{"SealPadding", func() {
			if _, err := SealPadding(gap); err != nil {
				t.Fatal(err)
			}
		}},
		{"EncodePadding", func() {
			if err := EncodePadding(gap); err != nil {
				t.Fatal(err)
			}
		}},
		{"Decode/padding", func() {
			if _, err := Decode(gap, 0, MaxLength); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		if n := testing.AllocsPerRun(100, tt.fn); n != 0 {
			t.Errorf("%s: %v allocs per run; want 0", tt.name, n)
		}
	}
}

// rejectVectors are the frames docs/FRAME.md lists as "must be rejected",
// decoded at offset 0 with maxLength 1024. check is the row of the FRAME.md
// validation table that rejects them.
var rejectVectors = []struct {
	hex   string
	want  error
	check int
}{
	{"00000000 0100 0000 0000000000000000", ErrBadLength, 3},
	{"f0ffffff 0100 0000 0000000000000000", ErrBadLength, 3},
	{"0d000000 0300 0000 68656c6c6f000000", ErrBadType, 4},
	{"0d000000 0100 0280 68656c6c6f000000", ErrBadFlags, 5},
	{"10000000 0200 0100 0000000000000000", ErrBadFlags, 5},
	{"04000000 0100 0000 0000000000000000", ErrBadLength, 7},
	{"0c000000 0200 0000 0000000000000000", ErrBadLength, 7},
	{"15000000 0100 0100 a36d9f887d82c726 48656c6c6f000000", ErrChecksum, 9},
	{"0d000000 0100 0000 68656c6c6f", ErrTruncated, 8},
}

func TestRejectVectors(t *testing.T) {
	for _, tt := range rejectVectors {
		_, err := Decode(unhex(t, tt.hex), 0, 1024)
		if !errors.Is(err, tt.want) || !errors.Is(err, ErrMalformed) {
			t.Errorf("Decode(%s) = %v; want %v", tt.hex, err, tt.want)
		}
	}
}
