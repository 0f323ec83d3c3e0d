package runtime

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

// bmc_cuda_count loads the NVIDIA driver and counts its devices. It returns
// 0 on success, 1 when libcuda.so.1 does not load (msg: dlerror), 2 when a
// symbol is missing, 3 when cuInit fails and 4 when cuDeviceGetCount fails
// (code: the CUresult, msg: its name).
static int bmc_cuda_count(int *count, int *code, char *msg, size_t n) {
	void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *e = dlerror();
		snprintf(msg, n, "%s", e ? e : "");
		return 1;
	}
	int (*init)(unsigned int) = (int (*)(unsigned int))dlsym(h, "cuInit");
	int (*cnt)(int *) = (int (*)(int *))dlsym(h, "cuDeviceGetCount");
	int (*name)(int, const char **) = (int (*)(int, const char **))dlsym(h, "cuGetErrorName");
	if (!init || !cnt) {
		snprintf(msg, n, "cuInit or cuDeviceGetCount missing");
		dlclose(h);
		return 2;
	}
	int r = init(0), stage = 3;
	if (r == 0) {
		r = cnt(count);
		stage = 4;
	}
	if (r != 0) {
		const char *s = 0;
		*code = r;
		snprintf(msg, n, "%s", name && name(r, &s) == 0 && s ? s : "unknown error");
		dlclose(h);
		return stage;
	}
	// The handle stays open: the CUDA provider loads the same driver.
	return 0;
}

typedef struct {
	struct sigaction act[NSIG];
	int ok[NSIG];
} bmc_handlers;

static bmc_handlers *bmc_save_handlers(void) {
	bmc_handlers *h = calloc(1, sizeof(bmc_handlers));
	if (!h) return 0;
	for (int i = 1; i < NSIG; i++) h->ok[i] = sigaction(i, 0, &h->act[i]) == 0;
	return h;
}

// bmc_restore_handlers puts back every handler that changed since h was
// saved, frees h and returns how many it restored.
static int bmc_restore_handlers(bmc_handlers *h) {
	int n = 0;
	for (int i = 1; i < NSIG; i++) {
		struct sigaction cur;
		if (!h->ok[i] || sigaction(i, 0, &cur) != 0) continue;
		if (cur.sa_handler != h->act[i].sa_handler || cur.sa_flags != h->act[i].sa_flags) {
			if (sigaction(i, &h->act[i], 0) == 0) n++;
		}
	}
	free(h);
	return n;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// CUresult CUDA_ERROR_NO_DEVICE: cuInit's answer on a machine whose driver
// sees no GPU.
const cudaErrorNoDevice = 100

// cudaDeviceCount asks the NVIDIA driver, loaded with dlopen so that bmc
// builds and runs without it, how many CUDA devices it sees.
func cudaDeviceCount() (int, error) {
	var count, code C.int
	msg := (*C.char)(C.calloc(256, 1))
	defer C.free(unsafe.Pointer(msg))
	switch C.bmc_cuda_count(&count, &code, msg, 256) {
	case 0:
		return int(count), nil
	case 1:
		return 0, fmt.Errorf("no NVIDIA driver: libcuda.so.1 not found (%s)", C.GoString(msg))
	case 2:
		return 0, fmt.Errorf("the NVIDIA driver libcuda.so.1 is unusable: %s", C.GoString(msg))
	case 3:
		if code == cudaErrorNoDevice {
			return 0, nil
		}
		return 0, fmt.Errorf("the NVIDIA driver failed to start: cuInit: %s (%d)", C.GoString(msg), int(code))
	default:
		return 0, fmt.Errorf("the NVIDIA driver cannot count devices: cuDeviceGetCount: %s (%d)", C.GoString(msg), int(code))
	}
}

// keepGoSignalHandlers runs f, which may load and start the CUDA execution
// provider, and then puts Go's signal handlers back. The provider installs
// its own handlers without SA_ONSTACK, so a signal arriving on a goroutine's
// small stack would crash the process instead of becoming a Go panic or
// reaching os/signal (onnxruntime_go issue 140). It returns how many
// handlers it restored.
func keepGoSignalHandlers(f func() error) (int, error) {
	h := C.bmc_save_handlers()
	if h == nil {
		return 0, errors.New("save the signal handlers: out of memory")
	}
	err := f()
	return int(C.bmc_restore_handlers(h)), err
}
