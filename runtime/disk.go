package runtime

import (
	"fmt"
	"syscall"

	"bmc/compile"
)

// runBytes estimates the disk a run of a plan needs: the best and last
// checkpoints (each briefly twice, while its replacement is written), the
// plan copy (with any frozen teacher state), model.onnx and a margin for
// logs and graphs.
func runBytes(m *compile.Manifest) int64 {
	var state, params, frozen int64
	for _, s := range m.State {
		if s.Kind == compile.StateFrozen {
			// In the plan copy only: checkpoints leave it out.
			frozen += 4 * s.Shape.Size()
			continue
		}
		state += 4 * s.Shape.Size()
		if s.Kind == compile.StateParam {
			params += 4 * s.Shape.Size()
		}
	}
	return 3*state + 2*params + frozen + 16<<20
}

// freeBytes is the space available to this user in dir's file system.
func freeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// checkDiskSpace fails before training when the run directory's file system
// cannot hold the run's files.
func checkDiskSpace(dir string, need int64, free func(string) (int64, error)) error {
	have, err := free(dir)
	if err != nil {
		return fmt.Errorf("run directory %s: cannot read the free space: %w", dir, err)
	}
	if have < need {
		return fmt.Errorf("run directory %s has %d MiB free; this run needs about %d MiB (checkpoints, plan copy, model.onnx)", dir, have>>20, (need+1<<20-1)>>20)
	}
	return nil
}
