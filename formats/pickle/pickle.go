// Package pickle decodes a safe subset of Python's pickle format (protocols
// 2 to 5): the containers and scalars, the memo, and the few globals that
// NumPy uses to pickle arrays, so that BalancedAV audio (.pkl) and the
// CMU-MOSEI feature file can be read without Python.
//
// A pickle is a program for a stack machine; Python's unpickler imports and
// calls whatever globals it names. This decoder never does: a global is
// looked up in a fixed table of known, side-effect-free constructors (plus
// those a caller adds through Options.Globals), and any other global is an
// error naming it.
//
// Decoded values have these Go types:
//
//	None → nil              bool → bool            int → int64 or *big.Int
//	float → float64         str → string           bytes, bytearray → []byte
//	list → *List            tuple → Tuple          dict, OrderedDict → *Dict
//	numpy.ndarray, numpy scalar → *ndarray.Array   numpy.dtype → *ndarray.DType
//
// Python 2 byte strings (BINSTRING, SHORT_BINSTRING) decode as string.
package pickle

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"unicode/utf8"

	"bmc/formats/ndarray"
)

// List is a Python list. It is a pointer type because a pickle may append to
// a list after storing it in the memo.
type List struct{ Items []any }

// Tuple is a Python tuple.
type Tuple []any

// Dict is a Python dict (or collections.OrderedDict) in insertion order.
// A key set twice keeps its first position and its last value, as in Python,
// for keys of comparable Go types (string, int64, float64, bool, nil).
type Dict struct {
	Keys   []any
	Values []any
}

// Get returns the value stored under the string key, and whether it exists.
func (d *Dict) Get(key string) (any, bool) {
	for i, k := range d.Keys {
		if s, ok := k.(string); ok && s == key {
			return d.Values[i], true
		}
	}
	return nil, false
}

// set stores v under k, replacing the value of an equal existing key.
func (d *Dict) set(k, v any) {
	switch k.(type) {
	case string, int64, float64, bool, nil:
		for i, old := range d.Keys {
			if old == k {
				d.Values[i] = v
				return
			}
		}
	}
	d.Keys = append(d.Keys, k)
	d.Values = append(d.Values, v)
}

// Func is a Python callable the decoder may invoke for REDUCE or NEWOBJ: it
// receives the positional arguments and returns the constructed value.
type Func func(args Tuple) (any, error)

// Options extends the decoder for a caller's file format.
type Options struct {
	// Globals adds callables, keyed "module.name" (e.g.
	// "torch._utils._rebuild_tensor_v2"), to the built-in table. They take
	// precedence over built-ins of the same name. A nil Func admits a class
	// that may be passed around (as a *Global) but not called.
	Globals map[string]Func
	// PersistentLoad resolves a persistent id (BINPERSID). Without it, a
	// pickle that uses persistent ids is an error.
	PersistentLoad func(pid any) (any, error)
}

// ReadFile decodes the pickle file at path with no options. Errors name the
// file.
func ReadFile(path string) (any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pickle: %w", err)
	}
	v, err := Decode(data, Options{})
	if err != nil {
		return nil, fmt.Errorf("pickle: %s: %w", path, err)
	}
	return v, nil
}

// Decode runs the pickle in data up to its STOP opcode and returns the
// object it built. Bytes after STOP are ignored, as Python does. Decoded
// arrays and byte strings may share data's memory.
func Decode(data []byte, opts Options) (any, error) {
	v, _, err := DecodeNext(data, opts)
	return v, err
}

// DecodeNext is Decode that also returns the number of bytes the pickle
// used, up to and including STOP, for formats that write several pickles
// one after another.
func DecodeNext(data []byte, opts Options) (v any, n int, err error) {
	m := machine{data: data, opts: opts, memo: map[int]any{}}
	v, err = m.run()
	if err != nil {
		return nil, 0, fmt.Errorf("at byte %d: %w", m.opPos, err)
	}
	return v, m.pos, nil
}

