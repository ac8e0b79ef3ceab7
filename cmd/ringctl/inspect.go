package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/ringwire/ringwire/ring"
	"github.com/ringwire/ringwire/shm"
)

// Kinds of segment.
const (
	kindRing       = "ring"       // a ringwire ring this build reads
	kindForeign    = "foreign"    // not a ringwire ring: never touched
	kindUnreadable = "unreadable" // maybe a ring, but it cannot be read: permission, version, corrupt, not ready
)

// inspectTimeout bounds the wait for a ring still being created: an
// inspection reports "not initialised" rather than waiting for it.
const inspectTimeout = 20 * time.Millisecond

// Entry is one segment as ls and stat report it, and as -json prints it.
type Entry struct {
	Name     string    `json:"name"`
	Kind     string    `json:"kind"`
	Size     int64     `json:"size"`
	UID      uint32    `json:"uid"`
	GID      uint32    `json:"gid"`
	Perm     string    `json:"perm"`
	Modified time.Time `json:"modified"`
	// Problem says, for a foreign or unreadable segment, what it is.
	Problem string `json:"problem,omitempty"`
	// Error is the detail behind Problem.
	Error string     `json:"error,omitempty"`
	Ring  *RingState `json:"ring,omitempty"`
	err   error
}

// RingState is what a ring's header and locks say.
type RingState struct {
	Mode string `json:"mode"`
	// Lanes is the lane count: 1 for SPSC; for MPSC, the most producers
	// that may be attached at once. LanesAttached counts the lanes whose
	// producer is alive.
	Lanes         int `json:"lanes"`
	LanesAttached int `json:"lanes_attached"`
	// Capacity is each lane's data region; the segment holds Lanes of
	// them, plus the control blocks.
	Capacity    int       `json:"capacity"`
	SegmentSize int       `json:"segment_size"`
	MaxMessage  int       `json:"max_message"`
	Checksum    bool      `json:"checksum"`
	Instance    string    `json:"instance"` // the ring's random id, hex
	Created     time.Time `json:"created"`
	AgeSeconds  float64   `json:"age_seconds"`
	// CreatorPID and ConsumerPID are informational: a PID is no proof of
	// life.
	CreatorPID  uint32 `json:"creator_pid"`
	OwnerAlive  bool   `json:"owner_alive"`
	Attached    bool   `json:"attached"`
	Consumer    string `json:"consumer"`
	ConsumerPID uint32 `json:"consumer_pid"`
	// UsedLanes lists every lane a producer ever took (the one lane of an
	// SPSC ring always), in lane order.
	UsedLanes []LaneState `json:"used_lanes"`
	// BytesInFlight sums the lanes' in-flight bytes (see LaneState).
	BytesInFlight uint64 `json:"bytes_in_flight"`
	// MessagesInFlight is Sent-Received. The counters lag the traffic by up
	// to 256 messages on each side, so it is approximate (MessagesApprox)
	// unless the ring is empty.
	MessagesInFlight uint64 `json:"messages_in_flight"`
	MessagesApprox   bool   `json:"messages_in_flight_approx"`
	// FillPercent is BytesInFlight as a share of every lane's capacity;
	// MaxFillPercent the fill of the fullest lane, which is what makes its
	// producer wait.
	FillPercent    float64 `json:"fill_percent"`
	MaxFillPercent float64 `json:"max_fill_percent"`
	Stats          Stats   `json:"stats"`
	// Live lists the live processes' roles; empty when the ring is provably
	// dead, which is what gc removes.
	Live []string `json:"live"`
	Dead bool     `json:"dead"`
}

// LaneState is one lane that a producer took.
type LaneState struct {
	Lane  int    `json:"lane"`
	State string `json:"state"` // its producer's: alive, closed or dead (none: never taken)
	PID   uint32 `json:"pid"`
	// Head is the consumer's released position, Tail the producer's
	// published one. The producer publishes its tail every 256 messages or
	// half a lane, and whenever it waits or closes: so BytesInFlight,
	// Tail-Head (0 while the published tail lags behind the head), is
	// exact once the producer waits or closes, and may fall short while it
	// sends.
	Head          uint64  `json:"head"`
	Tail          uint64  `json:"tail"`
	BytesInFlight uint64  `json:"bytes_in_flight"`
	FillPercent   float64 `json:"fill_percent"` // of the lane's capacity
	Sent          uint64  `json:"sent"`
	SentBytes     uint64  `json:"sent_bytes"`
	Full          uint64  `json:"full"` // times the producer found the lane full
}

