package tensorboard

import (
	"encoding/binary"
	"os"
	"strings"
	"testing"
	"time"
)

// The check value of CRC-32C is 0xE3069283 for "123456789"; TensorFlow
// masks it as ((c >> 15) | (c << 17)) + 0xa282ead8.
func TestMaskedCRCMatchesTheRecordFormat(t *testing.T) {
	c := uint32(0xE3069283)
	want := (c>>15 | c<<17) + 0xa282ead8
	if got := maskedCRC([]byte("123456789")); got != want {
		t.Errorf("masked CRC-32C = %08x, want %08x", got, want)
	}
}

func TestScalarsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	start := time.Unix(1700000000, 250_000_000)
	w, err := Create(dir, start)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(w.Path, "events.out.tfevents.1700000000.") {
		t.Errorf("file name %s", w.Path)
	}
	steps := []map[string]float64{
		{"train/loss": 2.25, "val/acc": 0.5, "val/acc_audio": 0.25},
		{"train/loss": 1.5, "val/acc": 0.75, "lr": 0.125},
	}
	for i, s := range steps {
		if err := w.Scalars(int64(i), start.Add(time.Duration(i)*time.Second), s); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	events, err := ReadFile(w.Path)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 3 || events[0].FileVersion != "brain.Event:2" || events[0].WallTime != 1700000000.25 {
		t.Fatalf("events %+v", events)
	}
	for i, s := range steps {
		ev := events[i+1]
		if ev.Step != int64(i) || len(ev.Scalars) != len(s) {
			t.Errorf("event %d: %+v", i, ev)
		}
		for tag, v := range s {
			if float64(ev.Scalars[tag]) != v {
				t.Errorf("event %d: %s = %v, want %v", i, tag, ev.Scalars[tag], v)
			}
		}
	}

	// The first record's framing, byte by byte.
	data, _ := os.ReadFile(w.Path)
	n := binary.LittleEndian.Uint64(data[:8])
	if binary.LittleEndian.Uint32(data[8:12]) != maskedCRC(data[:8]) || binary.LittleEndian.Uint32(data[12+n:]) != maskedCRC(data[12:12+n]) {
		t.Error("the first record's checksums are wrong")
	}
	// A flipped byte is caught.
	data[len(data)-6] ^= 0xff
	bad := w.Path + ".bad"
	os.WriteFile(bad, data, 0o644)
	if _, err := ReadFile(bad); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("a corrupted record: %v", err)
	}
	os.WriteFile(bad, data[:len(data)-3], 0o644)
	if _, err := ReadFile(bad); err == nil {
		t.Error("a truncated file reads without error")
	}
}
