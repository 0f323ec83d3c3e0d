package main

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"bmc/audio"
)

const audioFixtures = "../../tools/fixtures/audio"

// copyFixture copies a WAV from tools/fixtures/audio to dir/name.
func copyFixture(t *testing.T, fixture, dir, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(audioFixtures, fixture))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

var npyShape = regexp.MustCompile(`'shape': \((\d+), (\d+)\)`)

// readNPY reads the 2-D float32 .npy files bmc prepare writes.
func readNPY(t *testing.T, path string) (rows, cols int, data []float32) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) < 10 || string(raw[:8]) != "\x93NUMPY\x01\x00" {
		t.Fatalf("%s: not an .npy v1.0 file", path)
	}
	end := 10 + int(binary.LittleEndian.Uint16(raw[8:]))
	m := npyShape.FindStringSubmatch(string(raw[10:end]))
	if m == nil || !strings.Contains(string(raw[10:end]), "'<f4'") {
		t.Fatalf("%s: header %q", path, raw[10:end])
	}
	rows, _ = strconv.Atoi(m[1])
	cols, _ = strconv.Atoi(m[2])
	return rows, cols, floats(raw[end:])
}

func floats(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// readPTData returns the raw values of a .pt file's storage.
func readPTData(t *testing.T, path string) []float32 {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer zr.Close()
	f, err := zr.Open("archive/data/0")
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return floats(b)
}

func sameFloats(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: value %d = %g, want %g", what, i, got[i], want[i])
		}
	}
}

func TestPrepareAudioFbankFolder(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "wav"), filepath.Join(dir, "spec")
	mono := copyFixture(t, "i16_16k_mono.wav", in, "clip1.wav")
	copyFixture(t, "f32_22k_stereo.wav", in, "sub/clip2.WAV")
	broken := filepath.Join(in, "broken.wav")
	good, _ := os.ReadFile(mono)
	if err := os.WriteFile(broken, good[:len(good)/2], 0o644); err != nil {
		t.Fatal(err)
	}

	stdout, err := bmc(t, "prepare", "audio", "--pipeline", "fbank", "--in", in, "--out", out, "-j", "2")
	if err == nil || !strings.Contains(err.Error(), broken) || !strings.Contains(err.Error(), "truncated WAV") {
		t.Fatalf("a truncated file: error %v, want it named and called truncated", err)
	}
	if !strings.Contains(stdout, "2 of 3 files written (fbank, .npy), 0 skipped") || !strings.Contains(stdout, "1 failed") {
		t.Errorf("summary: %s", stdout)
	}
	rows, cols, got := readNPY(t, filepath.Join(out, "clip1.npy"))
	if rows != 1024 || cols != 128 {
		t.Errorf("clip1.npy shape (%d, %d), want (1024, 128)", rows, cols)
	}
	clip, err := audio.ReadWAV(mono)
	if err != nil {
		t.Fatal(err)
	}
	want, err := audio.KineticsSounds().Run(clip.Mono(), clip.Rate)
	if err != nil {
		t.Fatal(err)
	}
	sameFloats(t, "clip1.npy", got, want.Data)
	if _, err := os.Stat(filepath.Join(out, "sub", "clip2.npy")); err != nil {
		t.Errorf("subfolders are not mirrored: %v", err)
	}

	if err := os.Remove(broken); err != nil {
		t.Fatal(err)
	}
	stdout, err = bmc(t, "prepare", "audio", "--pipeline", "fbank", "--in", in, "--out", out)
	if err != nil || !strings.Contains(stdout, "0 of 2 files written (fbank, .npy), 2 skipped") {
		t.Errorf("second run: %v\n%s", err, stdout)
	}
	stdout, err = bmc(t, "prepare", "audio", "--pipeline", "fbank", "--in", in, "--out", out, "--force", "--frames", "0", "--no-norm", "--format", "pt")
	if err != nil || !strings.Contains(stdout, "2 of 2 files written (fbank, .pt)") {
		t.Errorf("--format pt: %v\n%s", err, stdout)
	}
	raw, err := audio.FbankPipeline{Fbank: audio.KineticsSoundsFbank()}.Run(clip.Mono(), clip.Rate)
	if err != nil {
		t.Fatal(err)
	}
	sameFloats(t, "clip1.pt", readPTData(t, filepath.Join(out, "clip1.pt")), raw.Data)
}

