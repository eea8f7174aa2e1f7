package chaos

import "syscall"

// sysProcAttr makes the kernel SIGKILL a child when the harness dies, so that
// even a harness killed with SIGKILL leaves no consumer behind. Pdeathsig
// fires when the thread that started the child exits; Go keeps its threads
// unless a goroutine exits while locked to one, which the harness never
// does.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
