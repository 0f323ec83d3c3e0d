// Package text turns captions into the token ids the benchmark's text
// encoder reads: BERT's uncased WordPiece tokenizer, as HuggingFace's
// BertTokenizer(bert-base-uncased) computes tokenizer(text,
// padding="max_length", max_length=n, truncation=True)["input_ids"], and the
// FOOD-101 caption cleaning that precedes it.
package text

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// maxWordChars is BERT's max_input_chars_per_word: longer words become [UNK].
const maxWordChars = 100

// The special tokens a vocabulary must hold; [MASK] is optional.
const (
	clsToken  = "[CLS]"
	sepToken  = "[SEP]"
	padToken  = "[PAD]"
	unkToken  = "[UNK]"
	maskToken = "[MASK]"
)

// Tokenizer is an uncased BERT WordPiece tokenizer over a fixed vocabulary.
// It is safe for concurrent use.
type Tokenizer struct {
	vocab              map[string]int64
	cls, sep, pad, unk int64
	// special are the special tokens in the vocabulary, which input text
	// may contain literally.
	special []string
}

// LoadVocab reads a BERT vocab.txt (one token per line, id = line number
// from 0) and returns its tokenizer.
func LoadVocab(path string) (*Tokenizer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("BERT vocabulary: %w", err)
	}
	defer f.Close()
	return ReadVocab(f, path)
}

// ReadVocab reads a vocabulary in vocab.txt format from r; name says where
// it comes from in errors. Lines end in \n, \r\n or \r, as Python's text mode
// reads them; a repeated token takes its last line's id, as HuggingFace's
// load_vocab does.
func ReadVocab(r io.Reader, name string) (*Tokenizer, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("BERT vocabulary %s: %w", name, err)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("BERT vocabulary %s: the file is empty: want one token per line", name)
	}
	data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	data = bytes.ReplaceAll(data, []byte("\r"), []byte("\n"))
	t := &Tokenizer{vocab: map[string]int64{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, len(data)+1)
	var id int64
	for sc.Scan() {
		t.vocab[sc.Text()] = id
		id++
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("BERT vocabulary %s: %w", name, err)
	}
	var missing []string
	for _, s := range []struct {
		token string
		id    *int64
	}{{clsToken, &t.cls}, {sepToken, &t.sep}, {padToken, &t.pad}, {unkToken, &t.unk}} {
		v, ok := t.vocab[s.token]
		if !ok {
			missing = append(missing, s.token)
		}
		*s.id = v
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("BERT vocabulary %s (%d tokens): no %s line: want the special tokens [CLS], [SEP], [PAD] and [UNK]", name, id, strings.Join(missing, ", "))
	}
	for _, s := range []string{padToken, unkToken, clsToken, sepToken, maskToken} {
		if _, ok := t.vocab[s]; ok {
			t.special = append(t.special, s)
		}
	}
	return t, nil
}

// Size is the number of distinct tokens.
func (t *Tokenizer) Size() int { return len(t.vocab) }

// PadID is the id of [PAD].
func (t *Tokenizer) PadID() int64 { return t.pad }

// Encode writes the ids of [CLS] text [SEP] into dst, truncating the text's
// tokens to len(dst)-2 and filling the rest with [PAD], as
// tokenizer(text, padding="max_length", max_length=len(dst), truncation=True)
// does. It returns the number of ids before the padding.
func (t *Tokenizer) Encode(dst []int64, text string) (int, error) {
	if len(dst) < 2 {
		return 0, fmt.Errorf("BERT encode: max length %d: want at least 2 for [CLS] and [SEP]", len(dst))
	}
	n := 0
	dst[n] = t.cls
	n++
	for _, tok := range t.Tokenize(text) {
		if n == len(dst)-1 {
			break
		}
		dst[n] = t.vocab[tok]
		n++
	}
	dst[n] = t.sep
	n++
	for i := n; i < len(dst); i++ {
		dst[i] = t.pad
	}
	return n, nil
}

// Tokenize splits text into WordPiece tokens, each in the vocabulary
// ([UNK] for words it cannot spell). Special tokens written literally in the
// text ("[SEP]") stay whole, as HuggingFace's added-token splitting keeps them.
func (t *Tokenizer) Tokenize(text string) []string {
	var out []string
	for text != "" {
		at, special := t.nextSpecial(text)
		for _, word := range basicTokens(text[:at]) {
			out = t.wordPiece(out, word)
		}
		if special == "" {
			break
		}
		out = append(out, special)
		text = text[at+len(special):]
	}
	return out
}

