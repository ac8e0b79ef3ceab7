package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
)

// PeersDirEnv names the nested module peers/ when pingpong cannot find it
// (it looks in the enclosing ringwire checkout of the working directory,
// then beside its own source).
const PeersDirEnv = "RINGWIRE_PEERS_DIR"

// runPeers hands the whole run to the nested module peers/, which knows
// shmipc-go: it builds peers/ with the go command (into a temporary
// directory; the go command's cache makes later builds quick) and runs it
// with the same flags, passing SIGINT and SIGTERM on, so every transport is
// measured side by side in one run by one binary.
func runPeers(args []string, stdout, stderr io.Writer) int {
	dir, err := peersDir()
	if err != nil {
		fmt.Fprintf(stderr, "pingpong: -transport shmipc: %v\n", err)
		return 1
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintf(stderr, "pingpong: -transport shmipc needs the go command to build %s: %v\n", dir, err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "pingpong-peers-")
	if err != nil {
		fmt.Fprintf(stderr, "pingpong: %v\n", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "peers")
	fmt.Fprintf(stderr, "pingpong: shmipc lives in the nested module %s: building it (the first build downloads shmipc-go)\n", dir)
	build := exec.Command(gobin, "build", "-o", bin, ".")
	build.Dir = dir
	build.Stdout, build.Stderr = stderr, stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(stderr, "pingpong: building %s: %v\n", dir, err)
		return 1
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "pingpong: %v\n", err)
		return 1
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = cmd.Process.Signal(s) // it cleans up and exits
			case <-done:
				return
			}
		}
	}()
	err = cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if st, ok := exit.Sys().(syscall.WaitStatus); ok && st.Signaled() {
			return 128 + int(st.Signal())
		}
		return exit.ExitCode()
	}
	if err != nil {
		fmt.Fprintf(stderr, "pingpong: %v\n", err)
		return 1
	}
	return 0
}

// peersDir finds the nested module peers/.
func peersDir() (string, error) {
	if d := os.Getenv(PeersDirEnv); d != "" {
		if !isPeersModule(d) {
			return "", fmt.Errorf("%s=%s: not the peers module", PeersDirEnv, d)
		}
		return d, nil
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			if isPeersModule(filepath.Join(d, "peers")) {
				return filepath.Join(d, "peers"), nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		d := filepath.Join(filepath.Dir(file), "..", "..", "peers")
		if isPeersModule(d) {
			return filepath.Clean(d), nil
		}
	}
	return "", fmt.Errorf("cannot find the nested module peers/ of a ringwire checkout: run pingpong from inside the checkout, or set %s", PeersDirEnv)
}

func isPeersModule(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	return err == nil && bytes.HasPrefix(b, []byte("module github.com/ringwire/ringwire/peers\n"))
}