// Stats are the ring's counters, summed over its lanes.
type Stats struct {
	Sent          uint64 `json:"sent"`
	SentBytes     uint64 `json:"sent_bytes"`
	Received      uint64 `json:"received"`
	ReceivedBytes uint64 `json:"received_bytes"`
	Full          uint64 `json:"full"`
	Head          uint64 `json:"head"`
	Tail          uint64 `json:"tail"`
}

// fileEntry fills the file facts of an entry.
func fileEntry(name string, fi fs.FileInfo) Entry {
	en := Entry{Name: name, Size: fi.Size(), Perm: fmt.Sprintf("%04o", fi.Mode().Perm()), Modified: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		en.UID, en.GID = st.Uid, st.Gid
	}
	return en
}

// inspect reads segment name read-only: it takes no role and changes
// nothing.
func (e *env) inspect(name string, fi fs.FileInfo, now time.Time) Entry {
	en := fileEntry(name, fi)
	if !fi.Mode().IsRegular() {
		en.Kind, en.Problem = kindForeign, fmt.Sprintf("not a regular file (%v)", fi.Mode().Type())
		en.err = fmt.Errorf("%s: %w", en.Problem, errNotRing)
		return en
	}
	r, err := ring.Open(name, ring.AttachOptions{Dir: e.dir, ReadOnly: true, Timeout: inspectTimeout})
	if err != nil {
		return en.failed(err)
	}
	defer r.Close()
	info, err := r.Info()
	if err != nil {
		return en.failed(err)
	}
	en.Kind = kindRing
	en.Ring = ringState(info, r.Lanes(), now)
	return en
}

func (en Entry) failed(err error) Entry {
	en.Kind = kindUnreadable
	if errors.Is(err, ring.ErrForeign) || errors.Is(err, shm.ErrNotSegment) {
		en.Kind = kindForeign
	}
	en.Problem, en.Error, en.err = causeOf(err), err.Error(), err
	return en
}

// ringState describes a ring of lanes lanes (Info lists only the used ones).
func ringState(in ring.Info, lanes int, now time.Time) *RingState {
	s := in.Stats
	rs := &RingState{
		Mode: in.Mode.String(), Lanes: lanes, Capacity: in.Capacity, SegmentSize: in.SegmentSize,
		MaxMessage: in.MaxMessage, Checksum: in.Checksum, Instance: fmt.Sprintf("%016x", in.Instance),
		Created: in.Created, AgeSeconds: now.Sub(in.Created).Seconds(), CreatorPID: in.CreatorPID,
		OwnerAlive: in.OwnerAlive, Attached: in.Attached, Consumer: in.Consumer.String(), ConsumerPID: in.ConsumerPID,
		UsedLanes: []LaneState{},
		Stats: Stats{Sent: s.Sent, SentBytes: s.SentBytes, Received: s.Received, ReceivedBytes: s.ReceivedBytes,
			Full: s.Full, Head: s.Head, Tail: s.Tail},
	}
	for _, l := range in.Lanes {
		ls := LaneState{Lane: l.Lane, State: l.State.String(), PID: l.PID, Head: l.Head, Tail: l.Tail,
			Sent: l.Sent, SentBytes: l.SentBytes, Full: l.Full}
		if l.Tail > l.Head {
			ls.BytesInFlight = l.Tail - l.Head
			ls.FillPercent = 100 * float64(ls.BytesInFlight) / float64(in.Capacity)
		}
		if l.State == ring.RoleAlive {
			rs.LanesAttached++
		}
		rs.BytesInFlight += ls.BytesInFlight
		rs.MaxFillPercent = max(rs.MaxFillPercent, ls.FillPercent)
		rs.UsedLanes = append(rs.UsedLanes, ls)
	}
	if rs.BytesInFlight > 0 {
		rs.FillPercent = 100 * float64(rs.BytesInFlight) / (float64(in.Capacity) * float64(rs.Lanes))
		rs.MessagesApprox = true
		if s.Sent > s.Received {
			rs.MessagesInFlight = s.Sent - s.Received
		}
	}
	rs.Live = liveRoles(in)
	rs.Dead = len(rs.Live) == 0
	return rs
}

