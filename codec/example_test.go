package codec_test

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ringwire/ringwire/codec"
)

// Encode a message, then decode it again.
func Example() {
	buf := make([]byte, 64)
	n, err := codec.Encode(buf, []byte("hello"), codec.FlagChecksum)
	if err != nil {
		panic(err)
	}
	fmt.Printf("% x\n", buf[:n])

	fr, err := codec.Decode(buf, 0, codec.MaxLength)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%v frame, flags %v, length %d, size %d: %q\n", fr.Type, fr.Flags, fr.Length, fr.Size, fr.Payload)
	// Output:
	// 15 00 00 00 01 00 01 00 a3 6d 9f 88 7d 82 c7 26 68 65 6c 6c 6f 00 00 00
	// data frame, flags checksum, length 21, size 24: "hello"
}

// A writer in the ring claims space, writes the payload in place, seals the
// frame and publishes its length last. (The ring stores the length word
// atomically; a plain store stands in for it here.)
func ExampleSeal() {
	region := make([]byte, 64)
	msg := []byte("hi")
	f := codec.Flags(0)

	size := codec.FrameSize(len(msg), f)
	frame := region[:codec.HeaderLen(f)+len(msg)]
	binary.LittleEndian.PutUint32(frame[codec.OffLength:], uint32(0xffffffff)) // claimed: -1
	copy(frame[codec.HeaderLen(f):], msg)
	length, err := codec.Seal(frame, f)
	if err != nil {
		panic(err)
	}
	binary.LittleEndian.PutUint32(frame[codec.OffLength:], uint32(length)) // publish

	fmt.Printf("% x\n", region[:size])
	// Output:
	// 0a 00 00 00 01 00 00 00 68 69 00 00 00 00 00 00
}

// A reader walks the frames of a region, skipping padding.
func ExampleDecode() {
	region := make([]byte, 48)
	off := 0
	for _, msg := range []string{"one", "two"} {
		n, err := codec.Encode(region[off:], []byte(msg), 0)
		if err != nil {
			panic(err)
		}
		off += n
	}
	if err := codec.EncodePadding(region[off:]); err != nil { // fill the rest
		panic(err)
	}

	for off := 0; off < len(region); {
		fr, err := codec.Decode(region, off, 1024)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%2d: %-7v size %2d %q\n", off, fr.Type, fr.Size, fr.Payload)
		off += fr.Size
	}
	// Output:
	//  0: data    size 16 "one"
	// 16: data    size 16 "two"
	// 32: padding size 16 ""
}

// Decode errors match both their own sentinel and ErrMalformed.
func ExampleDecode_errors() {
	buf := make([]byte, 32)
	if _, err := codec.Encode(buf, []byte("payload"), codec.FlagChecksum); err != nil {
		panic(err)
	}
	buf[20] ^= 1 // corrupt the payload

	_, err := codec.Decode(buf, 0, 1024)
	fmt.Println(err)
	fmt.Println(errors.Is(err, codec.ErrChecksum), errors.Is(err, codec.ErrMalformed))
	// Output:
	// codec: checksum mismatch: frame at 0: payload hashes to 0x0c15f2736264edc8, header says 0x3d0f453b73222c5c
	// true true
}