func TestPrepareAudioSTFTList(t *testing.T) {
	dir := t.TempDir()
	stereo := copyFixture(t, "f32_22k_stereo.wav", dir, "wav/a.wav")
	copyFixture(t, "i16_16k_mono.wav", dir, "wav/b.wav")
	list := filepath.Join(dir, "list.txt")
	if err := os.WriteFile(list, []byte("# clips\nwav/a.wav\n\n"+filepath.Join(dir, "wav/b.wav")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	stdout, err := bmc(t, "prepare", "audio", "--pipeline", "stft", "--in", list, "--out", out, "--start", "0.5")
	if err != nil || !strings.Contains(stdout, "2 of 2 files written (stft, .npy)") {
		t.Fatalf("%v\n%s", err, stdout)
	}
	rows, cols, got := readNPY(t, filepath.Join(out, "a.npy"))
	if rows != 129 || cols != 626 {
		t.Errorf("a.npy shape (%d, %d), want (129, 626)", rows, cols)
	}
	clip, err := audio.ReadWAV(stereo)
	if err != nil {
		t.Fatal(err)
	}
	wave, err := audio.Resample(clip.Mono(), clip.Rate, 16000, audio.KaiserBest())
	if err != nil {
		t.Fatal(err)
	}
	want, err := audio.VGGSoundSpectrogram(wave, 16000, 8000)
	if err != nil {
		t.Fatal(err)
	}
	sameFloats(t, "a.npy", got, want.Data)

	// Random starts depend on the seed and the clip's name only.
	runSeed := func(seed, sub string) []byte {
		o := filepath.Join(dir, sub)
		if _, err := bmc(t, "prepare", "audio", "--pipeline", "stft", "--in", list, "--out", o, "--seed", seed, "-j", "1"); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(o, "b.npy"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	first, again, other := runSeed("1", "s1"), runSeed("1", "s1again"), runSeed("2", "s2")
	if !bytes.Equal(first, again) {
		t.Errorf("the same seed gave different windows")
	}
	if bytes.Equal(first, other) {
		t.Errorf("seeds 1 and 2 gave the same window")
	}
	b, _ := audio.ReadWAV(filepath.Join(dir, "wav/b.wav"))
	w, err := audio.VGGSoundSpectrogram(b.Mono(), 16000, audio.VGGSoundRandomStart(1, "b"))
	if err != nil {
		t.Fatal(err)
	}
	sameFloats(t, "b.npy (seed 1)", floats(first[128:]), w.Data)
}

func TestPrepareAudioBadInput(t *testing.T) {
	dir := t.TempDir()
	mono := copyFixture(t, "i16_16k_mono.wav", dir, "wav/x.wav")
	copyFixture(t, "i16_16k_mono.wav", dir, "other/x.wav")
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	writeList := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	notWav := writeList("bad.txt", "wav/x.wav\nwav/x.mp3\n")
	dup := writeList("dup.txt", "wav/x.wav\nother/x.wav\n")
	out := filepath.Join(dir, "out")
	base := []string{"prepare", "audio", "--in", mono, "--out", out, "--force"}
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"prepare"}, []string{"name what to prepare", "audio"}},
		{[]string{"prepare", "video"}, []string{`unknown kind "video"`, "audio"}},
		{base, []string{"--pipeline is required", "fbank or stft"}},
		{append(base, "--pipeline", "mfcc"), []string{`unknown --pipeline "mfcc"`}},
		{[]string{"prepare", "audio", "--pipeline", "fbank", "--out", out}, []string{"--in and --out are required"}},
		{append(base, "--pipeline", "fbank", "--start", "1"), []string{"--start applies to --pipeline stft only"}},
		{append(base, "--pipeline", "stft", "--frames", "10"), []string{"--frames applies to --pipeline fbank only"}},
		{append(base, "--pipeline", "stft", "--rate", "22050"), []string{"16000 Hz, not --rate 22050"}},
		{append(base, "--pipeline", "stft", "--start", "-1"), []string{"--start -1 must be ≥ 0"}},
		{append(base, "--pipeline", "stft", "--start", "20"), []string{mono, "outside [0, 227200]"}},
		{append(base, "--pipeline", "fbank", "--format", "h5"), []string{`unknown --format "h5"`, "npy or pt"}},
		{append(base, "--pipeline", "fbank", "--resampler", "linear"), []string{`unknown --resampler "linear"`}},
		{append(base, "--pipeline", "fbank", "--channel", "left"), []string{`--channel "left"`}},
		{append(base, "--pipeline", "fbank", "--channel", "1"), []string{mono, "--channel 1, but the file has 1 channel(s)"}},
		{append(base, "--pipeline", "fbank", "-j", "0"), []string{"-j 0 must be ≥ 1"}},
		{[]string{"prepare", "audio", "--pipeline", "fbank", "--in", empty, "--out", out}, []string{empty, "no .wav files"}},
		{[]string{"prepare", "audio", "--pipeline", "fbank", "--in", notWav, "--out", out}, []string{notWav, "line 2", "x.mp3"}},
		{[]string{"prepare", "audio", "--pipeline", "fbank", "--in", dup, "--out", out}, []string{"would both write x.npy"}},
		{[]string{"prepare", "audio", "--pipeline", "fbank", "--in", filepath.Join(dir, "missing"), "--out", out}, []string{"--in", "missing"}},
	}
	for _, tt := range tests {
		_, err := bmc(t, tt.args...)
		if err == nil {
			t.Errorf("%v: no error", tt.args)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q does not mention %q", tt.args, err, w)
			}
		}
	}
}
