// Command bandwidth measures how memory copy bandwidth and in-cache
// arithmetic scale from one goroutine to two on this machine, to tell a
// machine that cannot feed two threads from a program that does not use
// them: go run ./tools/bench/bandwidth
package main

import (
	"fmt"
	"sync"
	"time"
)

const (
	copyFloats = 16 << 20 // 64 MB per array, far beyond the caches
	copyRounds = 10
)

// timed runs work on k goroutines at once and returns the wall time.
func timed(k int, work func(g int)) time.Duration {
	t0 := time.Now()
	var wg sync.WaitGroup
	for g := range k {
		wg.Add(1)
		go func() { defer wg.Done(); work(g) }()
	}
	wg.Wait()
	return time.Since(t0)
}

// arithmetic is a dependent multiply-add chain over a 32 KB array.
func arithmetic() float64 {
	x := make([]float64, 4096)
	s := 0.0
	for range 20000 {
		for i := range x {
			s += x[i]*1.0000001 + 1e-9
			x[i] = s * 1e-9
		}
	}
	return s
}

func main() {
	bufs := make([][]float32, 4)
	for i := range bufs {
		bufs[i] = make([]float32, copyFloats)
		for j := range bufs[i] {
			bufs[i][j] = float32(j)
		}
	}
	for _, k := range []int{1, 2, 1, 2} {
		el := timed(k, func(g int) {
			for range copyRounds {
				copy(bufs[2*g+1], bufs[2*g])
			}
		})
		bytes := float64(k * copyRounds * 2 * 4 * copyFloats) // read and write
		fmt.Printf("copy, %d goroutine(s): %v, %.1f GB/s together\n", k, el.Round(time.Millisecond), bytes/el.Seconds()/1e9)
	}
	for _, k := range []int{1, 2} {
		el := timed(k, func(int) { arithmetic() })
		fmt.Printf("in-cache arithmetic, %d goroutine(s) of the same work: %v\n", k, el.Round(time.Millisecond))
	}
}
