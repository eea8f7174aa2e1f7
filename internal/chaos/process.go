package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is one run of a binary, its output appended to its slot's log
// file. done is closed once it has exited and err holds how.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// launch starts bin with args and the harness's environment plus env,
// writing stdout and stderr to the end of logPath after a header line.
// A goroutine owned by the process waits for it and closes done.
func launch(bin string, args, env []string, logPath string) (*process, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("chaos: log file: %w", err)
	}
	fmt.Fprintf(f, "=== chaos: %s start %s %s\n", time.Now().Format(time.RFC3339Nano), filepath.Base(bin), strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("chaos: start %s: %w", bin, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		fmt.Fprintf(f, "=== chaos: %s exit: %v\n", time.Now().Format(time.RFC3339Nano), exitText(p.err))
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// signal sends sig; a process that has already exited is not an error.
func (p *process) signal(sig syscall.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("chaos: signal pid %d: %w", p.cmd.Process.Pid, err)
	}
	return nil
}

// stop sends sig and waits up to timeout for the exit, then SIGKILLs. It
// returns the exit error, or an error saying that the process had to be
// killed.
func (p *process) stop(sig syscall.Signal, timeout time.Duration) error {
	if err := p.signal(sig); err != nil {
		return err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return p.err
	case <-t.C:
		_ = p.signal(syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("did not exit within %s of %s: killed", timeout, sig)
	}
}

// slot keeps one process running: a consumer or the sampler. A process
// that ends before the run stops the slot is started again after a delay,
// whether the killer ended it (a kill) or it ended on its own (an
// unexpected exit, which the report counts: its log says why).
type slot struct {
	name    string
	bin     string
	args    []string
	env     []string
	logPath string
	delay   time.Duration
	log     *slog.Logger

	mu       sync.Mutex
	cur      *process // nil while down
	stopping bool
	killed   bool // the current process was killed by the harness
	starts   int
	unexp    int
	stopped  chan struct{} // closed when run returns
}

func newSlot(name, bin string, args, env []string, dir string, delay time.Duration, log *slog.Logger) *slot {
	return &slot{name: name, bin: bin, args: args, env: env, logPath: filepath.Join(dir, name+".log"),
		delay: delay, log: log.With("process", name), stopped: make(chan struct{})}
}

// run starts the process and keeps it running until stop, or until ctx
// ends, which kills it. It returns an error only when the binary cannot be
// started.
func (s *slot) run(ctx context.Context) error {
	defer close(s.stopped)
	for {
		s.mu.Lock()
		if s.stopping {
			s.mu.Unlock()
			return nil
		}
		p, err := launch(s.bin, s.args, s.env, s.logPath)
		if err != nil {
			s.mu.Unlock()
			return fmt.Errorf("chaos: %s: %w", s.name, err)
		}
		s.cur, s.killed = p, false
		s.starts++
		s.mu.Unlock()
		s.log.Debug("started", "pid", p.cmd.Process.Pid)

		select {
		case <-p.done:
		case <-ctx.Done():
			_ = p.signal(syscall.SIGKILL)
			<-p.done
			return nil
		}
		s.mu.Lock()
		s.cur = nil
		stopping, killed := s.stopping, s.killed
		if !stopping && !killed {
			s.unexp++
		}
		s.mu.Unlock()
		if stopping {
			return nil
		}
		if !killed {
			s.log.Error("exited on its own; restarting it", "exit", exitText(p.err), "log", s.logPath)
		}
		t := time.NewTimer(s.delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil
		}
	}
}

// kill SIGKILLs the running process and reports whether one was running.
func (s *slot) kill() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil || s.stopping || s.killed {
		return false
	}
	s.killed = true
	if err := s.cur.signal(syscall.SIGKILL); err != nil {
		s.log.Warn("kill", "err", err)
		return false
	}
	s.log.Info("killed", "pid", s.cur.cmd.Process.Pid)
	return true
}

// stop ends the slot: the running process gets SIGTERM and timeout to
// exit (then SIGKILL), and none is started again. It returns the process's
// exit error, or nil when none was running.
func (s *slot) stop(timeout time.Duration) error {
	s.mu.Lock()
	s.stopping = true
	p := s.cur
	s.mu.Unlock()
	var err error
	if p != nil {
		err = p.stop(syscall.SIGTERM, timeout)
	}
	<-s.stopped
	if err != nil {
		return fmt.Errorf("chaos: %s: stop: %w (log %s)", s.name, err, s.logPath)
	}
	return nil
}

// counts returns how often the slot's process was started and how often it
// exited on its own.
func (s *slot) counts() (starts, unexpected int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.starts, s.unexp
}
