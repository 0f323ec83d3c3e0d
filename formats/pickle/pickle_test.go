package pickle

import (
	"encoding/hex"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bmc/formats/internal/fixture"
	"bmc/formats/ndarray"
)

type sidecar struct {
	Mosei   map[string]map[string]fixture.Array `json:"mosei"`
	Scalars map[string]any                      `json:"scalars"`
	fixture.Array
}

func loadSidecar(t *testing.T) map[string]sidecar {
	var want map[string]sidecar
	fixture.Load(t, "testdata/expected.json", &want)
	return want
}

// TestNumpyArrays reads every pickled array Python wrote (protocols 2 and 5
// for each dtype, 2 to 5 for the audio array) and compares it with the
// sidecar.
func TestNumpyArrays(t *testing.T) {
	n := 0
	for name, w := range loadSidecar(t) {
		if w.Descr == "" {
			continue
		}
		n++
		t.Run(name, func(t *testing.T) {
			v, err := ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			a, ok := v.(*ndarray.Array)
			if !ok {
				t.Fatalf("decoded a %T, want *ndarray.Array", v)
			}
			fixture.CheckArray(t, name, a, w.Array)
		})
	}
	if n < 20 {
		t.Fatalf("sidecar lists %d arrays", n)
	}
}

// TestAudioRecomputed checks the BalancedAV-style audio array against
// values computed here: (arange(320) % 13) / 7 - 0.5 in float32, as 40×8.
func TestAudioRecomputed(t *testing.T) {
	for _, p := range []string{"2", "3", "4", "5"} {
		v, err := ReadFile("testdata/audio_f4_p" + p + ".pkl")
		if err != nil {
			t.Fatal(err)
		}
		a := v.(*ndarray.Array)
		if len(a.Shape) != 2 || a.Shape[0] != 40 || a.Shape[1] != 8 {
			t.Fatalf("protocol %s: shape %v", p, a.Shape)
		}
		f, err := a.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		for i, x := range f {
			if want := float32(i%13)/7 - 0.5; x != want {
				t.Fatalf("protocol %s: element %d is %v, want %v", p, i, x, want)
			}
		}
	}
}

// TestMosei walks the CMU-MOSEI layout: splits → modalities → arrays.
func TestMosei(t *testing.T) {
	want := loadSidecar(t)
	for _, name := range []string{"mosei_p2.pkl", "mosei_p4.pkl"} {
		v, err := ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		top, ok := v.(*Dict)
		if !ok {
			t.Fatalf("%s: top level is %T", name, v)
		}
		splits := want[name].Mosei
		if len(top.Keys) != len(splits) {
			t.Errorf("%s: %d splits, want %d", name, len(top.Keys), len(splits))
		}
		for split, fields := range splits {
			sv, ok := top.Get(split)
			if !ok {
				t.Fatalf("%s: split %q missing", name, split)
			}
			sd := sv.(*Dict)
			if len(sd.Keys) != len(fields) {
				t.Errorf("%s/%s: %d fields, want %d", name, split, len(sd.Keys), len(fields))
			}
			for field, w := range fields {
				av, ok := sd.Get(field)
				if !ok {
					t.Fatalf("%s/%s: field %q missing", name, split, field)
				}
				fixture.CheckArray(t, name+"/"+split+"/"+field, av.(*ndarray.Array), w)
			}
		}
	}
}

func TestValues(t *testing.T) {
	want := loadSidecar(t)["values"].Scalars
	for _, p := range []string{"2", "3", "4", "5"} {
		name := "values_p" + p + ".pkl"
		v, err := ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		d := v.(*Dict)
		get := func(k string) any {
			x, ok := d.Get(k)
			if !ok {
				t.Fatalf("%s: key %q missing", name, k)
			}
			return x
		}
		for _, k := range []string{"str", "empty"} {
			if get(k) != want[k] {
				t.Errorf("%s: %s = %v, want %v", name, k, get(k), want[k])
			}
		}
		if get("none") != nil || get("t") != true || get("f") != false || get("float") != 1.25 {
			t.Errorf("%s: scalars none/t/f/float = %v %v %v %v", name, get("none"), get("t"), get("f"), get("float"))
		}
		for _, k := range []string{"small", "neg", "i32"} {
			if get(k) != int64(want[k].(float64)) {
				t.Errorf("%s: %s = %v (%T), want %v", name, k, get(k), get(k), want[k])
			}
		}
		for _, k := range []string{"big", "negbig"} {
			b, ok := get(k).(*big.Int)
			if !ok || b.String() != want[k] {
				t.Errorf("%s: %s = %v, want %v", name, k, get(k), want[k])
			}
		}
		if hex.EncodeToString(get("bytes").([]byte)) != want["bytes_hex"] {
			t.Errorf("%s: bytes = %x", name, get("bytes"))
		}
		if hex.EncodeToString(get("bytearray").([]byte)) != want["bytearray_hex"] {
			t.Errorf("%s: bytearray = %x", name, get("bytearray"))
		}
		l := get("list").(*List).Items
		if len(l) != 4 || l[0] != int64(1) || l[1] != "two" || l[2] != 3.0 || l[3] != nil {
			t.Errorf("%s: list = %v", name, l)
		}
		tu := get("tuple").(Tuple)
		if len(tu) != 2 || tu[0] != int64(1) || len(tu[1].(Tuple)) != 2 {
			t.Errorf("%s: tuple = %v", name, tu)
		}
		if len(get("tuple0").(Tuple)) != 0 || get("tuple1").(Tuple)[0] != "x" {
			t.Errorf("%s: tuple0/tuple1 = %v %v", name, get("tuple0"), get("tuple1"))
		}
		if n := len(get("long_list").(*List).Items); n != int(want["long_list_len"].(float64)) {
			t.Errorf("%s: long_list has %d items", name, n)
		}
		// The same list object appears twice: the memo must hand back one *List.
		a, _ := get("nested").(*Dict).Get("a")
		b, _ := a.(*Dict).Get("b")
		pair := b.(*List).Items
		if pair[0].(*List) != pair[1].(*List) || len(pair[0].(*List).Items) != 2 {
			t.Errorf("%s: shared list not shared: %v", name, pair)
		}
	}
}

