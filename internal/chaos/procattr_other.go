//go:build !linux

package chaos

import "syscall"

// sysProcAttr has nothing to add outside Linux: the harness kills its
// children when it returns, but not when it is itself killed.
func sysProcAttr() *syscall.SysProcAttr { return nil }
