package codec

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"testing"
)

// pythonPeer is an independent implementation of docs/FRAME.md, XXH64
// included, written from the document alone in Python's standard library.
// It reads a JSON request on stdin and answers on stdout:
//
//	in:  {"encode": [[flags, payload_hex], ...], "decode": [[src_hex, off, max_length], ...]}
//	out: {"encoded": [frame_hex, ...],
//	      "decoded": [["ok", type, flags, length, size, payload_hex] or ["err", check], ...]}
//
// where check is the row of the FRAME.md validation table that failed.
const pythonPeer = `
import json, struct, sys

M = (1 << 64) - 1
P1, P2, P3, P4, P5 = (11400714785074694791, 14029467366897019727,
    1609587929392839161, 9650029242287828579, 2870177450012600261)

def rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M

def rnd(acc, lane):
    return (rotl((acc + lane * P2) & M, 31) * P1) & M

def merge(h, v):
    return (((h ^ rnd(0, v)) * P1) + P4) & M

def xxh64(b, seed=0):
    n, i = len(b), 0
    if n >= 32:
        v = [(seed + P1 + P2) & M, (seed + P2) & M, seed, (seed - P1) & M]
        while i + 32 <= n:
            for j in range(4):
                v[j] = rnd(v[j], int.from_bytes(b[i + 8*j:i + 8*j + 8], "little"))
            i += 32
        h = (rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18)) & M
        for x in v:
            h = merge(h, x)
    else:
        h = (seed + P5) & M
    h = (h + n) & M
    while i + 8 <= n:
        h ^= rnd(0, int.from_bytes(b[i:i + 8], "little"))
        h = (rotl(h, 27) * P1 + P4) & M
        i += 8
    if i + 4 <= n:
        h ^= (int.from_bytes(b[i:i + 4], "little") * P1) & M
        h = (rotl(h, 23) * P2 + P3) & M
        i += 4
    while i < n:
        h ^= (b[i] * P5) & M
        h = (rotl(h, 11) * P1) & M
        i += 1
    h ^= h >> 33
    h = (h * P2) & M
    h ^= h >> 29
    h = (h * P3) & M
    h ^= h >> 32
    return h

def align8(n):
    return (n + 7) & ~7

def encode(flags, payload):
    hl = 16 if flags & 1 else 8
    length = hl + len(payload)
    out = struct.pack("<iHH", length, 1, flags)
    if flags & 1:
        out += struct.pack("<Q", xxh64(payload))
    out += payload
    return out + bytes(align8(length) - length)

def decode(src, off, max_length):
    if off < 0 or off > len(src) or off % 8:
        return ["err", 1]
    b = src[off:]
    if len(b) < 8:
        return ["err", 2]
    length, typ, flags = struct.unpack_from("<iHH", b)
    if length <= 0:
        return ["err", 3]
    if typ not in (1, 2):
        return ["err", 4]
    if (typ == 1 and flags & 0xFFFE) or (typ == 2 and flags):
        return ["err", 5]
    hl = 16 if flags & 1 else 8
    if len(b) < hl:
        return ["err", 6]
    if length < hl or length > max_length or (typ == 2 and length % 8):
        return ["err", 7]
    if align8(length) > len(b):
        return ["err", 8]
    if typ == 2:
        return ["ok", typ, flags, length, length, ""]
    payload = b[hl:length]
    if flags & 1 and xxh64(payload) != struct.unpack_from("<Q", b, 8)[0]:
        return ["err", 9]
    return ["ok", typ, flags, length, align8(length), payload.hex()]

req = json.load(sys.stdin)
json.dump({
    "encoded": [encode(f, bytes.fromhex(p)).hex() for f, p in req["encode"]],
    "decoded": [decode(bytes.fromhex(s), o, m) for s, o, m in req["decode"]],
}, sys.stdout)
`

// checkSentinel maps a row of the FRAME.md validation table to the error
// Decode returns for it.
var checkSentinel = map[int]error{
	1: ErrMisaligned,
	2: ErrTruncated,
	3: ErrBadLength,
	4: ErrBadType,
	5: ErrBadFlags,
	6: ErrTruncated,
	7: ErrBadLength,
	8: ErrTruncated,
	9: ErrChecksum,
}

type decodeCase struct {
	src       []byte
	off       int
	maxLength int
}

func (c decodeCase) MarshalJSON() ([]byte, error) {
	return json.Marshal([]any{hex.EncodeToString(c.src), c.off, c.maxLength})
}

