//go:build unix

package gla_test

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user + system) the process has used so far: the benchmark reports it per
// op next to wall time, which other processes on a shared machine inflate.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
