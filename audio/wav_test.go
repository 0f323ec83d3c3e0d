package audio

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// wavBytes builds a RIFF/WAVE file from a fmt body and data; extra chunks go
// between them.
func wavBytes(fmtBody, data []byte, extra ...[]byte) []byte {
	var b bytes.Buffer
	chunk := func(id string, body []byte) {
		b.WriteString(id)
		binary.Write(&b, binary.LittleEndian, uint32(len(body)))
		b.Write(body)
		if len(body)%2 == 1 {
			b.WriteByte(0)
		}
	}
	chunk("fmt ", fmtBody)
	for _, e := range extra {
		chunk("LIST", e)
	}
	chunk("data", data)
	out := append([]byte("RIFF\x00\x00\x00\x00WAVE"), b.Bytes()...)
	binary.LittleEndian.PutUint32(out[4:], uint32(len(out)-8))
	return out
}

func fmtBody(code, channels, rate, bits int) []byte {
	b := make([]byte, 16)
	le := binary.LittleEndian
	le.PutUint16(b[0:], uint16(code))
	le.PutUint16(b[2:], uint16(channels))
	le.PutUint32(b[4:], uint32(rate))
	le.PutUint32(b[8:], uint32(rate*channels*bits/8))
	le.PutUint16(b[12:], uint16(channels*bits/8))
	le.PutUint16(b[14:], uint16(bits))
	return b
}

func TestDecodeWAVScalesLikeTorchaudio(t *testing.T) {
	tests := []struct {
		name string
		fmt  []byte
		data []byte
		want [][]float32
	}{
		{"u8", fmtBody(1, 1, 8000, 8), []byte{0, 128, 255}, [][]float32{{-1, 0, 127.0 / 128}}},
		{"s16 stereo", fmtBody(1, 2, 8000, 16), []byte{0x00, 0x80, 0xff, 0x7f, 0x00, 0x40, 0x00, 0x00},
			[][]float32{{-1, 0.5}, {32767.0 / 32768, 0}}},
		{"s24", fmtBody(1, 1, 8000, 24), []byte{0x00, 0x00, 0x80, 0xff, 0xff, 0xff}, [][]float32{{-1, -1.0 / (1 << 23)}}},
		{"s32", fmtBody(1, 1, 8000, 32), []byte{0x00, 0x00, 0x00, 0xc0}, [][]float32{{-0.5}}},
		{"f32", fmtBody(3, 1, 8000, 32), []byte{0x00, 0x00, 0xc0, 0x3f}, [][]float32{{1.5}}},
		{"f64", fmtBody(3, 1, 8000, 64), []byte{0, 0, 0, 0, 0, 0, 0xe0, 0xbf}, [][]float32{{-0.5}}},
	}
	for _, tt := range tests {
		c, err := DecodeWAV(wavBytes(tt.fmt, tt.data, []byte("odd")))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if c.Rate != 8000 || len(c.Channels) != len(tt.want) {
			t.Errorf("%s: rate %d, %d channels", tt.name, c.Rate, len(c.Channels))
			continue
		}
		for ch := range tt.want {
			for i, w := range tt.want[ch] {
				if c.Channels[ch][i] != w {
					t.Errorf("%s: channel %d sample %d = %g, want %g", tt.name, ch, i, c.Channels[ch][i], w)
				}
			}
		}
	}
}

func TestMonoAveragesChannels(t *testing.T) {
	c := &Clip{Rate: 1, Channels: [][]float32{{1, 0.5}, {0, -0.5}, {0.5, 0}}}
	got := c.Mono()
	if got[0] != 0.5 || got[1] != 0 {
		t.Errorf("Mono = %v, want [0.5 0]", got)
	}
}

func TestDecodeWAVErrors(t *testing.T) {
	good := wavBytes(fmtBody(1, 1, 16000, 16), make([]byte, 8))
	extensible := append(fmtBody(0xFFFE, 1, 16000, 16), make([]byte, 24)...)
	binary.LittleEndian.PutUint16(extensible[24:], 2) // sub-format ADPCM
	badBlock := fmtBody(1, 2, 16000, 16)
	binary.LittleEndian.PutUint16(badBlock[12:], 3)
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "truncated WAV: 0 bytes"},
		{"not riff", []byte("RIFX\x00\x00\x00\x00WAVEfmt "), "not a RIFF/WAVE file"},
		{"truncated data", good[:len(good)-3], `"data" chunk at byte 36 declares 8 bytes, 5 left`},
		{"truncated chunk header", good[:40], "chunk header at byte 36 needs 8 bytes, 4 left"},
		{"format code", wavBytes(fmtBody(2, 1, 16000, 16), make([]byte, 4)), "unsupported format code 0x2"},
		{"extensible sub-format", wavBytes(extensible, make([]byte, 4)), "unsupported format code 0x2"},
		{"short extensible", wavBytes(fmtBody(0xFFFE, 1, 16000, 16), make([]byte, 4)), "WAVE_FORMAT_EXTENSIBLE needs 40"},
		{"bits", wavBytes(fmtBody(1, 1, 16000, 12), make([]byte, 4)), "unsupported sample size: 12 bits"},
		{"float bits", wavBytes(fmtBody(3, 1, 16000, 16), make([]byte, 4)), "unsupported sample size: 16 bits with format code 3"},
		{"short fmt", wavBytes(make([]byte, 14), nil), "bad fmt chunk size 14"},
		{"block size", wavBytes(badBlock, make([]byte, 6)), "block size 3 does not match 2 channels × 16 bits"},
		{"data size", wavBytes(fmtBody(1, 2, 16000, 16), make([]byte, 6)), "bad data chunk size 6: not a multiple of the block size 4"},
		{"no channels", wavBytes(fmtBody(1, 0, 16000, 16), nil), "0 channels"},
		{"zero rate", wavBytes(fmtBody(1, 1, 0, 16), make([]byte, 2)), "sample rate of 0 Hz: want 1 to 768000 Hz"},
		{"huge rate", wavBytes(fmtBody(1, 1, 1000003, 16), make([]byte, 2)), "sample rate of 1000003 Hz: want 1 to 768000 Hz"},
		{"corrupt rate", wavBytes(fmtBody(1, 1, 0xFFFFFFFF, 16), make([]byte, 2)), "sample rate of 4294967295 Hz"},
		{"NaN sample", wavBytes(fmtBody(3, 1, 16000, 32), []byte{0, 0, 0, 0, 0, 0, 0xC0, 0x7F}), "float sample 1 of channel 0 is NaN"},
		{"Inf sample", wavBytes(fmtBody(3, 2, 16000, 64), append(make([]byte, 8), 0, 0, 0, 0, 0, 0, 0xF0, 0x7F)), "float sample 0 of channel 1 is +Inf"},
		{"no fmt", []byte("RIFF\x0c\x00\x00\x00WAVEdata\x00\x00\x00\x00"), "comes before the fmt chunk"},
		{"no data", good[:36], "no data chunk"},
	}
	for _, tt := range tests {
		_, err := DecodeWAV(tt.data)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want it to mention %q", tt.name, err, tt.want)
		}
	}
}

func TestReadWAVNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clip.wav")
	if err := os.WriteFile(path, []byte("RIFF"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadWAV(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("ReadWAV(%s) error = %v", path, err)
	}
}
