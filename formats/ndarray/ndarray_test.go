package ndarray

import (
	"math"
	"slices"
	"testing"
)

func TestHalfToFloat32(t *testing.T) {
	tests := []struct {
		bits uint16
		want float32
	}{
		{0x0000, 0},
		{0x3c00, 1},
		{0xc000, -2},
		{0x3555, 0.333251953125},
		{0x7bff, 65504},                 // largest normal
		{0x0400, 1.0 / (1 << 14)},       // smallest normal
		{0x0001, 1.0 / (1 << 24)},       // smallest subnormal
		{0x83ff, -1023.0 / (1 << 24)},   // largest negative subnormal
		{0x7c00, float32(math.Inf(1))},  // +inf
		{0xfc00, float32(math.Inf(-1))}, // -inf
	}
	for _, tc := range tests {
		if got := halfToFloat32(tc.bits); got != tc.want {
			t.Errorf("halfToFloat32(%#04x) = %v, want %v", tc.bits, got, tc.want)
		}
	}
	if got := halfToFloat32(0x7e00); !math.IsNaN(float64(got)) {
		t.Errorf("halfToFloat32(0x7e00) = %v, want NaN", got)
	}
}

func TestParseDescrRoundTrip(t *testing.T) {
	for _, s := range []string{"<f4", ">f8", "<f2", "<i8", ">i2", "|u1", "|b1", "<U3", ">U1", "|S7", "|O"} {
		d, err := ParseDescr(s)
		if err != nil {
			t.Fatalf("ParseDescr(%q): %v", s, err)
		}
		if d.String() != s {
			t.Errorf("ParseDescr(%q).String() = %q", s, d.String())
		}
	}
	for _, s := range []string{"", "<", "<c8", "<f3", "<i3", "|b2", "<fx", "<V8", "<O4"} {
		if _, err := ParseDescr(s); err == nil {
			t.Errorf("ParseDescr(%q) succeeded", s)
		}
	}
}

func TestNewFortranAndConversions(t *testing.T) {
	// Column-major 2×3 int16 [[1,2,3],[4,5,-6]] is stored as 1,4,2,5,3,-6.
	d, _ := ParseDescr("<i2")
	raw := []byte{1, 0, 4, 0, 2, 0, 5, 0, 3, 0, 0xfa, 0xff}
	a, err := New(d, []int{2, 3}, raw, true)
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.Int64s()
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{1, 2, 3, 4, 5, -6}; !slices.Equal(got, want) {
		t.Errorf("Int64s = %v, want %v", got, want)
	}
	f, err := a.Float32s()
	if err != nil || !slices.Equal(f, []float32{1, 2, 3, 4, 5, -6}) {
		t.Errorf("Float32s = %v, %v", f, err)
	}
	if _, err := New(d, []int{2, 3}, raw[:10], false); err == nil {
		t.Error("New accepted 10 bytes for 6 int16")
	}
	u8, _ := ParseDescr("<u8")
	big, err := New(u8, []int{1}, []byte{0, 0, 0, 0, 0, 0, 0, 0x80}, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := big.Int64s(); err == nil {
		t.Error("Int64s of 2^63 as uint64 succeeded")
	}
	if _, err := NumElements([]int{math.MaxInt / 2, 3}); err == nil {
		t.Error("NumElements did not detect overflow")
	}
}
