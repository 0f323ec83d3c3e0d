// Package tensorboard writes and reads TensorBoard event files
// (events.out.tfevents.*): a sequence of records, each a little-endian
// uint64 length, the masked CRC-32C of those 8 bytes, the payload (an Event
// protocol buffer) and the masked CRC-32C of the payload.
package tensorboard

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of tensorflow.Event, tensorflow.Summary and Summary.Value.
const (
	eventWallTime    = 1
	eventStep        = 2
	eventFileVersion = 3
	eventSummary     = 5
	summaryValue     = 1
	valueTag         = 1
	valueSimple      = 2
)

// maskedCRC is the record checksum: CRC-32C rotated right by 15 bits plus a
// constant, as TensorFlow's record writer masks it.
func maskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) // the table is built once by package crc32
	return (c>>15 | c<<17) + 0xa282ead8
}

// Writer appends events to one event file.
type Writer struct {
	f    *os.File
	buf  *bufio.Writer
	Path string
}

// Create starts a new event file in dir, named as TensorBoard expects.
func Create(dir string, now time.Time) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("tensorboard: %w", err)
	}
	host, err := os.Hostname()
	if err != nil {
		host = "localhost"
	}
	// TensorBoard reads every events.out.tfevents.* file of a folder; a
	// resumed run adds one, so the name carries the pid and a counter.
	base := filepath.Join(dir, "events.out.tfevents."+strconv.FormatInt(now.Unix(), 10)+"."+host+"."+strconv.Itoa(os.Getpid()))
	path := base
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644)
	for i := 1; errors.Is(err, os.ErrExist) && i < 100; i++ {
		path = base + "." + strconv.Itoa(i)
		f, err = os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644)
	}
	if err != nil {
		return nil, fmt.Errorf("tensorboard: %w", err)
	}
	w := &Writer{f: f, buf: bufio.NewWriter(f), Path: path}
	ev := protowire.AppendTag(nil, eventWallTime, protowire.Fixed64Type)
	ev = protowire.AppendFixed64(ev, math.Float64bits(seconds(now)))
	ev = protowire.AppendTag(ev, eventFileVersion, protowire.BytesType)
	ev = protowire.AppendString(ev, "brain.Event:2")
	if err := w.record(ev); err != nil {
		f.Close()
		return nil, err
	}
	return w, w.Flush()
}

func seconds(t time.Time) float64 { return float64(t.Unix()) + float64(t.Nanosecond())/1e9 }

func (w *Writer) record(payload []byte) error {
	var head [12]byte
	binary.LittleEndian.PutUint64(head[:8], uint64(len(payload)))
	binary.LittleEndian.PutUint32(head[8:], maskedCRC(head[:8]))
	var tail [4]byte
	binary.LittleEndian.PutUint32(tail[:], maskedCRC(payload))
	for _, b := range [][]byte{head[:], payload, tail[:]} {
		if _, err := w.buf.Write(b); err != nil {
			return fmt.Errorf("tensorboard: write %s: %w", w.Path, err)
		}
	}
	return nil
}

// Scalars writes one event holding the given scalars at a step.
func (w *Writer) Scalars(step int64, wall time.Time, values map[string]float64) error {
	tags := make([]string, 0, len(values))
	for t := range values {
		tags = append(tags, t)
	}
	slices.Sort(tags)
	var summary []byte
	for _, tag := range tags {
		v := protowire.AppendTag(nil, valueTag, protowire.BytesType)
		v = protowire.AppendString(v, tag)
		v = protowire.AppendTag(v, valueSimple, protowire.Fixed32Type)
		v = protowire.AppendFixed32(v, math.Float32bits(float32(values[tag])))
		summary = protowire.AppendTag(summary, summaryValue, protowire.BytesType)
		summary = protowire.AppendBytes(summary, v)
	}
	ev := protowire.AppendTag(nil, eventWallTime, protowire.Fixed64Type)
	ev = protowire.AppendFixed64(ev, math.Float64bits(seconds(wall)))
	ev = protowire.AppendTag(ev, eventStep, protowire.VarintType)
	ev = protowire.AppendVarint(ev, uint64(step))
	ev = protowire.AppendTag(ev, eventSummary, protowire.BytesType)
	ev = protowire.AppendBytes(ev, summary)
	return w.record(ev)
}

// Flush writes buffered events through to the file and syncs it.
func (w *Writer) Flush() error {
	if err := w.buf.Flush(); err != nil {
		return fmt.Errorf("tensorboard: write %s: %w", w.Path, err)
	}
	return w.f.Sync()
}

// Close flushes and closes the file.
func (w *Writer) Close() error {
	err := w.Flush()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Event is one decoded event.
type Event struct {
	WallTime    float64
	Step        int64
	FileVersion string
	Scalars     map[string]float32
}

// ReadFile decodes an event file, checking every record's framing and
// checksums.
func ReadFile(path string) ([]Event, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []Event
	for off := 0; off < len(data); {
		if len(data)-off < 12 {
			return out, fmt.Errorf("%s: record at byte %d: %w", path, off, io.ErrUnexpectedEOF)
		}
		head := data[off : off+8]
		if got, want := binary.LittleEndian.Uint32(data[off+8:]), maskedCRC(head); got != want {
			return out, fmt.Errorf("%s: record at byte %d: length checksum %08x, want %08x", path, off, got, want)
		}
		n := binary.LittleEndian.Uint64(head)
		if n > uint64(len(data)-off-16) {
			return out, fmt.Errorf("%s: record at byte %d: length %d runs past the file", path, off, n)
		}
		payload := data[off+12 : off+12+int(n)]
		if got, want := binary.LittleEndian.Uint32(data[off+12+int(n):]), maskedCRC(payload); got != want {
			return out, fmt.Errorf("%s: record at byte %d: payload checksum %08x, want %08x", path, off, got, want)
		}
		ev, err := decodeEvent(payload)
		if err != nil {
			return out, fmt.Errorf("%s: record at byte %d: %w", path, off, err)
		}
		out = append(out, ev)
		off += 16 + int(n)
	}
	return out, nil
}

// fields walks a protobuf message, calling f for each field.
func fields(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var u uint32
			u, n = protowire.ConsumeFixed32(b)
			x = uint64(u)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := f(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

func decodeEvent(b []byte) (Event, error) {
	ev := Event{Scalars: map[string]float32{}}
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch num {
		case eventWallTime:
			ev.WallTime = math.Float64frombits(x)
		case eventStep:
			ev.Step = int64(x)
		case eventFileVersion:
			ev.FileVersion = string(v)
		case eventSummary:
			return fields(v, func(num protowire.Number, _ protowire.Type, val []byte, _ uint64) error {
				if num != summaryValue {
					return nil
				}
				var tag string
				var simple float32
				has := false
				err := fields(val, func(num protowire.Number, _ protowire.Type, v []byte, x uint64) error {
					switch num {
					case valueTag:
						tag = string(v)
					case valueSimple:
						simple, has = math.Float32frombits(uint32(x)), true
					}
					return nil
				})
				if err == nil && has {
					ev.Scalars[tag] = simple
				}
				return err
			})
		}
		return nil
	})
	if err != nil {
		return ev, errors.Join(errors.New("malformed event"), err)
	}
	return ev, nil
}
