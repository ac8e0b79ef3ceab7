//go:build armbe || arm64be || m68k || mips || mips64 || mips64p32 || ppc || ppc64 || s390 || s390x || shbe || sparc || sparc64

package ring

import "math/bits"

// The layout is little-endian. On big-endian machines every atomic word
// read from or written to the segment is byte-swapped, so that the bytes
// in memory are the same on every GOARCH.

func le32(v uint32) uint32 { return bits.ReverseBytes32(v) }
func le64(v uint64) uint64 { return bits.ReverseBytes64(v) }
