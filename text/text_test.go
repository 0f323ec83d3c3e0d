package text

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// testdata/vocab.txt is a 44-token vocabulary; ids are line numbers from 0:
// [PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3, [MASK] 4, ! 5, # 6, "," 7, - 8, . 9,
// ' 10, ( 11, ) 12, $ 13, the 14, best 15, pizza 16, in 17, new 18, york 19,
// cafe 20, creme 21, brulee 22, ##s 23, play 24, ##ing 25, un 26, ##want 27,
// ##ed 28, 食 29, 物 30, ##a 31, a 32, rt 33, http 34, : 35, / 36,
// recipe 37, ramen 38, οδος 39, ##za 40, piz 41, uber 42, naive 43.
//
// Debian has no python3-transformers, so the expected ids below are derived
// by hand from HuggingFace's BertTokenizer rules (BasicTokenizer with
// do_lower_case, then WordPiece), each case noting the rule it exercises.
func loadTestVocab(t *testing.T) *Tokenizer {
	t.Helper()
	tok, err := LoadVocab(filepath.Join("testdata", "vocab.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestEncodeMatchesBertTokenizer(t *testing.T) {
	tok := loadTestVocab(t)
	as100 := strings.Repeat("a", 100)
	truncatedAs := append([]int64{2, 32}, slices.Repeat([]int64{31}, 37)...)
	cases := []struct {
		name, text string
		want       []int64 // before [SEP] and padding; nil means only [CLS]
	}{
		{"lower case, punctuation split", "The best pizza in New York!", []int64{2, 14, 15, 16, 17, 18, 19, 5}},
		{"accents stripped", "Café Crème Brûlée", []int64{2, 20, 21, 22}},
		{"decomposed accents", "Cafe\u0301 Cre\u0300me", []int64{2, 20, 21}},
		{"## continuations", "playing unwanted", []int64{2, 24, 25, 26, 27, 28}},
		{"longest match first", "pizzaza", []int64{2, 16, 40}},
		{"CJK split from letters", "食物pizza ramen食", []int64{2, 29, 30, 16, 38, 29}},
		{"every punctuation char is a token", "pizza,ramen.(best)", []int64{2, 16, 7, 38, 9, 11, 15, 12}},
		{"ASCII symbols are punctuation", "$5", []int64{2, 13, 1}},
		{"apostrophe and hyphen", "naïve-Über's", []int64{2, 43, 8, 42, 10, 1}},
		{"unknown word", "xyz pizza", []int64{2, 1, 16}},
		{"unspellable remainder makes the whole word unknown", "pizza🍕", []int64{2, 1}},
		{"word over 100 characters", as100 + "a", []int64{2, 1}},
		{"controls dropped, whitespace kinds split", "the\u200b best\tpizza\u00a0in\r\nnew york\x00", []int64{2, 14, 15, 16, 17, 18, 19}},
		{"final sigma", "ΟΔΟΣ", []int64{2, 39}},
		{"literal special token kept", "pizza [SEP] ramen[MASK]", []int64{2, 16, 3, 38, 4}},
		{"lower-case special text is not special", "[sep]", []int64{2, 1, 1, 1}}, // "[", "sep", "]": none in the vocabulary
		{"truncation to 38 pieces", as100, truncatedAs},
		{"empty", "", []int64{2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := make([]int64, 40)
			n, err := tok.Encode(got, c.text)
			if err != nil {
				t.Fatal(err)
			}
			want := append(append([]int64(nil), c.want...), 3)
			if n != len(want) {
				t.Errorf("%d ids before padding, want %d", n, len(want))
			}
			want = append(want, make([]int64, 40-len(want))...)
			if !slices.Equal(got, want) {
				t.Errorf("Encode(%q)\n got %v\nwant %v", c.text, got, want)
			}
		})
	}
}

func TestEncodeShortMaxLength(t *testing.T) {
	tok := loadTestVocab(t)
	got := make([]int64, 3)
	if _, err := tok.Encode(got, "the best pizza"); err != nil {
		t.Fatal(err)
	}
	if want := []int64{2, 14, 3}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := tok.Encode(make([]int64, 1), "x"); err == nil || !strings.Contains(err.Error(), "at least 2") {
		t.Errorf("max length 1: error %v, want one asking for at least 2", err)
	}
}

func TestReadVocab(t *testing.T) {
	cases := []struct {
		name, data, wantErr string
		size                int
	}{
		{"CRLF lines", "[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\npizza\r\n", "", 5},
		{"no final newline", "[PAD]\n[UNK]\n[CLS]\n[SEP]", "", 4},
		{"empty", "", "vocab.txt: the file is empty", 0},
		{"missing specials", "[PAD]\n[SEP]\npizza\n", "no [CLS], [UNK] line", 0},
	}
	for _, c := range cases {
		tok, err := ReadVocab(strings.NewReader(c.data), "vocab.txt")
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s: error %v, want one containing %q", c.name, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if tok.Size() != c.size {
			t.Errorf("%s: %d tokens, want %d", c.name, tok.Size(), c.size)
		}
	}
	tok, err := ReadVocab(strings.NewReader("x\n[UNK]\n[CLS]\n[SEP]\n[PAD]\n"), "v")
	if err != nil {
		t.Fatal(err)
	}
	if tok.PadID() != 4 {
		t.Errorf("[PAD] on line 4 has id %d, want 4", tok.PadID())
	}
	if _, err := LoadVocab(filepath.Join("testdata", "missing.txt")); err == nil || !strings.Contains(err.Error(), "missing.txt") {
		t.Errorf("missing file: error %v, want one naming the file", err)
	}
}

func TestCleanFoodCaption(t *testing.T) {
	cases := []struct{ in, want string }{
		{"RT  #best pizza http://t.co/abc def\r\nramen", "best pizza ramen"},
		{"RTpizza", "RTpizza"},                              // "RT" must be followed by whitespace
		{"pizza RT here", "pizza RT here"},                  // only a leading RT
		{"see https://x.y and\nhttp://z\n\nend", "see end"}, // every URL to its line end
		{"httpx://no http:/no", "httpx://no http:/no"},
		{"##pizza#", "pizza"},
	}
	for _, c := range cases {
		if got := CleanFoodCaption(c.in); got != c.want {
			t.Errorf("CleanFoodCaption(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	tok, err := LoadVocab(filepath.Join("testdata", "vocab.txt"))
	if err != nil {
		b.Fatal(err)
	}
	dst := make([]int64, 40)
	for b.Loop() {
		if _, err := tok.Encode(dst, "The best Café Crème Brûlée pizza in New York, playing unwanted!"); err != nil {
			b.Fatal(err)
		}
	}
}