// liveRoles lists who keeps a ring alive: the owner, roles whose locks are
// held (the consumer's, each lane's producer's), and processes that have
// it open without a role.
func liveRoles(in ring.Info) []string {
	live := []string{}
	if in.OwnerAlive {
		live = append(live, fmt.Sprintf("owner alive (created by pid %d)", in.CreatorPID))
	}
	if in.Consumer == ring.RoleAlive {
		live = append(live, fmt.Sprintf("consumer alive (pid %d)", in.ConsumerPID))
	}
	for _, l := range in.Lanes {
		if l.State == ring.RoleAlive {
			if in.Mode == ring.SPSC {
				live = append(live, fmt.Sprintf("producer alive (pid %d)", l.PID))
			} else {
				live = append(live, fmt.Sprintf("lane %d producer alive (pid %d)", l.Lane, l.PID))
			}
		}
	}
	if in.Attached && len(live) == 0 {
		live = append(live, "a live process has it open without a role")
	}
	return live
}

// scan inspects every segment in the directory, in name order.
func (e *env) scan() ([]Entry, error) {
	des, err := os.ReadDir(e.dir)
	if err != nil {
		return nil, fmt.Errorf("segment directory: %w", err)
	}
	now := time.Now()
	entries := make([]Entry, 0, len(des))
	for _, de := range des {
		fi, err := de.Info()
		if err != nil {
			continue // removed since the directory was read
		}
		entries = append(entries, e.inspect(de.Name(), fi, now))
	}
	return entries, nil
}

func cmdLs(e *env, args []string) error {
	fs := e.flags("ls")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	entries, err := e.scan()
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, entries)
	}
	if len(entries) == 0 {
		fmt.Fprintf(e.stdout, "no segments in %s\n", e.dir)
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	var others []Entry
	rings := 0
	for _, en := range entries {
		if en.Kind != kindRing {
			others = append(others, en)
			continue
		}
		if rings == 0 {
			fmt.Fprintln(tw, "NAME\tMODE\tLANES\tCAP/LANE\tSIZE\tIN FLIGHT\tMSGS\tFILL\tCONSUMER\tOWNER\tAGE")
		}
		rings++
		rs := en.Ring
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.1f%%\t%s\t%s\t%s\n", en.Name, rs.Mode, lanesSummary(rs),
			fmtBytes(uint64(rs.Capacity)), fmtBytes(uint64(rs.SegmentSize)), fmtBytes(rs.BytesInFlight), fmtMsgs(rs),
			rs.MaxFillPercent, rs.Consumer, aliveWord(rs.OwnerAlive), fmtAge(time.Duration(rs.AgeSeconds*float64(time.Second))))
	}
	if len(others) > 0 {
		if rings > 0 {
			fmt.Fprintln(tw)
		}
		fmt.Fprintln(tw, "OTHER SEGMENT\tKIND\tSIZE\tUID\tWHAT")
		for _, en := range others {
			what := en.Problem
			if en.Kind == kindForeign {
				what += "; left alone"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", en.Name, en.Kind, fmtBytes(uint64(en.Size)), en.UID, what)
		}
	}
	return tw.Flush()
}

func cmdStat(e *env, args []string) error {
	fs := e.flags("stat")
	asJSON := fs.Bool("json", false, "print JSON")
	watch := fs.Bool("watch", false, "refresh live rates until interrupted")
	interval := fs.Duration("interval", time.Second, "refresh interval for -watch")
	count := fs.Int("count", 0, "with -watch, stop after this many refreshes (0: until interrupted)")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *interval <= 0 || *count < 0 {
		return fmt.Errorf("%w: -interval must be positive and -count not negative", errUsage)
	}
	name := pos[0]
	if *watch {
		return e.watch(name, *interval, *count, *asJSON)
	}
	en, err := e.inspectName(name)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, en)
	}
	printStat(e.stdout, e.path(name), en)
	return nil
}

