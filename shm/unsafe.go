package shm

// This file holds every use of package unsafe in shm: typed views over
// shared bytes.

import (
	"fmt"
	"reflect"
	"unsafe"
)

// View returns n elements of type T laid over buf[off:], the counterpart of
// a NumPy array over SharedMemory.buf. It checks, and returns an error
// rather than a bad slice, that
//
//   - T is plain fixed-size data: booleans, numbers, and arrays and structs
//     of them, possibly from sync/atomic (ErrNotPlain);
//   - the n elements lie inside buf (ErrOutOfBounds);
//   - buf[off] is aligned for T (ErrMisaligned).
//
// Never store Go pointers, strings, slices, maps, interfaces, channels or
// functions in shared memory: another process cannot follow them and the
// garbage collector cannot see them. That is why View refuses such types.
//
// The view aliases buf: it is valid while buf is (for a Segment, until
// Close), and another process may change it at any time. The layout of T
// is Go's: for a cross-language contract, prefer fixed-width fields in an
// explicit order and padding, and test their offsets.
func View[T any](buf []byte, off, n int) ([]T, error) {
	t := reflect.TypeFor[T]()
	if err := plain(t); err != nil {
		return nil, err
	}
	size := int(t.Size())
	if off < 0 || n < 0 || off > len(buf) || (size > 0 && n > (len(buf)-off)/size) {
		return nil, fmt.Errorf("shm: view of %d %v at %d in %d bytes: %w", n, t, off, len(buf), ErrOutOfBounds)
	}
	if n == 0 {
		return []T{}, nil
	}
	p := unsafe.Pointer(unsafe.SliceData(buf[off:]))
	if uintptr(p)%uintptr(t.Align()) != 0 {
		return nil, fmt.Errorf("shm: view of %v at %d: address %#x not %d-aligned: %w", t, off, uintptr(p), t.Align(), ErrMisaligned)
	}
	return unsafe.Slice((*T)(p), n), nil
}

// Ptr returns a pointer to the T at buf[off], with View's checks. It is how
// the ring reaches its atomic cursors: Ptr[atomic.Uint64](buf, off).
func Ptr[T any](buf []byte, off int) (*T, error) {
	v, err := View[T](buf, off, 1)
	if err != nil {
		return nil, err
	}
	return &v[0], nil
}

// plain reports whether t holds no pointers of any kind.
func plain(t reflect.Type) error {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return nil
	case reflect.Array:
		return plain(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if err := plain(t.Field(i).Type); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("shm: %v holds a %v: %w", t, t.Kind(), ErrNotPlain)
}
