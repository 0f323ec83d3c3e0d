// Package machine knows the limits of the machine bmc runs on (memory and
// CPUs), so that a request far beyond them is refused with an estimate
// before anything is allocated, instead of ending in an out-of-memory crash
// or a hang.
package machine

import (
	"bufio"
	"fmt"
	"math"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
)

// MemoryEnv, when set (bytes, or a number with a K, M, G or T suffix in
// binary units: "16G"), is the memory bmc may plan to use, in place of the
// machine's.
const MemoryEnv = "BMC_MEMORY_LIMIT"

// Memory is the memory bmc may plan to use, in bytes, and where that number
// comes from: MemoryEnv when set, else the smaller of the machine's memory
// and its control group's limit.
func Memory() (int64, string, error) {
	if s := os.Getenv(MemoryEnv); s != "" {
		n, err := ParseBytes(s)
		if err != nil {
			return 0, "", fmt.Errorf("%s=%q: %w", MemoryEnv, s, err)
		}
		return n, MemoryEnv, nil
	}
	total, err := memTotal()
	if err != nil {
		return 0, "", err
	}
	from := "this machine's memory"
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64); err == nil && n > 0 && n < total {
			total, from = n, "this control group's memory limit"
		}
	}
	return total, from, nil
}

// memTotal reads MemTotal from /proc/meminfo.
func memTotal() (int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("read the machine's memory size: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/meminfo: MemTotal %q: %w", rest, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("/proc/meminfo has no MemTotal line")
}

// ParseBytes reads a byte count: digits with an optional K, M, G or T
// suffix (binary units, an optional trailing "iB" or "B").
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "B"), "I")
	shift := 0
	if n := len(t); n > 0 {
		if i := strings.IndexByte("KMGT", t[n-1]); i >= 0 {
			shift, t = 10*(i+1), t[:n-1]
		}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
	if err != nil || !(v > 0) || v*math.Exp2(float64(shift)) >= math.MaxInt64 {
		return 0, fmt.Errorf("want a positive size in bytes, such as 16G or 512M")
	}
	return int64(v * math.Exp2(float64(shift))), nil
}

// FormatBytes writes a byte count in binary units ("1.5 GiB").
func FormatBytes(n float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i := 0
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f B", n)
	}
	return fmt.Sprintf("%.3g %s", n, units[i])
}

// CheckMemory fails when need bytes (an estimate of what is about to be
// allocated for what) exceed the memory bmc may use. need is a float so
// that estimates past the int64 range are still compared correctly.
func CheckMemory(what string, need float64) error {
	have, from, err := Memory()
	if err != nil {
		return err
	}
	if need > float64(have) {
		hint := " (" + MemoryEnv + " sets another limit)"
		if from == MemoryEnv {
			hint = ""
		}
		return fmt.Errorf("%s needs about %s of memory, more than the %s of %s%s",
			what, FormatBytes(need), FormatBytes(float64(have)), from, hint)
	}
	return nil
}

// ThreadsPerCPU bounds thread and worker counts: more than this many per
// CPU only adds contention, and a mistyped count (100000) would otherwise
// start that many threads.
const ThreadsPerCPU = 8

// MaxThreads is the largest thread or worker count bmc accepts here.
func MaxThreads() int { return ThreadsPerCPU * goruntime.NumCPU() }

// CheckThreads checks a thread or worker count given as name (a flag such
// as "--threads"); zero means "the default" where allowZero is set.
func CheckThreads(name string, n int, allowZero bool) error {
	lo := 1
	if allowZero {
		lo = 0
	}
	if n < lo || n > MaxThreads() {
		return fmt.Errorf("%s %d: want %d to %d (%d per CPU, %d CPUs here)%s", name, n, lo, MaxThreads(), ThreadsPerCPU, goruntime.NumCPU(),
			map[bool]string{true: "; 0 picks the default", false: ""}[allowZero])
	}
	return nil
}
