// Package shm creates, attaches to and removes named shared-memory
// segments: the files that POSIX shm_open(3) puts in /dev/shm.
//
// A segment created here by the name "orders" is /dev/shm/orders, the same
// object that C's shm_open("/orders", ...) and Python's
// multiprocessing.shared_memory.SharedMemory(name="orders") use, so a Go
// process and a C or Python process can share it.
//
// # Lifecycle and ownership
//
// The rules, and the reason for each:
//
//   - Create makes a new segment and fails if the name exists (O_EXCL). The
//     process that created a segment is its owner.
//   - Open attaches to an existing segment. Attaching never changes the
//     segment's contents or its name.
//   - Close unmaps the segment and releases the descriptor. It never removes
//     the name, whoever calls it.
//   - A process that exits, cleanly or by a signal, leaves every segment in
//     place: there is no finalizer, exit hook or resource tracker here.
//   - A segment outlives every process that used it, until someone calls
//     Unlink. Unlink is a deliberate act of the owner (or of an operator's
//     cleanup tool that has proven the owner dead), never a side effect.
//
// Python's multiprocessing.shared_memory registered every segment a process
// merely attached to with a resource tracker that unlinked it when that
// process exited, destroying segments other processes were still using
// (cpython gh-82300). The rules above exist so that this can never happen
// here: no code path in this package removes a name except Unlink.
//
// # Reserved pages
//
// Create reserves every page of the segment (fallocate) before it returns.
// On a full /dev/shm, or a full directory given with Dir, Create fails with
// an error wrapping syscall.ENOSPC and leaves no file behind. Without the
// reservation, tmpfs would accept the size and kill the process with SIGBUS
// at the first write to a page it cannot back.
//
// # Names
//
// Names follow shm_open's rules: not empty, no '/' inside, shorter than 255
// bytes, not "." or "..". A single leading '/' is accepted and dropped, since
// C and Python users write "/name". An empty name given to Create makes a
// fresh unique name, as SharedMemory(create=True) does.
//
// # Shared memory is untrusted input
//
// Another process may write anything into a segment, or shrink the file
// after it was mapped. Open checks the file's type and size; code that reads
// a segment must validate every length and offset it finds there. View and
// Ptr check bounds and alignment before handing out typed access.
//
// Never store Go pointers, strings, slices, maps, interfaces, channels or
// functions in shared memory: another process cannot follow them, and the
// garbage collector does not see them. View and Ptr refuse such types.
//
// # Locks
//
// TryLock and Locked place advisory byte-range locks on the segment's file.
// On Linux they are open-file-description (OFD) locks: the kernel drops them
// when the holder closes its lock or dies, however it dies, so a held lock
// proves that its holder is alive. Higher layers use them to claim roles and
// to tell live peers from dead ones.
//
// # Other systems
//
// On systems other than Linux the package builds and works over ordinary
// files in os.TempDir() (override with Dir); pages are reserved by writing
// zeros, and locks are classic POSIX record locks, which a process loses
// when it closes any descriptor of the file.
package shm
