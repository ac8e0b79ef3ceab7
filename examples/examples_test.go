// Package examples_test builds the example programs and runs them against
// each other, as a user would.
package examples_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func TestProducerConsumer(t *testing.T) {
	bin, dir := t.TempDir(), t.TempDir()
	for _, name := range []string{"producer", "consumer"} {
		out, err := exec.Command("go", "build", "-o", filepath.Join(bin, name), "./"+name).CombinedOutput()
		if err != nil {
			t.Fatalf("building %s: %v\n%s", name, err, out)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errs bytes.Buffer
	consumer := exec.CommandContext(ctx, filepath.Join(bin, "consumer"), "-dir", dir)
	consumer.Stdout, consumer.Stderr = &out, &errs
	if err := consumer.Start(); err != nil {
		t.Fatal(err)
	}
	// Started right after the consumer, the producer may find no ring yet:
	// it retries, as it would in production.
	if b, err := exec.CommandContext(ctx, filepath.Join(bin, "producer"), "-dir", dir).CombinedOutput(); err != nil {
		t.Fatalf("producer: %v\n%s", err, b)
	}
	if err := consumer.Wait(); err != nil {
		t.Fatalf("consumer: %v\n%s", err, errs.String())
	}
	if want := "order 0\norder 1\norder 2\n"; out.String() != want {
		t.Errorf("consumer printed %q, want %q", out.String(), want)
	}
	if _, err := os.Stat(filepath.Join(dir, "example")); !os.IsNotExist(err) {
		t.Errorf("the consumer, the ring's owner, did not remove it: %v", err)
	}
}
