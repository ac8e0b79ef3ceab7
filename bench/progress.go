package bench

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// progressLine redraws one line on a terminal while a run goes on: the
// round under way and its message count.
type progressLine struct {
	w     io.Writer
	mu    sync.Mutex
	label string
	pr    *Progress
	done  chan struct{}
	fin   chan struct{}
}

// startProgress starts redrawing on w; when on is false it draws nothing.
func startProgress(w io.Writer, on bool) *progressLine {
	pl := &progressLine{w: w}
	if !on {
		return pl
	}
	pl.done, pl.fin = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(pl.fin)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-pl.done:
				fmt.Fprint(pl.w, "\r\033[K")
				return
			case <-tick.C:
				pl.mu.Lock()
				label, pr := pl.label, pl.pr
				pl.mu.Unlock()
				if pr != nil {
					fmt.Fprintf(pl.w, "\r\033[K%s: %s msgs", label, FormatRate(float64(pr.Count())))
				}
			}
		}
	}()
	return pl
}

// show makes label the line's text and returns the counter it shows.
func (pl *progressLine) show(label string) *Progress {
	pr := &Progress{}
	pl.mu.Lock()
	pl.label, pl.pr = label, pr
	pl.mu.Unlock()
	return pr
}

// stop clears the line; it is safe to call more than once.
func (pl *progressLine) stop() {
	if pl.done == nil {
		return
	}
	select {
	case <-pl.done:
	default:
		close(pl.done)
	}
	<-pl.fin
}
