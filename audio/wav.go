package audio

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
)

// Clip is decoded audio: one slice of samples per channel, scaled to [-1, 1]
// the way torchaudio.load scales them (integer PCM divided by 2^(bits-1),
// unsigned 8-bit centred on 128 first, float samples as stored).
type Clip struct {
	Rate     int         // samples per second
	Channels [][]float32 // Channels[c][i]: sample i of channel c
}

// Len is the number of samples per channel.
func (c *Clip) Len() int {
	if len(c.Channels) == 0 {
		return 0
	}
	return len(c.Channels[0])
}

// Mono averages the channels sample by sample (a mono clip is returned as is).
func (c *Clip) Mono() []float32 {
	if len(c.Channels) == 1 {
		return c.Channels[0]
	}
	out := make([]float32, c.Len())
	for i := range out {
		var s float64
		for _, ch := range c.Channels {
			s += float64(ch[i])
		}
		out[i] = float32(s / float64(len(c.Channels)))
	}
	return out
}

// MaxRate is the highest sample rate ReadWAV accepts: 768 kHz, the highest
// rate audio interfaces record at. A larger rate in a header is corruption,
// and feeding it to the resampler would take hours.
const MaxRate = 768000

// WAV format codes (the fmt chunk's wFormatTag).
const (
	formatPCM        = 1
	formatFloat      = 3
	formatExtensible = 0xFFFE
)

// ReadWAV decodes the RIFF/WAVE file at path; errors name the file.
func ReadWAV(path string) (*Clip, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := DecodeWAV(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// wavFormat is what the fmt chunk says about the samples.
type wavFormat struct {
	code       int // formatPCM or formatFloat (the sub-format for extensible files)
	channels   int
	rate       int
	blockAlign int
	bits       int
}

// DecodeWAV decodes a RIFF/WAVE file held in memory. It reads integer PCM of
// 8, 16, 24 or 32 bits and IEEE float of 32 or 64 bits (plain or
// WAVE_FORMAT_EXTENSIBLE), any number of channels, and skips chunks other
// than fmt and data.
func DecodeWAV(data []byte) (*Clip, error) {
	if len(data) < 12 {
		return nil, fmt.Errorf("truncated WAV: %d bytes, a RIFF header needs 12", len(data))
	}
	if string(data[0:4]) != "RIFF" || string(data[8:12]) != "WAVE" {
		return nil, fmt.Errorf("not a RIFF/WAVE file: starts with %q", data[0:min(12, len(data))])
	}
	var (
		format  *wavFormat
		samples []byte
	)
	for off := 12; off < len(data) && samples == nil; {
		if len(data)-off < 8 {
			return nil, fmt.Errorf("truncated WAV: chunk header at byte %d needs 8 bytes, %d left", off, len(data)-off)
		}
		id := string(data[off : off+4])
		size := int64(binary.LittleEndian.Uint32(data[off+4 : off+8]))
		body := off + 8
		if size > int64(len(data)-body) {
			return nil, fmt.Errorf("truncated WAV: %q chunk at byte %d declares %d bytes, %d left in the file", id, off, size, len(data)-body)
		}
		chunk := data[body : body+int(size)]
		switch id {
		case "fmt ":
			f, err := parseFmt(chunk)
			if err != nil {
				return nil, err
			}
			format = f
		case "data":
			if format == nil {
				return nil, fmt.Errorf("data chunk at byte %d comes before the fmt chunk", off)
			}
			if len(chunk)%format.blockAlign != 0 {
				return nil, fmt.Errorf("bad data chunk size %d: not a multiple of the block size %d (%d channels × %d bits)",
					len(chunk), format.blockAlign, format.channels, format.bits)
			}
			samples = chunk
		}
		off = body + int(size) + int(size&1) // chunks are padded to an even length
	}
	if format == nil {
		return nil, fmt.Errorf("no fmt chunk")
	}
	if samples == nil {
		return nil, fmt.Errorf("no data chunk")
	}
	return decodeSamples(samples, format)
}

func parseFmt(chunk []byte) (*wavFormat, error) {
	if len(chunk) < 16 {
		return nil, fmt.Errorf("bad fmt chunk size %d: need at least 16", len(chunk))
	}
	le := binary.LittleEndian
	f := &wavFormat{
		code:       int(le.Uint16(chunk[0:2])),
		channels:   int(le.Uint16(chunk[2:4])),
		rate:       int(le.Uint32(chunk[4:8])),
		blockAlign: int(le.Uint16(chunk[12:14])),
		bits:       int(le.Uint16(chunk[14:16])),
	}
	if f.code == formatExtensible {
		// cbSize, valid bits, channel mask, then a GUID whose first two bytes are the format code.
		if len(chunk) < 40 {
			return nil, fmt.Errorf("bad fmt chunk size %d: WAVE_FORMAT_EXTENSIBLE needs 40", len(chunk))
		}
		f.code = int(le.Uint16(chunk[24:26]))
	}
	switch {
	case f.code == formatPCM && (f.bits == 8 || f.bits == 16 || f.bits == 24 || f.bits == 32):
	case f.code == formatFloat && (f.bits == 32 || f.bits == 64):
	case f.code == formatPCM || f.code == formatFloat:
		return nil, fmt.Errorf("unsupported sample size: %d bits with format code %d (want PCM 8/16/24/32 or float 32/64)", f.bits, f.code)
	default:
		return nil, fmt.Errorf("unsupported format code %#x (want 1 = PCM or 3 = IEEE float)", f.code)
	}
	if f.channels == 0 {
		return nil, fmt.Errorf("fmt chunk declares 0 channels")
	}
	if f.rate == 0 || f.rate > MaxRate {
		return nil, fmt.Errorf("fmt chunk declares a sample rate of %d Hz: want 1 to %d Hz", f.rate, MaxRate)
	}
	if want := f.channels * f.bits / 8; f.blockAlign != want {
		return nil, fmt.Errorf("fmt chunk block size %d does not match %d channels × %d bits (want %d)", f.blockAlign, f.channels, f.bits, want)
	}
	return f, nil
}

// decodeSamples decodes the data chunk; a float sample that is NaN or
// infinite is an error (integer PCM cannot hold one), so no feature file
// is ever computed from it.
func decodeSamples(b []byte, f *wavFormat) (*Clip, error) {
	n := len(b) / f.blockAlign
	width := f.bits / 8
	c := &Clip{Rate: f.rate, Channels: make([][]float32, f.channels)}
	for ch := range c.Channels {
		c.Channels[ch] = make([]float32, n)
	}
	le := binary.LittleEndian
	for i := range n {
		for ch := range f.channels {
			s := b[i*f.blockAlign+ch*width:]
			var v float32
			switch {
			case f.code == formatFloat && f.bits == 32:
				v = math.Float32frombits(le.Uint32(s))
			case f.code == formatFloat:
				v = float32(math.Float64frombits(le.Uint64(s)))
			case f.bits == 8:
				v = float32(int(s[0])-128) / (1 << 7)
			case f.bits == 16:
				v = float32(int16(le.Uint16(s))) / (1 << 15)
			case f.bits == 24:
				v = float32(int32(uint32(s[0])<<8|uint32(s[1])<<16|uint32(s[2])<<24)>>8) / (1 << 23)
			default:
				v = float32(float64(int32(le.Uint32(s))) / (1 << 31))
			}
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("float sample %d of channel %d is %v: the file holds no valid audio there", i, ch, v)
			}
			c.Channels[ch][i] = v
		}
	}
	return c, nil
}
