package text

import (
	"strings"
	"unicode"
)

// CleanFoodCaption is the FOOD-101 loader's caption cleaning (spec §3): it
// removes a leading "RT" and the whitespace after it, every URL from "http://"
// or "https://" to the end of its line together with the line breaks that
// follow, and every '#'. These are the regular expressions ^RT[\s]+,
// https?:\/\/.*[\r\n]* and # applied in turn.
func CleanFoodCaption(s string) string {
	if rest, ok := strings.CutPrefix(s, "RT"); ok {
		if trimmed := strings.TrimLeftFunc(rest, unicode.IsSpace); len(trimmed) < len(rest) {
			s = trimmed
		}
	}
	var b strings.Builder
	for {
		i := urlStart(s)
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		s = s[i:]
		if end := strings.IndexByte(s, '\n'); end >= 0 {
			s = s[end:]
		} else {
			s = ""
		}
		s = strings.TrimLeft(s, "\r\n")
	}
	return strings.ReplaceAll(b.String(), "#", "")
}

// urlStart is the offset of the first "http://" or "https://" in s, or -1.
func urlStart(s string) int {
	for i := strings.Index(s, "http"); i >= 0; {
		rest := s[i+4:]
		if strings.HasPrefix(rest, "://") || strings.HasPrefix(rest, "s://") {
			return i
		}
		next := strings.Index(rest, "http")
		if next < 0 {
			return -1
		}
		i += 4 + next
	}
	return -1
}