// nextSpecial finds the first special token in s: its offset and itself, or
// len(s) and "".
func (t *Tokenizer) nextSpecial(s string) (int, string) {
	at, found := len(s), ""
	for _, sp := range t.special {
		if i := strings.Index(s, sp); i >= 0 && i < at {
			at, found = i, sp
		}
	}
	return at, found
}

// wordPiece appends word's greedy longest-match-first pieces ("##" marks a
// continuation), or [UNK] when some remainder has no match or the word is
// longer than maxWordChars.
func (t *Tokenizer) wordPiece(out []string, word string) []string {
	if utf8.RuneCountInString(word) > maxWordChars {
		return append(out, unkToken)
	}
	mark := len(out)
	for start := 0; start < len(word); {
		end, piece := len(word), ""
		for end > start {
			cand := word[start:end]
			if start > 0 {
				cand = "##" + cand
			}
			if _, ok := t.vocab[cand]; ok {
				piece = cand
				break
			}
			_, size := utf8.DecodeLastRuneInString(word[start:end])
			end -= size
		}
		if piece == "" {
			return append(out[:mark], unkToken)
		}
		out = append(out, piece)
		start = end
	}
	return out
}

// basicTokens is BERT's BasicTokenizer with lower-casing: drop control
// characters, turn whitespace into spaces, put spaces around CJK ideographs,
// lower-case, strip accents (NFD, then drop non-spacing marks) and split off
// every punctuation character.
func basicTokens(s string) []string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == 0 || r == utf8.RuneError || isControl(r):
		case isWhitespace(r):
			b.WriteByte(' ')
		case isCJK(r):
			b.WriteByte(' ')
			b.WriteRune(r)
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	var out []string
	for _, word := range strings.Fields(norm.NFC.String(b.String())) {
		word = norm.NFD.String(lower(word))
		start := -1 // start of the current run of non-punctuation
		for i, r := range word {
			if unicode.Is(unicode.Mn, r) {
				if start < 0 {
					start = i
				}
				continue
			}
			if isPunctuation(r) {
				if start >= 0 {
					out = appendStripped(out, word[start:i])
					start = -1
				}
				out = append(out, string(r))
				continue
			}
			if start < 0 {
				start = i
			}
		}
		if start >= 0 {
			out = appendStripped(out, word[start:])
		}
	}
	return out
}

// appendStripped appends s without its non-spacing marks, unless nothing is
// left.
func appendStripped(out []string, s string) []string {
	s = strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Mn, r) {
			return -1
		}
		return r
	}, s)
	if s == "" {
		return out
	}
	return append(out, s)
}

// lower is Python's str.lower for what BERT sees: per-rune lower-casing, with
// a capital sigma ending a word becoming the final form ς.
func lower(word string) string {
	runes := []rune(word)
	for i, r := range runes {
		if r == 'Σ' && i > 0 && isCased(runes[i-1]) && (i == len(runes)-1 || !isCased(runes[i+1])) {
			runes[i] = 'ς'
			continue
		}
		runes[i] = unicode.ToLower(r)
	}
	return string(runes)
}

func isCased(r rune) bool {
	return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r)
}

// isWhitespace is BERT's _is_whitespace: space, tab, newline, carriage return
// and the space separators (Zs).
func isWhitespace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || unicode.Is(unicode.Zs, r)
}

// isControl is BERT's _is_control: any "C" category (control, format,
// private use, surrogate, unassigned) except tab, newline and carriage return.
func isControl(r rune) bool {
	if r == '\t' || r == '\n' || r == '\r' {
		return false
	}
	return unicode.In(r, unicode.C) || !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z)
}

// isPunctuation is BERT's _is_punctuation: every non-alphanumeric printable
// ASCII character, and the Unicode punctuation categories.
func isPunctuation(r rune) bool {
	if r >= 33 && r <= 47 || r >= 58 && r <= 64 || r >= 91 && r <= 96 || r >= 123 && r <= 126 {
		return true
	}
	return unicode.In(r, unicode.P)
}

// isCJK is BERT's _is_chinese_char: the CJK Unified Ideographs blocks and
// their extensions and compatibility ideographs (not Hangul or kana).
func isCJK(r rune) bool {
	return r >= 0x4E00 && r <= 0x9FFF || r >= 0x3400 && r <= 0x4DBF ||
		r >= 0x20000 && r <= 0x2A6DF || r >= 0x2A700 && r <= 0x2B73F ||
		r >= 0x2B740 && r <= 0x2B81F || r >= 0x2B820 && r <= 0x2CEAF ||
		r >= 0xF900 && r <= 0xFAFF || r >= 0x2F800 && r <= 0x2FA1F
}
