package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat. Linux reports
// them in 1/100 s on every architecture whatever CONFIG_HZ is (`getconf CLK_TCK` = 100), so
// a constant avoids cgo for sysconf.
const clockTicks = 100

// procCPU returns the CPU time (user + system) the process pid has used so far.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu of pid %d: %w", pid, err)
	}
	ticks, err := parseStatCPU(b)
	if err != nil {
		return 0, fmt.Errorf("cpu of pid %d: %w", pid, err)
	}
	return time.Duration(ticks) * (time.Second / clockTicks), nil
}

// parseStatCPU returns utime + stime, in clock ticks, from the contents of /proc/<pid>/stat.
// The second field, comm, is the executable name in parentheses and may itself hold spaces
// and parentheses, so fields are counted from the last ')'. See proc(5).
func parseStatCPU(stat []byte) (uint64, error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, fmt.Errorf("stat: no ')' after comm in %q", truncateBytes(stat, 64))
	}
	// After comm: state (field 3), ppid (4), ... utime (14), stime (15).
	fields := bytes.Fields(stat[end+1:])
	const utimeIdx, stimeIdx = 14 - 3, 15 - 3
	if len(fields) <= stimeIdx {
		return 0, fmt.Errorf("stat: %d fields after comm, want at least %d", len(fields), stimeIdx+1)
	}
	utime, err := strconv.ParseUint(string(fields[utimeIdx]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat: utime: %w", err)
	}
	stime, err := strconv.ParseUint(string(fields[stimeIdx]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat: stime: %w", err)
	}
	return utime + stime, nil
}

func truncateBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
