package codec

import (
	"testing"
)

var benchSizes = []struct {
	name string
	n    int
}{
	{"8B", 8},
	{"64B", 64},
	{"1KiB", 1 << 10},
	{"64KiB", 64 << 10},
}

var benchFlags = []struct {
	name string
	f    Flags
}{
	{"plain", 0},
	{"checksum", FlagChecksum},
}

func BenchmarkEncode(b *testing.B) {
	for _, bf := range benchFlags {
		for _, bb := range benchSizes {
			payload := testPayload(bb.n)
			dst := make([]byte, FrameSize(bb.n, bf.f))
			b.Run(bf.name+"/"+bb.name, func(b *testing.B) {
				b.SetBytes(int64(bb.n))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := Encode(dst, payload, bf.f); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkSeal(b *testing.B) {
	for _, bf := range benchFlags {
		for _, bb := range benchSizes {
			frame := make([]byte, HeaderLen(bf.f)+bb.n)
			b.Run(bf.name+"/"+bb.name, func(b *testing.B) {
				b.SetBytes(int64(bb.n))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := Seal(frame, bf.f); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, bf := range benchFlags {
		for _, bb := range benchSizes {
			src := make([]byte, FrameSize(bb.n, bf.f))
			if _, err := Encode(src, testPayload(bb.n), bf.f); err != nil {
				b.Fatal(err)
			}
			b.Run(bf.name+"/"+bb.name, func(b *testing.B) {
				b.SetBytes(int64(bb.n))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := Decode(src, 0, MaxLength); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