// Global is the value of a GLOBAL or STACK_GLOBAL opcode: a callable from
// the built-in table or Options.Globals, or (with a nil Func) a class that is
// only meaningful as an argument, such as numpy.ndarray or torch.FloatStorage.
type Global struct {
	Name string // "module.name"
	fn   Func
}

// machine is the unpickler state.
type machine struct {
	data    []byte
	pos     int
	opPos   int // offset of the opcode being executed, for errors
	opts    Options
	stack   []any
	marks   []int
	memo    map[int]any
	pending []*arrayState // reconstructed arrays, each needing one BUILD
}

var errTruncated = errors.New("pickle truncated")

func (m *machine) read(n int) ([]byte, error) {
	if n < 0 || n > len(m.data)-m.pos {
		return nil, errTruncated
	}
	b := m.data[m.pos : m.pos+n]
	m.pos += n
	return b, nil
}

func (m *machine) u8() (int, error) {
	b, err := m.read(1)
	if err != nil {
		return 0, err
	}
	return int(b[0]), nil
}

func (m *machine) u16() (int, error) {
	b, err := m.read(2)
	if err != nil {
		return 0, err
	}
	return int(binary.LittleEndian.Uint16(b)), nil
}

func (m *machine) u32() (uint32, error) {
	b, err := m.read(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (m *machine) u64() (uint64, error) {
	b, err := m.read(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// sized reads a length of lenBytes (1, 4 or 8) bytes, then that many bytes.
func (m *machine) sized(lenBytes int) ([]byte, error) {
	var n uint64
	switch lenBytes {
	case 1:
		v, err := m.u8()
		n = uint64(v)
		if err != nil {
			return nil, err
		}
	case 4:
		v, err := m.u32()
		n = uint64(v)
		if err != nil {
			return nil, err
		}
	case 8:
		v, err := m.u64()
		n = v
		if err != nil {
			return nil, err
		}
	}
	if n > uint64(len(m.data)-m.pos) {
		return nil, errTruncated
	}
	return m.read(int(n))
}

// lengthSize is the byte width of the length prefix of a sized opcode.
func lengthSize(op byte) int {
	switch op {
	case 0x8a, 0x8c, 'C', 'U': // LONG1, SHORT_BINUNICODE, SHORT_BINBYTES, SHORT_BINSTRING
		return 1
	case 0x8d, 0x8e, 0x96: // BINUNICODE8, BINBYTES8, BYTEARRAY8
		return 8
	}
	return 4 // LONG4, BINUNICODE, BINBYTES, BINSTRING
}

// line reads up to and excluding the next newline (GLOBAL's operands).
func (m *machine) line() (string, error) {
	for i := m.pos; i < len(m.data); i++ {
		if m.data[i] == '\n' {
			s := string(m.data[m.pos:i])
			m.pos = i + 1
			return s, nil
		}
	}
	return "", errTruncated
}

func (m *machine) push(v any) { m.stack = append(m.stack, v) }

func (m *machine) pop() (any, error) {
	if len(m.stack) == 0 || (len(m.marks) > 0 && len(m.stack) == m.marks[len(m.marks)-1]) {
		return nil, errors.New("stack underflow")
	}
	v := m.stack[len(m.stack)-1]
	m.stack = m.stack[:len(m.stack)-1]
	return v, nil
}

func (m *machine) top() (any, error) {
	if len(m.stack) == 0 || (len(m.marks) > 0 && len(m.stack) == m.marks[len(m.marks)-1]) {
		return nil, errors.New("stack underflow")
	}
	return m.stack[len(m.stack)-1], nil
}

// popMark pops everything above the newest mark, and the mark.
func (m *machine) popMark() ([]any, error) {
	if len(m.marks) == 0 {
		return nil, errors.New("no MARK on the stack")
	}
	k := m.marks[len(m.marks)-1]
	m.marks = m.marks[:len(m.marks)-1]
	items := append([]any(nil), m.stack[k:]...)
	m.stack = m.stack[:k]
	return items, nil
}

func (m *machine) popN(n int) ([]any, error) {
	items := make([]any, n)
	for i := n - 1; i >= 0; i-- {
		v, err := m.pop()
		if err != nil {
			return nil, err
		}
		items[i] = v
	}
	return items, nil
}

func (m *machine) run() (any, error) {
	for {
		m.opPos = m.pos
		op, err := m.u8()
		if err != nil {
			return nil, errors.New("pickle truncated: no STOP opcode")
		}
		if op == '.' { // STOP
			v, err := m.pop()
			if err != nil {
				return nil, err
			}
			for _, a := range m.pending {
				if !a.built {
					return nil, errors.New("numpy array reconstructed but never given its state (BUILD)")
				}
			}
			return v, nil
		}
		if err := m.step(byte(op)); err != nil {
			return nil, err
		}
	}
}

// step executes one opcode other than STOP.
func (m *machine) step(op byte) error {
	switch op {
	case 0x80: // PROTO
		p, err := m.u8()
		if err != nil {
			return err
		}
		if p < 2 || p > 5 {
			return fmt.Errorf("protocol %d not supported (want 2 to 5)", p)
		}
	case 0x95: // FRAME: the frame's bytes follow inline
		_, err := m.u64()
		return err
	case '(': // MARK
		m.marks = append(m.marks, len(m.stack))
	case '0': // POP
		_, err := m.pop()
		return err
	case '1': // POP_MARK
		_, err := m.popMark()
		return err
	case '2': // DUP
		v, err := m.top()
		if err != nil {
			return err
		}
		m.push(v)
	case 'N':
		m.push(nil)
	case 0x88: // NEWTRUE
		m.push(true)
	case 0x89: // NEWFALSE
		m.push(false)
	case 'J': // BININT
		v, err := m.u32()
		if err != nil {
			return err
		}
		m.push(int64(int32(v)))
	case 'K': // BININT1
		v, err := m.u8()
		if err != nil {
			return err
		}
		m.push(int64(v))
	case 'M': // BININT2
		v, err := m.u16()
		if err != nil {
			return err
		}
		m.push(int64(v))
	case 0x8a, 0x8b: // LONG1, LONG4
		b, err := m.sized(lengthSize(op))
		if err != nil {
			return err
		}
		m.push(decodeLong(b))
	case 'G': // BINFLOAT, big-endian
		b, err := m.read(8)
		if err != nil {
			return err
		}
		m.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
	case 'X', 0x8c, 0x8d: // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
		b, err := m.sized(lengthSize(op))
		if err != nil {
			return err
		}
		if !utf8.Valid(b) {
			return errors.New("str is not valid UTF-8")
		}
		m.push(string(b))
	case 'T', 'U': // BINSTRING, SHORT_BINSTRING (Python 2 str)
		b, err := m.sized(lengthSize(op))
		if err != nil {
			return err
		}
		m.push(string(b))
	case 'B', 'C', 0x8e, 0x96: // BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8
		b, err := m.sized(lengthSize(op))
		if err != nil {
			return err
		}
		m.push(b)
	case 0x97: // NEXT_BUFFER
		return errors.New("out-of-band buffer (NEXT_BUFFER) not supported: the pickle needs buffers passed beside it")
	case 0x98: // READONLY_BUFFER: no effect on our values
	case ']': // EMPTY_LIST
		m.push(&List{})
	case 'l': // LIST
		items, err := m.popMark()
		if err != nil {
			return err
		}
		m.push(&List{Items: items})
	case 'a', 'e': // APPEND, APPENDS
		var items []any
		var err error
		if op == 'a' {
			items, err = m.popN(1)
		} else {
			items, err = m.popMark()
		}
		if err != nil {
			return err
		}
		t, err := m.top()
		if err != nil {
			return err
		}
		l, ok := t.(*List)
		if !ok {
			return fmt.Errorf("APPEND to a %s, not a list", typeName(t))
		}
		l.Items = append(l.Items, items...)
	case ')': // EMPTY_TUPLE
		m.push(Tuple{})
	case 't': // TUPLE
		items, err := m.popMark()
		if err != nil {
			return err
		}
		m.push(Tuple(items))
	case 0x85, 0x86, 0x87: // TUPLE1, TUPLE2, TUPLE3
		items, err := m.popN(int(op - 0x84))
		if err != nil {
			return err
		}
		m.push(Tuple(items))
	case '}': // EMPTY_DICT
		m.push(&Dict{})
	case 'd', 's', 'u': // DICT, SETITEM, SETITEMS
		var items []any
		var err error
		if op == 's' {
			items, err = m.popN(2)
		} else {
			items, err = m.popMark()
		}
		if err != nil {
			return err
		}
		if len(items)%2 != 0 {
			return errors.New("odd number of items for a dict")
		}
		d := &Dict{}
		if op != 'd' {
			t, err := m.top()
			if err != nil {
				return err
			}
			var ok bool
			if d, ok = t.(*Dict); !ok {
				return fmt.Errorf("SETITEM on a %s, not a dict", typeName(t))
			}
		}
		for i := 0; i < len(items); i += 2 {
			d.set(items[i], items[i+1])
		}
		if op == 'd' {
			m.push(d)
		}
	case 'c': // GLOBAL "module\nname\n"
		module, err := m.line()
		if err != nil {
			return err
		}
		name, err := m.line()
		if err != nil {
			return err
		}
		g, err := m.lookup(module, name)
		if err != nil {
			return err
		}
		m.push(g)
	case 0x93: // STACK_GLOBAL
		items, err := m.popN(2)
		if err != nil {
			return err
		}
		module, ok1 := items[0].(string)
		name, ok2 := items[1].(string)
		if !ok1 || !ok2 {
			return errors.New("STACK_GLOBAL operands are not strings")
		}
		g, err := m.lookup(module, name)
		if err != nil {
			return err
		}
		m.push(g)
	case 'R', 0x81: // REDUCE, NEWOBJ: callable(*args)
		items, err := m.popN(2)
		if err != nil {
			return err
		}
		v, err := call(items[0], items[1])
		if err != nil {
			return err
		}
		if a, ok := v.(*arrayState); ok {
			m.pending = append(m.pending, a)
			v = a.array
		}
		m.push(v)
	case 0x92: // NEWOBJ_EX: cls, args, kwargs
		items, err := m.popN(3)
		if err != nil {
			return err
		}
		if kw, ok := items[2].(*Dict); !ok || len(kw.Keys) > 0 {
			return errors.New("NEWOBJ_EX with keyword arguments not supported")
		}
		v, err := call(items[0], items[1])
		if err != nil {
			return err
		}
		m.push(v)
	case 'b': // BUILD
		state, err := m.pop()
		if err != nil {
			return err
		}
		obj, err := m.top()
		if err != nil {
			return err
		}
		if err := m.build(obj, state); err != nil {
			return err
		}
	case 'q', 'r', 'p': // BINPUT, LONG_BINPUT, PUT
		idx, err := m.memoIndex(op)
		if err != nil {
			return err
		}
		v, err := m.top()
		if err != nil {
			return err
		}
		m.memo[idx] = v
	case 0x94: // MEMOIZE
		v, err := m.top()
		if err != nil {
			return err
		}
		m.memo[len(m.memo)] = v
	case 'h', 'j', 'g': // BINGET, LONG_BINGET, GET
		idx, err := m.memoIndex(op)
		if err != nil {
			return err
		}
		v, ok := m.memo[idx]
		if !ok {
			return fmt.Errorf("memo entry %d used before it was stored", idx)
		}
		m.push(v)
	case 'Q': // BINPERSID
		pid, err := m.pop()
		if err != nil {
			return err
		}
		if m.opts.PersistentLoad == nil {
			return errors.New("persistent id (BINPERSID) but no persistent loader for this format")
		}
		v, err := m.opts.PersistentLoad(pid)
		if err != nil {
			return fmt.Errorf("persistent id: %w", err)
		}
		m.push(v)
	default:
		return fmt.Errorf("opcode %#02x (%q) not supported", op, rune(op))
	}
	return nil
}

// memoIndex reads the operand of a memo opcode.
func (m *machine) memoIndex(op byte) (int, error) {
	switch op {
	case 'q', 'h':
		return m.u8()
	case 'r', 'j':
		v, err := m.u32()
		return int(v), err
	}
	s, err := m.line() // PUT and GET carry a decimal line
	if err != nil {
		return 0, err
	}
	var idx int
	if _, err := fmt.Sscanf(s, "%d", &idx); err != nil || idx < 0 {
		return 0, fmt.Errorf("memo index %q is not a non-negative int", s)
	}
	return idx, nil
}

// lookup resolves a global through the caller's table, then the built-in
// one. Unknown globals are never imported or called.
func (m *machine) lookup(module, name string) (*Global, error) {
	key := module + "." + name
	if fn, ok := m.opts.Globals[key]; ok {
		return &Global{Name: key, fn: fn}, nil
	}
	if fn, ok := builtinGlobal(key); ok {
		return &Global{Name: key, fn: fn}, nil
	}
	return nil, fmt.Errorf("global %s is not allowed (this decoder only constructs known data types)", key)
}

// call invokes a global callable with a tuple of arguments.
func call(callable, args any) (any, error) {
	g, ok := callable.(*Global)
	if !ok {
		return nil, fmt.Errorf("call of a %s, not a known global", typeName(callable))
	}
	if g.fn == nil {
		return nil, fmt.Errorf("global %s cannot be called", g.Name)
	}
	t, ok := args.(Tuple)
	if !ok {
		return nil, fmt.Errorf("%s: arguments are a %s, not a tuple", g.Name, typeName(args))
	}
	v, err := g.fn(t)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", g.Name, err)
	}
	return v, nil
}

// build applies BUILD's state to obj (Python's __setstate__).
func (m *machine) build(obj, state any) error {
	switch o := obj.(type) {
	case *ndarray.Array:
		for _, p := range m.pending {
			if p.array == o && !p.built {
				return p.setState(state)
			}
		}
		return errors.New("BUILD on a numpy array that is not awaiting its state")
	case *ndarray.DType:
		return setDTypeState(o, state)
	}
	return fmt.Errorf("BUILD on a %s not supported", typeName(obj))
}

// decodeLong decodes a little-endian two's-complement integer.
func decodeLong(b []byte) any {
	if len(b) <= 8 {
		var u uint64
		for i := len(b) - 1; i >= 0; i-- {
			u = u<<8 | uint64(b[i])
		}
		if len(b) > 0 && len(b) < 8 && b[len(b)-1]&0x80 != 0 {
			u -= 1 << (8 * uint(len(b)))
		}
		return int64(u)
	}
	be := make([]byte, len(b))
	for i, c := range b {
		be[len(b)-1-i] = c
	}
	v := new(big.Int).SetBytes(be)
	if b[len(b)-1]&0x80 != 0 {
		v.Sub(v, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	if v.IsInt64() {
		return v.Int64()
	}
	return v
}

// typeName names the Python-side type of a decoded value for errors.
func typeName(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case *Global:
		return "global " + v.Name
	case *List:
		return "list"
	case Tuple:
		return "tuple"
	case *Dict:
		return "dict"
	case string:
		return "str"
	case []byte:
		return "bytes"
	case *ndarray.Array:
		return "numpy array"
	case *ndarray.DType:
		return "numpy dtype"
	}
	return fmt.Sprintf("%T", v)
}
