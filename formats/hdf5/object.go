package hdf5

import (
	"errors"
	"fmt"
)

// Header message types this package reads.
const (
	msgDataspace    = 0x0001
	msgLinkInfo     = 0x0002
	msgDatatype     = 0x0003
	msgLink         = 0x0006
	msgLayout       = 0x0008
	msgFilters      = 0x000B
	msgContinuation = 0x0010
	msgSymbolTable  = 0x0011
)

// maxMessages bounds the messages gathered from one object header, so that
// a corrupt continuation chain cannot loop or exhaust memory.
const maxMessages = 1 << 16

// message is one object header message.
type message struct {
	typ   int
	flags int
	data  []byte
}

// object is a parsed object header.
type object struct {
	addr     uint64
	messages []message
}

// find returns the first message of type typ.
func (o *object) find(typ int) (message, bool) {
	for _, m := range o.messages {
		if m.typ == typ {
			return m, true
		}
	}
	return message{}, false
}

// object parses the object header at addr, following continuation blocks.
func (f *File) object(addr uint64) (*object, error) {
	r := f.at(addr)
	if r.err != nil {
		return nil, fmt.Errorf("object header at %#x: %w", addr, r.err)
	}
	o := &object{addr: addr}
	var err error
	if r.p+4 <= len(f.data) && string(f.data[r.p:r.p+4]) == "OHDR" {
		err = f.objectV2(o, r)
	} else {
		err = f.objectV1(o, r)
	}
	if err != nil {
		return nil, fmt.Errorf("object header at %#x: %w", addr, err)
	}
	return o, nil
}

// block is a range of header messages still to parse, at an absolute file
// offset (continuation addresses are made absolute by addMessage).
type block struct{ addr, size uint64 }

// objectV1 parses a version 1 object header: a 16-byte prefix, then 8-byte
// aligned messages with 8-byte headers.
func (f *File) objectV1(o *object, r *reader) error {
	version := r.u8()
	if r.err == nil && version != 1 {
		return fmt.Errorf("object header version %d is not 1 or 2", version)
	}
	r.skip(1)
	count := r.u16()
	r.skip(4) // reference count
	size := r.u32()
	r.skip(4) // padding to 8-byte alignment
	if r.err != nil {
		return r.err
	}
	pending := []block{{uint64(r.p), size}}
	for len(pending) > 0 && len(o.messages) < count {
		b := pending[0]
		pending = pending[1:]
		br, err := f.blockReader(b)
		if err != nil {
			return err
		}
		for len(br.b)-br.p >= 8 && len(o.messages) < count {
			typ, msize, flags := br.u16(), br.u16(), br.u8()
			br.skip(3)
			data := br.bytes(msize)
			if br.err != nil {
				return br.err
			}
			next, err := f.addMessage(o, message{typ: typ, flags: flags, data: data})
			if err != nil {
				return err
			}
			pending = append(pending, next...)
		}
	}
	return nil
}

// blockReader returns a reader confined to block b.
func (f *File) blockReader(b block) (*reader, error) {
	if b.addr > uint64(len(f.data)) || b.size > uint64(len(f.data))-b.addr {
		return nil, errTruncated
	}
	return &reader{f: f, b: f.data[:b.addr+b.size], p: int(b.addr)}, nil
}

// objectV2 parses a version 2 object header ("OHDR") and its "OCHK"
// continuation blocks.
func (f *File) objectV2(o *object, r *reader) error {
	r.skip(4)
	if v := r.u8(); r.err == nil && v != 2 {
		return fmt.Errorf("object header version %d is not 2", v)
	}
	flags := r.u8()
	if flags&0x20 != 0 {
		r.skip(16) // access, modification, change and birth times
	}
	if flags&0x10 != 0 {
		r.skip(4) // attribute phase change values
	}
	size := r.uint(1 << (flags & 3))
	if r.err != nil {
		return r.err
	}
	return f.messagesV2(o, flags, uint64(r.p), size)
}

// messagesV2 parses the messages of one version 2 chunk at absolute offset
// start, then any continuation chunks they name.
func (f *File) messagesV2(o *object, hflags int, start, size uint64) error {
	pending := []block{{start, size}}
	first := true
	for len(pending) > 0 {
		b := pending[0]
		pending = pending[1:]
		br, err := f.blockReader(b)
		if err != nil {
			return err
		}
		if !first {
			if err := br.signature("OCHK"); err != nil {
				return err
			}
			br.b = br.b[:len(br.b)-4] // checksum
		}
		first = false
		hdr := 4
		if hflags&0x04 != 0 {
			hdr = 6 // creation order
		}
		for len(br.b)-br.p >= hdr {
			typ, msize, mflags := br.u8(), br.u16(), br.u8()
			if hflags&0x04 != 0 {
				br.skip(2)
			}
			data := br.bytes(msize)
			if br.err != nil {
				return br.err
			}
			next, err := f.addMessage(o, message{typ: typ, flags: mflags, data: data})
			if err != nil {
				return err
			}
			pending = append(pending, next...)
		}
	}
	return nil
}

// addMessage records m, or for a continuation message returns the block it
// points to (as an absolute offset).
func (f *File) addMessage(o *object, m message) ([]block, error) {
	if len(o.messages) >= maxMessages {
		return nil, errors.New("too many header messages (corrupt continuation chain?)")
	}
	if m.typ != msgContinuation {
		o.messages = append(o.messages, m)
		return nil, nil
	}
	r := &reader{f: f, b: m.data}
	addr, size := r.addr(), r.length()
	if r.err != nil {
		return nil, fmt.Errorf("continuation message: %w", r.err)
	}
	o.messages = append(o.messages, message{typ: msgContinuation}) // counts toward v1's message total
	return []block{{addr + f.base, size}}, nil
}