// TestPythonPeer checks docs/FRAME.md against an independent implementation:
// Python must encode every payload to the bytes Encode writes, and must
// accept, reject and report exactly what Decode does for a corpus of valid
// frames, the documented reject vectors and seeded random corruptions.
func TestPythonPeer(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("skipping: python3 is not installed, so the Python peer is not tested")
	}

	type encodeCase struct {
		flags   Flags
		payload []byte
	}
	var encodes []encodeCase
	for _, f := range testFlags {
		for _, n := range []int{0, 1, 3, 4, 5, 7, 8, 9, 12, 31, 32, 33, 63, 64, 65, 100, 1000} {
			encodes = append(encodes, encodeCase{f, testPayload(n)})
		}
		for _, g := range goldenFrames {
			encodes = append(encodes, encodeCase{f, []byte(g.payload)})
		}
	}

	var decodes []decodeCase
	for _, e := range encodes {
		b := make([]byte, FrameSize(len(e.payload), e.flags))
		if _, err := Encode(b, e.payload, e.flags); err != nil {
			t.Fatal(err)
		}
		decodes = append(decodes, decodeCase{b, 0, MaxLength})
	}
	for _, v := range rejectVectors {
		decodes = append(decodes, decodeCase{unhex(t, v.hex), 0, 1024})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		e := encodes[rng.IntN(len(encodes))]
		b := make([]byte, FrameSize(len(e.payload), e.flags)+8*rng.IntN(3))
		if _, err := Encode(b, e.payload, e.flags); err != nil {
			t.Fatal(err)
		}
		if rng.IntN(8) == 0 {
			if err := EncodePadding(b); err != nil {
				t.Fatal(err)
			}
		}
		for range rng.IntN(3) {
			b[rng.IntN(len(b))] ^= byte(1) << rng.IntN(8)
		}
		if rng.IntN(4) == 0 {
			b[rng.IntN(min(len(b), 8))] = byte(rng.Uint32())
		}
		if rng.IntN(4) == 0 {
			b = b[:rng.IntN(len(b)+1)]
		}
		off := 0
		if rng.IntN(8) == 0 {
			off = rng.IntN(24) - 8
		}
		maxLength := []int{MaxLength, 1024, 16, 8, 0}[rng.IntN(5)]
		decodes = append(decodes, decodeCase{b, off, maxLength})
	}

	req := map[string]any{"decode": decodes}
	var encReq [][2]any
	for _, e := range encodes {
		encReq = append(encReq, [2]any{int(e.flags), hex.EncodeToString(e.payload)})
	}
	req["encode"] = encReq
	in, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", pythonPeer)
	cmd.Stdin = bytes.NewReader(in)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	var resp struct {
		Encoded []string
		Decoded [][]any
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("python3 answered %q: %v", out, err)
	}
	if len(resp.Encoded) != len(encodes) || len(resp.Decoded) != len(decodes) {
		t.Fatalf("python3 answered %d encodings and %d decodings; want %d and %d",
			len(resp.Encoded), len(resp.Decoded), len(encodes), len(decodes))
	}

	for i, e := range encodes {
		want := make([]byte, FrameSize(len(e.payload), e.flags))
		if _, err := Encode(want, e.payload, e.flags); err != nil {
			t.Fatal(err)
		}
		if got := resp.Encoded[i]; got != hex.EncodeToString(want) {
			t.Errorf("flags=%v payload=%x: Python encodes\n%s; Go\n%x", e.flags, e.payload, got, want)
		}
	}

	accepted, rejected := 0, make(map[int]int)
	for i, c := range decodes {
		fr, err := Decode(c.src, c.off, c.maxLength)
		py := resp.Decoded[i]
		switch {
		case py[0] == "ok" && err == nil:
			accepted++
			got := []any{float64(fr.Type), float64(fr.Flags), float64(fr.Length), float64(fr.Size), hex.EncodeToString(fr.Payload)}
			for j, v := range got {
				if py[j+1] != v {
					t.Errorf("Decode(%x, %d, %d) = %+v; Python %v", c.src, c.off, c.maxLength, fr, py)
					break
				}
			}
		case py[0] == "err" && err != nil:
			check := int(py[1].(float64))
			rejected[check]++
			if want := checkSentinel[check]; !errors.Is(err, want) {
				t.Errorf("Decode(%x, %d, %d): Go %v; Python fails check %d (%v)", c.src, c.off, c.maxLength, err, check, want)
			}
		default:
			t.Errorf("Decode(%x, %d, %d): Go %+v, %v; Python %v", c.src, c.off, c.maxLength, fr, err, py)
		}
	}
	t.Logf("%d encodings agree; %d decodings agree: %d accepted, rejected by check: %v",
		len(encodes), len(decodes), accepted, rejected)
}
