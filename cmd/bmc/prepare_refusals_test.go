package main

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// writeWAV writes a mono WAV file of 32-bit float samples whose header
// claims rate.
func writeWAV(t *testing.T, path string, rate uint32, samples []float32) {
	t.Helper()
	le := binary.LittleEndian
	data := make([]byte, 4*len(samples))
	for i, s := range samples {
		le.PutUint32(data[4*i:], math.Float32bits(s))
	}
	b := []byte("RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00")
	b = le.AppendUint16(b, 3) // IEEE float
	b = le.AppendUint16(b, 1)
	b = le.AppendUint32(b, rate)
	b = le.AppendUint32(b, rate*4)
	b = le.AppendUint16(b, 4)
	b = le.AppendUint16(b, 32)
	b = append(b, "data"...)
	b = le.AppendUint32(b, uint32(len(data)))
	b = append(b, data...)
	le.PutUint32(b[4:], uint32(len(b)-8))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A NaN WAV, and headers claiming absurd sample rates, are refused promptly
// naming the file, and no feature file is written.
func TestPrepareAudioRefusesCorruptWAVs(t *testing.T) {
	dir := t.TempDir()
	tone := make([]float32, 16000)
	for i := range tone {
		tone[i] = float32(0.3 * math.Sin(float64(i)/10))
	}
	nan := append([]float32{}, tone...)
	for i := range nan {
		nan[i] = float32(math.NaN())
	}
	files := map[string]struct {
		rate    uint32
		samples []float32
	}{"nan.wav": {16000, nan}, "fast.wav": {1000003, tone}, "corrupt.wav": {0xFFFFFFFF, tone}}
	var cases []refusal
	for name, f := range files {
		in := filepath.Join(dir, name)
		writeWAV(t, in, f.rate, f.samples)
		for _, pipeline := range []string{"stft", "fbank"} {
			cases = append(cases, refusal{name + " " + pipeline, nil,
				[]string{"prepare", "audio", "--pipeline", pipeline, "--in", in, "--out", filepath.Join(dir, "out")}, []string{in, "1 file(s) failed"}})
		}
	}
	checkRefusals(t, cases)
	if found, _ := filepath.Glob(filepath.Join(dir, "out", "*")); len(found) > 0 {
		t.Errorf("refused inputs left feature files %v", found)
	}
}
