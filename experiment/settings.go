package experiment

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"bmc/internal/machine"
)

// A training setting a user may give, as the flag --KEY (underscores as
// dashes) or the key train.KEY of a configuration file, with the values it
// accepts. An explicit value is checked against them: no value in range
// means "the preset's", so a 0 that would be silently ignored is an error.
type setting struct {
	key string
	// integer settings take whole numbers only.
	integer bool
	// lo and hi bound the value; loOpen and hiOpen exclude the bound.
	lo, hi         float64
	loOpen, hiOpen bool
	// note says what a special value means ("0 lets ONNX Runtime choose").
	note string
}

// settings lists every numeric training setting.
func settings() []setting {
	inf := math.Inf(1)
	return []setting{
		{key: "epochs", integer: true, lo: 1, hi: 1e6},
		{key: "batch_size", integer: true, lo: 1, hi: 1 << 24},
		{key: "eval_batch_size", integer: true, lo: 1, hi: 1 << 24},
		{key: "step_size", integer: true, lo: 1, hi: 1e6, note: "gamma 1 keeps the learning rate constant"},
		{key: "threads", integer: true, lo: 0, hi: float64(machine.MaxThreads()),
			note: fmt.Sprintf("0 lets ONNX Runtime choose; at most %d per CPU", machine.ThreadsPerCPU)},
		{key: "lr", lo: 0, loOpen: true, hi: inf, hiOpen: true},
		{key: "momentum", lo: 0, hi: 1, hiOpen: true},
		{key: "weight_decay", lo: 0, hi: inf, hiOpen: true},
		{key: "gamma", lo: 0, loOpen: true, hi: inf, hiOpen: true},
		{key: "beta1", lo: 0, hi: 1, hiOpen: true},
		{key: "beta2", lo: 0, hi: 1, hiOpen: true},
		{key: "eps", lo: 0, loOpen: true, hi: inf, hiOpen: true},
	}
}

// FlagName is the command-line flag of a setting key ("batch_size" →
// "--batch-size").
func FlagName(key string) string { return "--" + strings.ReplaceAll(key, "_", "-") }

// lookupSetting finds a setting by key.
func lookupSetting(key string) (setting, bool) {
	for _, s := range settings() {
		if s.key == key {
			return s, true
		}
	}
	return setting{}, false
}

// domain describes the values a setting accepts: "an integer from 1 to
// 1000000", "a number in (0, ∞)".
func (s setting) domain() string {
	num := func(v float64) string {
		if math.IsInf(v, 1) {
			return "∞"
		}
		if v == math.Trunc(v) && math.Abs(v) < 1e15 {
			return strconv.FormatFloat(v, 'f', -1, 64)
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	var d string
	if s.integer {
		d = fmt.Sprintf("an integer from %s to %s", num(s.lo), num(s.hi))
	} else {
		open, close := "[", "]"
		if s.loOpen {
			open = "("
		}
		if s.hiOpen {
			close = ")"
		}
		d = fmt.Sprintf("a number in %s%s, %s%s", open, num(s.lo), num(s.hi), close)
	}
	if s.note != "" {
		d += "; " + s.note
	}
	return d
}

// check checks a value; name is how the user wrote the setting ("--epochs",
// "run.yaml:4: train.epochs").
func (s setting) check(name string, v float64) error {
	ok := !math.IsNaN(v) && (v > s.lo || (v == s.lo && !s.loOpen)) && (v < s.hi || (v == s.hi && !s.hiOpen))
	if s.integer && v != math.Trunc(v) {
		ok = false
	}
	if !ok {
		return fmt.Errorf("%s %s: want %s", name, strconv.FormatFloat(v, 'g', -1, 64), s.domain())
	}
	return nil
}

// CheckFlag checks the value of a flag (its name without the dashes, its
// value as typed) when the flag is a training setting; other flags pass.
func CheckFlag(name, value string) error {
	s, ok := lookupSetting(strings.ReplaceAll(name, "-", "_"))
	if !ok || FlagName(s.key) != "--"+name {
		return nil
	}
	v, err := strconv.ParseFloat(value, 64)
	if err != nil {
		return fmt.Errorf("--%s %q: want %s", name, value, s.domain())
	}
	return s.check("--"+name, v)
}