// inspectName inspects one named ring; anything but a readable ring is an
// error naming the ring and the cause.
func (e *env) inspectName(name string) (Entry, error) {
	if _, err := shm.CleanName(name); err != nil {
		return Entry{}, e.ringError(name, err)
	}
	fi, err := os.Lstat(e.path(name))
	if err != nil {
		return Entry{}, e.ringError(name, err)
	}
	en := e.inspect(name, fi, time.Now())
	if en.Kind != kindRing {
		return en, e.ringError(name, en.err)
	}
	return en, nil
}

func printStat(w io.Writer, path string, en Entry) {
	rs := en.Ring
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, args...)...) }
	p("ring", "%s", en.Name)
	p("instance", "%s (hex: names this ring's messages)", rs.Instance)
	p("segment", "%s, %s, perm %s, uid %d, gid %d", path, fmtExact(uint64(en.Size)), en.Perm, en.UID, en.GID)
	sum := "off"
	if rs.Checksum {
		sum = "on"
	}
	if rs.Lanes == 1 {
		p("mode", "%s: 1 lane", rs.Mode)
	} else {
		p("mode", "%s: %d lanes, one per attached producer", rs.Mode, rs.Lanes)
	}
	p("capacity", "%s per lane, %d × %s = %s of data; max message %s, checksums %s", fmtBytes(uint64(rs.Capacity)),
		rs.Lanes, fmtBytes(uint64(rs.Capacity)), fmtBytes(uint64(rs.Lanes)*uint64(rs.Capacity)), fmtBytes(uint64(rs.MaxMessage)), sum)
	p("created", "%s (age %s) by pid %d", rs.Created.Format(time.RFC3339), fmtAge(time.Duration(rs.AgeSeconds*float64(time.Second))), rs.CreatorPID)
	p("owner", "%s", aliveWord(rs.OwnerAlive))
	p("attached", "%s", yesNo(rs.Attached))
	if rs.Consumer == "none" {
		p("consumer", "none")
	} else {
		p("consumer", "%s (pid %d)", rs.Consumer, rs.ConsumerPID)
	}
	p("producers", "%s", producersSummary(rs))
	p("in flight", "%s of %s (%.1f%% full), %s messages", fmtBytes(rs.BytesInFlight),
		fmtBytes(uint64(rs.Lanes)*uint64(rs.Capacity)), rs.FillPercent, fmtMsgs(rs))
	p("sent", "%d messages, %s", rs.Stats.Sent, fmtBytes(rs.Stats.SentBytes))
	p("received", "%d messages, %s", rs.Stats.Received, fmtBytes(rs.Stats.ReceivedBytes))
	p("full events", "%d (times a producer found its lane full)", rs.Stats.Full)
	if rs.Dead {
		p("verdict", "dead: no live process uses it; `ringctl gc` removes it")
	} else {
		p("verdict", "in use: %s", strings.Join(rs.Live, ", "))
	}
	tw.Flush()
	if len(rs.UsedLanes) > 0 {
		rows := [][]string{{"LANE", "PRODUCER", "PID", "IN FLIGHT", "FILL", "SENT", "FULL"}}
		for _, l := range rs.UsedLanes {
			rows = append(rows, []string{strconv.Itoa(l.Lane), l.State, strconv.FormatUint(uint64(l.PID), 10),
				fmtBytes(l.BytesInFlight), fmt.Sprintf("%.1f%%", l.FillPercent), strconv.FormatUint(l.Sent, 10), strconv.FormatUint(l.Full, 10)})
		}
		fmt.Fprintln(w)
		printTable(w, rows, map[int]bool{1: true})
	}
	fmt.Fprintln(w)
	for _, h := range hints(rs) {
		fmt.Fprintf(w, "note: %s\n", h)
	}
	fmt.Fprintln(w, "(a lane's tail, hence its in-flight bytes, is published every 256 messages or half a lane while its producer sends,")
	fmt.Fprintln(w, " and is exact once the producer waits or closes; counters lag the traffic by up to 256 messages per side)")
}

