package testrun

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// Proc is a binary a test runs as a child process: its output is kept,
// shown (the last 8 KiB) when the test fails, and the process is killed
// when the test ends.
type Proc struct {
	name string
	cmd  *exec.Cmd
	out  Buffer
	done chan error // Wait's result, put back by whoever takes it
}

// StartProc starts bin with args; name labels it in failures.
func StartProc(t testing.TB, name, bin string, args ...string) *Proc {
	t.Helper()
	p := &Proc{name: name, cmd: exec.Command(bin, args...), done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill() // an error only if it has exited
		<-p.done
		if t.Failed() {
			out := p.out.String()
			if len(out) > 8<<10 {
				out = "…" + out[len(out)-8<<10:]
			}
			t.Logf("--- %s output ---\n%s", p.name, out)
		}
	})
	return p
}

// Output is what the process has written to stdout and stderr so far.
func (p *Proc) Output() string { return p.out.String() }

// Wait waits up to timeout for the process to exit; exited is false when
// it still runs, and err is its exit error.
func (p *Proc) Wait(timeout time.Duration) (exited bool, err error) {
	select {
	case err := <-p.done:
		p.done <- err // for the next wait
		return true, err
	default:
	}
	select {
	case err := <-p.done:
		p.done <- err
		return true, err
	case <-time.After(timeout):
		return false, nil
	}
}

// Stop sends sig and waits up to timeout for the process to exit,
// failing the test if it does not.
func (p *Proc) Stop(t testing.TB, sig syscall.Signal, timeout time.Duration) error {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	exited, err := p.Wait(timeout)
	if !exited {
		t.Fatalf("%s did not exit within %s", p.name, timeout)
	}
	return err
}

// FailIfExited fails the test when the process is gone: a server that died
// makes every later wait time out, with less to go on.
func (p *Proc) FailIfExited(t testing.TB) {
	t.Helper()
	if exited, err := p.Wait(0); exited {
		t.Fatalf("%s exited early: %v", p.name, err)
	}
}
