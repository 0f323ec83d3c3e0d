package datasets

import (
	"fmt"
	"sync"
)

// CheckReport is what reading every sample of a dataset once found.
type CheckReport struct {
	Spec Spec `json:"spec"`
	// Splits are train, val and test, in that order.
	Splits []SplitCheck `json:"splits"`
	// Problems are those found while indexing (ProblemLister).
	Problems []Problem `json:"problems,omitempty"`
}

// SplitCheck counts one split's samples.
type SplitCheck struct {
	Name    string `json:"name"`
	Samples int    `json:"samples"`
	// PerClass counts the samples read without error, by label.
	PerClass []int `json:"per_class"`
	// Errors are the samples that could not be read, in index order.
	Errors []SampleError `json:"errors,omitempty"`
}

// SampleError is a sample Read refused.
type SampleError struct {
	Index int    `json:"index"`
	Err   string `json:"error"`
}

// Failed is the number of problems: unreadable samples and problems found
// while indexing, counting dropped rows only when countDropped is true.
func (r CheckReport) Failed(countDropped bool) int {
	n := 0
	for _, s := range r.Splits {
		n += len(s.Errors)
	}
	for _, p := range r.Problems {
		if countDropped || !p.Dropped {
			n++
		}
	}
	return n
}

// Check reads every sample of every split of d once with the given number
// of goroutines (training splits with seed 0) and reports what it found.
// A label outside [0, classes) counts as an error of its sample.
func Check(d Dataset, workers int) (CheckReport, error) {
	spec := d.Spec()
	r := CheckReport{Spec: spec}
	if pl, ok := d.(ProblemLister); ok {
		r.Problems = pl.Problems()
	}
	for _, name := range []string{Train, Val, Test} {
		sp, err := d.Split(name)
		if err != nil {
			return r, err
		}
		r.Splits = append(r.Splits, checkSplit(name, sp, spec, max(workers, 1)))
	}
	return r, nil
}

func checkSplit(name string, sp Split, spec Spec, workers int) SplitCheck {
	n := sp.Len()
	labels := make([]int64, n)
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dst := make([]Buffer, len(spec.Modalities))
			for m, mod := range spec.Modalities {
				if mod.Int {
					dst[m].I64 = make([]int64, mod.Size())
				} else {
					dst[m].F32 = make([]float32, mod.Size())
				}
			}
			for i := range next {
				labels[i], errs[i] = sp.Read(i, dst)
				if errs[i] == nil && (labels[i] < 0 || labels[i] >= int64(spec.Classes)) {
					errs[i] = fmt.Errorf("label %d is outside [0, %d)", labels[i], spec.Classes)
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	c := SplitCheck{Name: name, Samples: n, PerClass: make([]int, spec.Classes)}
	for i := range n {
		if errs[i] != nil {
			c.Errors = append(c.Errors, SampleError{Index: i, Err: errs[i].Error()})
			continue
		}
		c.PerClass[labels[i]]++
	}
	return c
}
