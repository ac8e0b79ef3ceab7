package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ringwire/ringwire/ring"
	"github.com/ringwire/ringwire/shm"
)

// lockAttached is the byte of a ring's segment file that every open
// read-write Ring handle holds a shared OFD lock on (ring/layout.go,
// docs/LAYOUT.md: "byte 1, shared, held by every open Ring handle").
// Holding it exclusively proves that no process has the ring open, and
// keeps any from attaching while ringctl checks and unlinks.
const lockAttached = 1

// removeDead removes ring name if, at the moment of removal, it is
// provably dead: no process has it open, its owner is dead, and neither
// the consumer's lock nor any lane's producer lock is held. It takes the
// attached lock exclusively first, so no process can attach between the
// proof and the unlink (an Open meanwhile fails), and unlinks through the
// segment it locked, so a segment that replaced the name is left alone
// (shm.ErrReplaced).
//
// It returns the live roles when the ring is in use, and an error when the
// proof or the unlink failed.
func (e *env) removeDead(name string) (live []string, err error) {
	seg, err := shm.Open(name, e.shmOpts()...) // read-write: an exclusive lock needs it
	if err != nil {
		return nil, err
	}
	defer seg.Close()
	lk, err := seg.TryLock(lockAttached, 1)
	if errors.Is(err, shm.ErrLocked) {
		return []string{"a live process has it open"}, nil
	}
	if err != nil {
		return nil, err
	}
	defer lk.Unlock()
	r, err := ring.Open(name, ring.AttachOptions{Dir: e.dir, ReadOnly: true, Timeout: inspectTimeout})
	if err != nil {
		return nil, err
	}
	info, err := r.Info()
	r.Close()
	if err != nil {
		return nil, err
	}
	info.Attached = false // the lock held is ringctl's own: it proved nobody else attached
	if live := liveRoles(info); len(live) > 0 {
		return live, nil
	}
	return nil, seg.Unlink()
}

// deathCertificate says why a dead ring is dead.
func deathCertificate(rs *RingState) string {
	parts := []string{fmt.Sprintf("owner dead (created by pid %d)", rs.CreatorPID), "consumer " + rs.Consumer}
	if len(rs.UsedLanes) == 0 || rs.Lanes == 1 && rs.UsedLanes[0].State == "none" {
		parts = append(parts, "no producer ever")
	} else {
		parts = append(parts, "producers "+producersSummary(rs))
	}
	parts = append(parts, "nobody attached", "age "+fmtAge(time.Duration(rs.AgeSeconds*float64(time.Second))))
	return strings.Join(parts, ", ")
}

func cmdGC(e *env, args []string) error {
	fs := e.flags("gc")
	dryRun := fs.Bool("dry-run", false, "show what would be removed, remove nothing")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	entries, err := e.scan()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	var removed, kept, foreign, failed int
	for _, en := range entries {
		var action, why string
		switch {
		case en.Kind == kindForeign:
			foreign++
			action, why = "skipped", fmt.Sprintf("%s (%s, uid %d): never touched", en.Problem, fmtBytes(uint64(en.Size)), en.UID)
		case en.Kind == kindUnreadable:
			kept++
			action, why = "kept", "cannot prove it dead: "+en.Problem
		case !en.Ring.Dead:
			kept++
			action, why = "kept", "in use: "+strings.Join(en.Ring.Live, ", ")
		case *dryRun:
			removed++
			action, why = "would remove", deathCertificate(en.Ring)
		default:
			live, err := e.removeDead(en.Name)
			switch {
			case err != nil && errors.Is(err, os.ErrPermission):
				kept++
				action, why = "kept", "cannot prove it dead: permission denied ("+err.Error()+")"
			case err != nil:
				failed++
				action, why = "failed", causeOf(err)+": "+err.Error()
			case len(live) > 0:
				kept++
				action, why = "kept", "in use: "+strings.Join(live, ", ")
			default:
				removed++
				action, why = "removed", deathCertificate(en.Ring)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", action, en.Name, why)
	}
	tw.Flush()
	verb := "removed"
	if *dryRun {
		verb = "would remove"
	}
	fmt.Fprintf(e.stdout, "gc %s: %s %d, kept %d, skipped %d foreign", e.dir, verb, removed, kept, foreign)
	if failed > 0 {
		fmt.Fprintf(e.stdout, ", failed %d\n", failed)
		return fmt.Errorf("%d rings could not be removed", failed)
	}
	fmt.Fprintln(e.stdout)
	return nil
}

func cmdRm(e *env, args []string) error {
	fs := e.flags("rm")
	force := fs.Bool("force", false, "remove even a ring that live processes use, or one whose state cannot be read")
	names, err := parse(fs, args, 1, -1)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		if err := e.rm(name, *force); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (e *env) rm(name string, force bool) error {
	if _, err := shm.CleanName(name); err != nil {
		return e.ringError(name, err)
	}
	fi, err := os.Lstat(e.path(name))
	if err != nil {
		return e.ringError(name, err)
	}
	en := e.inspect(name, fi, time.Now())
	switch {
	case en.Kind == kindForeign:
		return fmt.Errorf("ring %q: %s: ringctl never removes foreign segments (%w)", name, causeOf(en.err), en.err)
	case en.Kind == kindUnreadable && !force:
		return fmt.Errorf("ring %q: %s, so ringctl cannot tell whether it is in use; -force removes it anyway (%w)", name, en.Problem, en.err)
	case en.Kind == kindUnreadable, !en.Ring.Dead && force:
		if err := shm.Unlink(name, e.shmOpts()...); err != nil {
			return e.ringError(name, err)
		}
		note := "state unreadable: " + en.Problem
		if en.Ring != nil {
			note = "still in use: " + strings.Join(en.Ring.Live, ", ") + "; they keep the ring until they close it"
		}
		fmt.Fprintf(e.stdout, "removed %s (forced; %s)\n", name, note)
		return nil
	case !en.Ring.Dead:
		return inUse(name, en.Ring.Live)
	}
	live, err := e.removeDead(name)
	if err != nil {
		return e.ringError(name, err)
	}
	if len(live) > 0 {
		if !force {
			return inUse(name, live)
		}
		if err := shm.Unlink(name, e.shmOpts()...); err != nil {
			return e.ringError(name, err)
		}
		fmt.Fprintf(e.stdout, "removed %s (forced; still in use: %s)\n", name, strings.Join(live, ", "))
		return nil
	}
	fmt.Fprintf(e.stdout, "removed %s (%s)\n", name, deathCertificate(en.Ring))
	return nil
}

func inUse(name string, live []string) error {
	return fmt.Errorf("ring %q: %w: %s; -force removes the name anyway (processes attached keep using the ring until they close it)",
		name, errInUse, strings.Join(live, ", "))
}
