package data

import "fmt"

// The byte tokenizer maps every byte b of UTF-8 text to the id b, so ids 0..255 are bytes and the ids
// above them are special tokens. Text datasets (a string column) and the byte-level tasks (passkey,
// needle in a haystack) use these ids; a model reading them needs a vocabulary of at least ByteVocab.
const (
	Pad       = 256 // padding; carries no loss
	BOS       = 257 // beginning of a sequence (not added by Encode)
	EOS       = 258 // end of a document: Encode appends it, so packed documents stay separated
	Sep       = 259 // separator, free for tasks that need one
	ByteVocab = 260 // vocabulary size of the byte tokenizer
)

// Encode returns the byte ids of text followed by EOS.
func Encode(text string) []int32 {
	ids := make([]int32, 0, len(text)+1)
	return append(AppendBytes(ids, text), EOS)
}

// AppendBytes appends the byte ids of s (no special tokens) to dst.
func AppendBytes(dst []int32, s string) []int32 {
	for i := 0; i < len(s); i++ {
		dst = append(dst, int32(s[i]))
	}
	return dst
}

// Decode turns ids back into text: bytes are copied, special tokens are written as <pad>, <bos>,
// <eos>, <sep>, and anything else as <id N>.
func Decode(ids []int32) string {
	out := make([]byte, 0, len(ids))
	for _, id := range ids {
		switch {
		case id >= 0 && id < 256:
			out = append(out, byte(id))
		case id == Pad:
			out = append(out, "<pad>"...)
		case id == BOS:
			out = append(out, "<bos>"...)
		case id == EOS:
			out = append(out, "<eos>"...)
		case id == Sep:
			out = append(out, "<sep>"...)
		default:
			out = fmt.Appendf(out, "<id %d>", id)
		}
	}
	return string(out)
}
