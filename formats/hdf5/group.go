package hdf5

import (
	"errors"
	"fmt"
)

// maxTreeDepth bounds B-tree recursion, so a corrupt tree cannot recurse
// without end.
const maxTreeDepth = 64

// links returns the hard links of a group object: name → object header
// address.
func (f *File) links(o *object) (map[string]uint64, error) {
	if m, ok := o.find(msgSymbolTable); ok {
		return f.symbolTable(m)
	}
	if m, ok := o.find(msgLinkInfo); ok {
		r := &reader{f: f, b: m.data}
		r.skip(1) // version
		flags := r.u8()
		if flags&1 != 0 {
			r.skip(8) // maximum creation index
		}
		heap := r.addr()
		if r.err != nil {
			return nil, fmt.Errorf("link info message: %w", r.err)
		}
		if !f.undefined(heap) {
			return nil, unsupported("dense link storage (fractal heap) in group at %#x", o.addr)
		}
	}
	out := map[string]uint64{}
	isGroup := false
	for _, m := range o.messages {
		switch m.typ {
		case msgLinkInfo:
			isGroup = true
		case msgLink:
			isGroup = true
			name, addr, hard, err := f.link(m.data)
			if err != nil {
				return nil, err
			}
			if hard {
				out[name] = addr
			}
		}
	}
	if !isGroup {
		return nil, errors.New("object is not a group")
	}
	return out, nil
}

// link parses a link message; hard is false for soft and external links,
// which this package does not follow.
func (f *File) link(data []byte) (name string, addr uint64, hard bool, err error) {
	r := &reader{f: f, b: data}
	if v := r.u8(); r.err == nil && v != 1 {
		return "", 0, false, fmt.Errorf("link message version %d is not 1", v)
	}
	flags := r.u8()
	linkType := 0
	if flags&0x08 != 0 {
		linkType = r.u8()
	}
	if flags&0x04 != 0 {
		r.skip(8) // creation order
	}
	if flags&0x10 != 0 {
		r.skip(1) // name character set
	}
	n := r.uint(1 << (flags & 3))
	if r.err == nil && n > uint64(len(data)) {
		return "", 0, false, fmt.Errorf("link message: name length %d exceeds the message", n)
	}
	nameBytes := r.bytes(int(n))
	if linkType == 0 {
		addr = r.addr()
	}
	if r.err != nil {
		return "", 0, false, fmt.Errorf("link message: %w", r.err)
	}
	return string(nameBytes), addr, linkType == 0, nil
}

// symbolTable reads an old-style group: a v1 B-tree whose leaves are
// symbol-table nodes, with names in a local heap.
func (f *File) symbolTable(m message) (map[string]uint64, error) {
	r := &reader{f: f, b: m.data}
	btree, heapAddr := r.addr(), r.addr()
	if r.err != nil {
		return nil, fmt.Errorf("symbol table message: %w", r.err)
	}
	heap, err := f.localHeap(heapAddr)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	err = f.walkBTree(btree, 0, f.sizeLengths, func(_ []byte, node uint64) error {
		return f.symbolNode(node, heap, out)
	})
	if err != nil {
		return nil, fmt.Errorf("group B-tree: %w", err)
	}
	return out, nil
}

// localHeap returns the data segment of the local heap at addr.
func (f *File) localHeap(addr uint64) ([]byte, error) {
	r := f.at(addr)
	if err := r.signature("HEAP"); err != nil {
		return nil, fmt.Errorf("local heap at %#x: %w", addr, err)
	}
	r.skip(4) // version, reserved
	size := r.length()
	r.length() // free list head
	dataAddr := r.addr()
	if r.err != nil {
		return nil, fmt.Errorf("local heap at %#x: %w", addr, r.err)
	}
	d := f.at(dataAddr)
	if size > uint64(len(f.data)) {
		return nil, fmt.Errorf("local heap at %#x: %w", addr, errTruncated)
	}
	seg := d.bytes(int(size))
	if d.err != nil {
		return nil, fmt.Errorf("local heap at %#x: %w", addr, d.err)
	}
	return seg, nil
}

// symbolNode adds the entries of the symbol-table node at addr to out.
func (f *File) symbolNode(addr uint64, heap []byte, out map[string]uint64) error {
	r := f.at(addr)
	if err := r.signature("SNOD"); err != nil {
		return fmt.Errorf("symbol table node at %#x: %w", addr, err)
	}
	r.skip(2) // version, reserved
	n := r.u16()
	for range n {
		nameOff := r.addr()
		header := r.addr()
		r.skip(24) // cache type, reserved, scratch pad
		if r.err != nil {
			return fmt.Errorf("symbol table node at %#x: %w", addr, r.err)
		}
		if nameOff >= uint64(len(heap)) {
			return fmt.Errorf("symbol table node at %#x: name offset %d outside the %d-byte local heap", addr, nameOff, len(heap))
		}
		out[cstring(heap[nameOff:])] = header
	}
	return nil
}

// walkBTree calls visit with the key and child address of every entry of
// the level-0 nodes of the v1 B-tree at addr. nodeType is 0 for group trees
// and 1 for chunk trees; keySize is the byte size of one key.
func (f *File) walkBTree(addr uint64, nodeType, keySize int, visit func(key []byte, child uint64) error) error {
	return f.walkNode(addr, nodeType, keySize, 0, map[uint64]bool{}, visit)
}

// walkNode is walkBTree for the node at addr, depth levels below the root;
// seen holds the nodes already visited, so that a corrupt tree cannot make
// the walk revisit (and multiply) nodes.
func (f *File) walkNode(addr uint64, nodeType, keySize, depth int, seen map[uint64]bool, visit func(key []byte, child uint64) error) error {
	if depth > maxTreeDepth {
		return errors.New("B-tree deeper than any real file")
	}
	if seen[addr] {
		return fmt.Errorf("B-tree node at %#x reached twice", addr)
	}
	seen[addr] = true
	r := f.at(addr)
	if err := r.signature("TREE"); err != nil {
		return fmt.Errorf("node at %#x: %w", addr, err)
	}
	typ, level, entries := r.u8(), r.u8(), r.u16()
	r.addr() // left sibling
	r.addr() // right sibling
	if r.err != nil {
		return fmt.Errorf("node at %#x: %w", addr, r.err)
	}
	if typ != nodeType {
		return fmt.Errorf("node at %#x has type %d, want %d", addr, typ, nodeType)
	}
	for range entries {
		key := r.bytes(keySize)
		child := r.addr()
		if r.err != nil {
			return fmt.Errorf("node at %#x: %w", addr, r.err)
		}
		var err error
		if level > 0 {
			err = f.walkNode(child, nodeType, keySize, depth+1, seen, visit)
		} else {
			err = visit(key, child)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