// printTable prints rows in columns two spaces apart, aligned right but
// for the columns in left, aligned left.
func printTable(w io.Writer, rows [][]string, left map[int]bool) {
	var width []int
	for _, r := range rows {
		for i, c := range r {
			if i == len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		for i, c := range r {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if i > 0 {
				b.WriteString("  ")
			}
			if left[i] {
				b.WriteString(c + pad)
			} else {
				b.WriteString(pad + c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

// hints says what to do about what stat shows.
func hints(rs *RingState) []string {
	var h []string
	if rs.Consumer == "dead" {
		h = append(h, fmt.Sprintf("the consumer (pid %d) died without closing: producers waiting for room get ErrPeerDead; "+
			"a new consumer continues from each lane's last released message", rs.ConsumerPID))
	}
	for _, l := range rs.UsedLanes {
		if l.State != "dead" {
			continue
		}
		if rs.Mode == ring.SPSC.String() {
			h = append(h, fmt.Sprintf("the producer (pid %d) died without closing: the consumer drains what it committed, then gets ErrPeerDead; "+
				"a new producer continues after the last committed record", l.PID))
		} else {
			h = append(h, fmt.Sprintf("lane %d's producer (pid %d) died without closing: the consumer drains what it committed; "+
				"the lane is free for the next producer, which continues after the last committed record; other lanes are unaffected", l.Lane, l.PID))
		}
	}
	if rs.Mode == ring.MPSC.String() && rs.LanesAttached == rs.Lanes {
		h = append(h, fmt.Sprintf("all %d lanes are taken: another producer gets ErrBusy (role already taken) until one closes or dies", rs.Lanes))
	}
	for _, l := range rs.UsedLanes {
		if l.FillPercent < 90 {
			continue
		}
		which := fmt.Sprintf("lane %d is", l.Lane)
		if rs.Lanes == 1 {
			which = "the ring is"
		}
		if rs.Consumer == "alive" {
			h = append(h, which+" nearly full: the consumer is slower than its producer (see docs/OPERATIONS.md)")
		} else {
			h = append(h, which+" nearly full and no consumer is alive: its producer waits or fails until one attaches")
		}
	}
	return h
}

// watchRow is one refresh of stat -watch.
type watchRow struct {
	Time        time.Time `json:"time"`
	SentPerSec  float64   `json:"sent_per_sec"`
	RecvPerSec  float64   `json:"recv_per_sec"`
	BytesPerSec float64   `json:"bytes_per_sec"`
	FullPerSec  float64   `json:"full_per_sec"`
	FillPercent float64   `json:"fill_percent"` // of the fullest lane
	InFlight    uint64    `json:"bytes_in_flight"`
	Lanes       string    `json:"lanes"` // attached/total
	Consumer    string    `json:"consumer"`
	Owner       string    `json:"owner"`
}

// watch prints live rates every interval until interrupted, count rows
// were printed, or the ring was removed. It holds one read-only handle.
func (e *env) watch(name string, interval time.Duration, count int, asJSON bool) error {
	if _, err := e.inspectName(name); err != nil {
		return err
	}
	fi0, err := os.Lstat(e.path(name))
	if err != nil {
		return e.ringError(name, err)
	}
	r, err := ring.Open(name, ring.AttachOptions{Dir: e.dir, ReadOnly: true, Timeout: inspectTimeout})
	if err != nil {
		return e.ringError(name, err)
	}
	defer r.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	prev, err := r.Info()
	if err != nil {
		return e.ringError(name, err)
	}
	last := time.Now()
	const rowFormat = "%-8s  %9s  %9s  %9s  %7s  %6s  %9s  %-7s  %-8s  %s\n"
	if !asJSON {
		fmt.Fprintf(e.stdout, "watching ring %q every %v (msgs/s from counters that lag up to 256 messages; bytes/s from the lanes' heads, framing included; FILL is the fullest lane's)\n", name, interval)
		fmt.Fprintf(e.stdout, rowFormat, "TIME", "SENT/s", "RECV/s", "BYTES/s", "FULL/s", "FILL", "IN FLIGHT", "LANES", "CONSUMER", "OWNER")
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	enc := json.NewEncoder(e.stdout)
	for n := 0; count == 0 || n < count; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		if fi, err := os.Lstat(e.path(name)); err != nil || !os.SameFile(fi0, fi) {
			fmt.Fprintf(e.stdout, "ring %q was removed\n", name)
			return nil
		}
		cur, err := r.Info()
		if err != nil {
			return e.ringError(name, err)
		}
		now := time.Now()
		dt := now.Sub(last).Seconds()
		rs := ringState(cur, r.Lanes(), now)
		row := watchRow{
			Time:        now,
			SentPerSec:  rate(prev.Stats.Sent, cur.Stats.Sent, dt),
			RecvPerSec:  rate(prev.Stats.Received, cur.Stats.Received, dt),
			BytesPerSec: rate(prev.Stats.Head, cur.Stats.Head, dt),
			FullPerSec:  rate(prev.Stats.Full, cur.Stats.Full, dt),
			FillPercent: rs.MaxFillPercent, InFlight: rs.BytesInFlight,
			Lanes: lanesSummary(rs), Consumer: rs.Consumer, Owner: aliveWord(rs.OwnerAlive),
		}
		prev, last = cur, now
		if asJSON {
			if err := enc.Encode(row); err != nil {
				return err
			}
			continue
		}
		_, err = fmt.Fprintf(e.stdout, rowFormat, now.Format("15:04:05"),
			fmt.Sprintf("%.0f", row.SentPerSec), fmt.Sprintf("%.0f", row.RecvPerSec), fmtBytes(uint64(row.BytesPerSec)),
			fmt.Sprintf("%.0f", row.FullPerSec), fmt.Sprintf("%.1f%%", row.FillPercent), fmtBytes(row.InFlight),
			row.Lanes, row.Consumer, row.Owner)
		if err != nil {
			return err
		}
	}
	return nil
}

func rate(a, b uint64, dt float64) float64 {
	if b < a || dt <= 0 {
		return 0
	}
	return float64(b-a) / dt
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// lanesSummary is "attached/total": the lanes whose producer is alive,
// of the ring's lanes.
func lanesSummary(rs *RingState) string { return fmt.Sprintf("%d/%d", rs.LanesAttached, rs.Lanes) }

// producersSummary says what the producers are: one word for SPSC
// ("alive"), counts per state for MPSC ("2 alive, 1 dead of 16 lanes").
func producersSummary(rs *RingState) string {
	if rs.Mode == ring.SPSC.String() && len(rs.UsedLanes) == 1 {
		return rs.UsedLanes[0].State
	}
	var parts []string
	for _, st := range []string{"alive", "closed", "dead"} {
		n := 0
		for _, l := range rs.UsedLanes {
			if l.State == st {
				n++
			}
		}
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, st))
		}
	}
	if len(parts) == 0 {
		return fmt.Sprintf("none yet (%d lanes free)", rs.Lanes)
	}
	return fmt.Sprintf("%s of %d lanes", strings.Join(parts, ", "), rs.Lanes)
}

func fmtMsgs(rs *RingState) string {
	if !rs.MessagesApprox {
		return fmt.Sprint(rs.MessagesInFlight)
	}
	return fmt.Sprintf("~%d", rs.MessagesInFlight)
}

func aliveWord(b bool) string {
	if b {
		return "alive"
	}
	return "dead"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// fmtBytes prints n in binary units: 512B, 64KiB, 1.5MiB.
func fmtBytes(n uint64) string {
	if n < 1024 {
		return fmt.Sprintf("%dB", n)
	}
	v := float64(n)
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB"}
	u := -1
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	s := fmt.Sprintf("%.1f", v)
	s = strings.TrimSuffix(s, ".0")
	return s + units[u]
}

// fmtExact is fmtBytes, followed by the byte count when fmtBytes rounds
// it: "16MiB (16785408 bytes)".
func fmtExact(n uint64) string {
	unit := uint64(1)
	for n/unit >= 1024 && unit < 1<<50 {
		unit <<= 10
	}
	if n%unit == 0 {
		return fmtBytes(n)
	}
	return fmt.Sprintf("%s (%d bytes)", fmtBytes(n), n)
}

// fmtAge prints a duration to the second: 42s, 3m12s, 5h03m, 2d04h.
func fmtAge(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dd%02dh", s/86400, s%86400/3600)
}