// TestRefusesUnknownGlobal checks that a pickle calling os.system is
// rejected at the GLOBAL, before anything could run.
func TestRefusesUnknownGlobal(t *testing.T) {
	_, err := ReadFile("testdata/evil.pkl")
	if err == nil || !strings.Contains(err.Error(), "global posix.system is not allowed") || !strings.Contains(err.Error(), "evil.pkl") {
		t.Fatalf("got %v, want a refusal naming posix.system and the file", err)
	}
}

func TestOptions(t *testing.T) {
	// PROTO 2, GLOBAL 'mod f', BININT1 7, TUPLE1, REDUCE, BINPERSID... kept
	// to the opcodes Options affects: a custom global and a persistent id.
	data := []byte("\x80\x02cmod\nf\nK\x07\x85RK\x09Q\x86.")
	if _, err := Decode(data, Options{}); err == nil || !strings.Contains(err.Error(), "mod.f") {
		t.Fatalf("without Options: %v", err)
	}
	opts := Options{
		Globals: map[string]Func{"mod.f": func(args Tuple) (any, error) {
			return args[0].(int64) * 2, nil
		}},
		PersistentLoad: func(pid any) (any, error) { return pid.(int64) + 100, nil },
	}
	v, err := Decode(data, opts)
	if err != nil {
		t.Fatal(err)
	}
	if tu := v.(Tuple); tu[0] != int64(14) || tu[1] != int64(109) {
		t.Fatalf("got %v, want (14, 109)", v)
	}
}

func TestMalformed(t *testing.T) {
	tests := []struct {
		name, data, wantErr string
	}{
		{"protocol 1", "\x80\x01N.", "protocol 1"},
		{"no stop", "\x80\x02N", "no STOP"},
		{"underflow", "\x80\x02t.", "no MARK"},
		{"pop empty", "\x80\x020.", "underflow"},
		{"bad memo", "\x80\x02h\x05.", "memo entry 5"},
		{"append to int", "\x80\x02K\x01K\x02a.", "APPEND to a int64"},
		{"setitem on list", "\x80\x02]K\x01K\x02s.", "SETITEM on a list"},
		{"unknown opcode", "\x80\x02\xff.", "opcode 0xff"},
		{"out-of-band", "\x80\x05\x97.", "NEXT_BUFFER"},
		{"long string", "\x80\x02X\xff\xff\xff\x7fab.", "truncated"},
		{"bad utf8", "\x80\x02\x8c\x01\xff.", "UTF-8"},
		{"call non-global", "\x80\x02K\x01)R.", "call of a int64"},
		{"ndarray class call", "\x80\x02cnumpy\nndarray\n)R.", "cannot be called"},
		{"unbuilt array", "\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R.", "never given its state"},
		{"persid without loader", "\x80\x02K\x01Q.", "persistent"},
	}
	for _, tc := range tests {
		_, err := Decode([]byte(tc.data), Options{})
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.wantErr)
		}
	}
}

// TestTruncated cuts good pickles at every offset: each prefix must give an
// error, never a panic or a value.
func TestTruncated(t *testing.T) {
	for _, name := range []string{"audio_f8_p2.pkl", "unicode_p5.pkl", "object_p2.pkl", "values_p4.pkl"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		for n := range len(data) {
			if _, err := Decode(data[:n], Options{}); err == nil {
				t.Fatalf("%s cut to %d of %d bytes decoded without error", name, n, len(data))
			}
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, name := range []string{"audio_f8_p2.pkl", "unicode_p5.pkl", "object_p2.pkl", "values_p2.pkl", "fortran_p5.pkl"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Decode(data, Options{})
		if a, ok := v.(*ndarray.Array); ok && err == nil {
			_, _ = a.Float32s()
			_, _ = a.Strings()
		}
	})
}
