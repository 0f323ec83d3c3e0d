package machine

import (
	"strings"
	"testing"
)

func TestParseBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{{"512", 512}, {"4K", 4 << 10}, {"16G", 16 << 30}, {"1.5GiB", 3 << 29}, {"2 tb", 2 << 40}, {"100M", 100 << 20}} {
		if got, err := ParseBytes(tc.in); err != nil || got != tc.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "G", "-1G", "0", "lots", "1e30T", "NaN"} {
		if _, err := ParseBytes(bad); err == nil {
			t.Errorf("ParseBytes(%q): no error", bad)
		}
	}
}

func TestCheckMemoryNamesTheEstimateAndTheLimit(t *testing.T) {
	t.Setenv(MemoryEnv, "1G")
	if err := CheckMemory("a small thing", 1<<20); err != nil {
		t.Errorf("1 MiB under a 1 GiB limit: %v", err)
	}
	err := CheckMemory("a big thing", 3<<30)
	if err == nil || !strings.Contains(err.Error(), "a big thing needs about 3 GiB of memory, more than the 1 GiB of "+MemoryEnv) {
		t.Errorf("3 GiB under a 1 GiB limit: %v", err)
	}
	t.Setenv(MemoryEnv, "plenty")
	if err := CheckMemory("x", 1); err == nil || !strings.Contains(err.Error(), MemoryEnv) {
		t.Errorf("a bad %s: %v", MemoryEnv, err)
	}
	t.Setenv(MemoryEnv, "")
	if have, from, err := Memory(); err != nil || have <= 0 || from == MemoryEnv {
		t.Errorf("the machine's memory: %d from %q, %v", have, from, err)
	}
}

func TestCheckThreads(t *testing.T) {
	if err := CheckThreads("--threads", 0, true); err != nil {
		t.Error(err)
	}
	if err := CheckThreads("--threads", MaxThreads(), false); err != nil {
		t.Error(err)
	}
	for _, tc := range []struct {
		n         int
		allowZero bool
	}{{0, false}, {-1, true}, {MaxThreads() + 1, true}, {100000, true}} {
		if err := CheckThreads("--workers", tc.n, tc.allowZero); err == nil || !strings.Contains(err.Error(), "--workers") || !strings.Contains(err.Error(), "per CPU") {
			t.Errorf("CheckThreads(%d, %v): %v", tc.n, tc.allowZero, err)
		}
	}
}
