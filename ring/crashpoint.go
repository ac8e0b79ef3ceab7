package ring

// crashPoint names a step of a shared-memory protocol: the instant after
// the step's shared writes and before the next step's. Tests built with
// the ringcrash tag kill a process at each point in turn and check that
// recovery loses nothing committed (see crash_test.go).
type crashPoint uint8

// The crash points, in protocol order.
const (
	// Producer: take a lane.
	cpAttachLocked    crashPoint = iota + 1 // lane lock held, nothing written
	cpAttachRecovered                       // tail recovered, state not yet attached
	// Producer: send one record.
	cpSendPadded    // a wrap's padding committed, the record not yet written
	cpSendCopied    // payload copied, header not sealed
	cpSendZeroed    // header sealed and the next length word zeroed, not committed
	cpSendCommitted // length word stored: the record is the consumer's
	cpSendSignalled // ready bit set and consumer woken as needed
	// Producer: close.
	cpCloseTail  // tail and statistics published, state still attached
	cpCloseState // state closed, lock still held
	// Consumer: take the role.
	cpConsumerLocked // consumer lock held, nothing written
	cpConsumerCooled // lanes asked to signal, not yet re-checked
	// Consumer: receive one record.
	cpRecvRead     // record validated, nothing copied
	cpRecvCopied   // payload copied out, head not yet stored
	cpRecvReleased // head stored, waiting producer not yet woken
	cpDrainTaken   // a batch delivered, heads not yet stored
	// Consumer: close.
	cpConsumerClose // state closed, lock still held
	numCrashPoints
)

var crashPointNames = [numCrashPoints]string{
	cpAttachLocked:    "attach.locked",
	cpAttachRecovered: "attach.recovered",
	cpSendPadded:      "send.padded",
	cpSendCopied:      "send.copied",
	cpSendZeroed:      "send.zeroed",
	cpSendCommitted:   "send.committed",
	cpSendSignalled:   "send.signalled",
	cpCloseTail:       "close.tail",
	cpCloseState:      "close.state",
	cpConsumerLocked:  "consumer.locked",
	cpConsumerCooled:  "consumer.cooled",
	cpRecvRead:        "recv.read",
	cpRecvCopied:      "recv.copied",
	cpRecvReleased:    "recv.released",
	cpDrainTaken:      "drain.taken",
	cpConsumerClose:   "consumer.close",
}

func (p crashPoint) String() string {
	if p > 0 && p < numCrashPoints {
		return crashPointNames[p]
	}
	return "crashPoint(?)"
}
