package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	"github.com/edge-agent/edge-agent/mqtt/mqtttest"
)

// machine is what the figures were measured on.
type machine struct {
	CPUs      int    // nproc
	CPUModel  string // /proc/cpuinfo "model name"
	GoVersion string // `go version`
	Kernel    string // /proc/sys/kernel/osrelease
	MemTotal  string // /proc/meminfo
	Mosquitto string
	Qemu      string
}

func describeMachine(ctx context.Context, goBin string) machine {
	m := machine{CPUs: runtime.NumCPU(), CPUModel: "unknown", Kernel: "unknown", MemTotal: "unknown"}
	if out, err := exec.CommandContext(ctx, "nproc").Output(); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil {
			m.CPUs = n
		}
	}
	if v := procField("/proc/cpuinfo", "model name"); v != "" {
		m.CPUModel = v
	}
	if v := procField("/proc/meminfo", "MemTotal"); v != "" {
		if kb, err := strconv.ParseFloat(strings.TrimSuffix(v, " kB"), 64); err == nil {
			v = fmt.Sprintf("%.1f GiB", kb/(1<<20))
		}
		m.MemTotal = v
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.GoVersion = firstLine(ctx, goBin, "version")
	if bin, err := mqtttest.Binary(); err == nil {
		m.Mosquitto = firstLine(ctx, bin, "-h")
	}
	m.Qemu = firstLine(ctx, "qemu-aarch64-static", "--version")
	return m
}

func (m machine) oneLine() string {
	return fmt.Sprintf("%d CPUs (%s), %s, kernel %s, %s RAM", m.CPUs, m.CPUModel, m.GoVersion, m.Kernel, m.MemTotal)
}

// procField returns the value of the first "key : value" line of a /proc
// file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// firstLine runs a command and returns the first line of its output, or
// "not installed".
func firstLine(ctx context.Context, name string, args ...string) string {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil && len(out) == 0 {
		return "not installed"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// loadAverage is the 1-minute load average: the machine is shared, and a
// figure taken under load says so beside it.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// procCPU is a process's user+system CPU time in seconds, from
// /proc/<pid>/stat.
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: fields count from the
	// last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:])
	// After ')': state is field 3, utime field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad times", pid)
	}
	return (ut + st) / clockTicks, nil
}

// clockTicks is USER_HZ, 100 on every Linux this runs on (sysconf would
// need cgo).
const clockTicks = 100

// procStatusKB reads a "Key:   123 kB" line of /proc/<pid>/status, in
// bytes.
func procStatusBytes(pid int, key string) (int64, error) {
	v := procField(fmt.Sprintf("/proc/%d/status", pid), key)
	if v == "" {
		return 0, fmt.Errorf("/proc/%d/status: no %s", pid, key)
	}
	num, unit, _ := strings.Cut(v, " ")
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/status %s: %w", pid, key, err)
	}
	if strings.TrimSpace(unit) == "kB" {
		n *= 1024
	}
	return n, nil
}
