//go:build 386 || amd64 || amd64p32 || arm || arm64 || loong64 || mips64le || mips64p32le || mipsle || ppc64le || riscv || riscv64 || wasm

package ring

// The layout is little-endian. On little-endian machines the shared words
// are used as they are; these compile to nothing.

func le32(v uint32) uint32 { return v }
func le64(v uint64) uint64 { return v }
