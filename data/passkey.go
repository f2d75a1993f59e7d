package data

import (
	"fmt"
	"github.com/engramlx/engram/internal/field"
	"math"
	"math/rand/v2"
)

// Passkey is the passkey retrieval task (Mohtashami & Jaggi, 2023, "Landmark Attention"), at byte
// level: ids are the bytes of
//
//	intro, filler (head), "The pass key is 12345. Remember it. 12345 is the pass key. ",
//	filler (tail), "What is the pass key? The pass key is ", 12345
//
// exactly SeqLen bytes long. The filler is the repeated noise text (or Filler); the head holds
// round(Depth * filler length) of its bytes, moved forward to the next word start, so Depth 0 puts
// the key right after the intro and Depth 1 right before the question. The labels are the key's digits, each at the position before it
// (Digits labelled positions); everything else is Ignore. Ids are bytes, so any vocabulary of at
// least 256 works (ByteVocab with the tokenizer's specials).
type Passkey struct {
	SeqLen      int     `yaml:"seq_len"`      // context length in bytes (tokens)
	Depth       float64 `yaml:"depth"`        // where the key sits in the filler, in [0, 1]
	RandomDepth bool    `yaml:"random_depth"` // a uniform depth per row instead (training)
	Digits      int     `yaml:"digits"`       // key length; 0 = 5
	Filler      string  `yaml:"filler"`       // repeated filler text; "" = the grass-is-green noise
	// RandomFiller is the share of rows, in [0, 1], whose filler is instead fresh random prose
	// (randomProse): sentences of varied words, some with numbers, drawn per row. Training on it keeps
	// a memory from fitting one periodic haystack: a model that writes filler into its state loses the
	// key among never-repeating writes, so it must learn to write little outside the needle, which is
	// what lets it hold the key over far longer (and other) haystacks than it was trained on.
	RandomFiller float64 `yaml:"random_filler"`
}

const (
	passkeyIntro    = "There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. I will quiz you about the important information there. "
	passkeyQuestion = "What is the pass key? The pass key is "
)

func (p Passkey) digits() int {
	if p.Digits == 0 {
		return 5
	}
	return p.Digits
}

func (p Passkey) filler() string {
	if p.Filler == "" {
		return haystack
	}
	return p.Filler
}

func passkeyNeedle(key string) string {
	return fmt.Sprintf("The pass key is %s. Remember it. %s is the pass key. ", key, key)
}

// fillerLen is how many filler bytes a row holds.
func (p Passkey) fillerLen() int {
	key := string(make([]byte, p.digits()))
	return p.SeqLen - len(passkeyIntro) - len(passkeyNeedle(key)) - len(passkeyQuestion) - p.digits()
}

// Validate implements Task.
func (p Passkey) Validate() error {
	switch {
	case p.Digits < 0 || p.Digits > 18:
		return field.Errorf("passkey.digits", p.Digits, "want 1..18 (0 = 5)")
	case !(p.RandomFiller >= 0 && p.RandomFiller <= 1):
		return field.Errorf("passkey.random_filler", p.RandomFiller, "want a share of rows in [0, 1]")
	case p.fillerLen() < 0:
		return field.Errorf("passkey.seq_len", p.SeqLen, "too short for the prompt, need at least %d", p.SeqLen-p.fillerLen())
	}
	return checkDepth("passkey", p.Depth)
}

// Shape implements Task.
func (p Passkey) Shape() (int, int) { return p.SeqLen, p.digits() }

// String implements Task.
func (p Passkey) String() string {
	if p.RandomDepth {
		return fmt.Sprintf("passkey(seq_len=%d, depth=random)", p.SeqLen)
	}
	return fmt.Sprintf("passkey(seq_len=%d, depth=%g)", p.SeqLen, p.Depth)
}

// Row implements Task.
func (p Passkey) Row(rng *rand.Rand, ids, labels []int32) {
	key := digits(rng, p.digits())
	depth := depthOf(rng, p.Depth, p.RandomDepth)
	n := p.fillerLen()
	filler := p.filler()
	if p.RandomFiller > 0 && rng.Float64() < p.RandomFiller {
		filler = randomProse(rng, n+1)
	}
	head := wordStart(filler, int(math.Round(depth*float64(n))), n)
	w := newByteRow(ids, labels)
	w.text(passkeyIntro)
	w.filler(filler, 0, head)
	w.text(passkeyNeedle(key))
	w.filler(filler, head, n-head)
	w.text(passkeyQuestion)
	w.answer(key)
}

// NeedleAt returns the byte position where the needle sentence starts in a row of p at depth d
// (for eval reports and tests).
func (p Passkey) NeedleAt(depth float64) int {
	n := p.fillerLen()
	return len(passkeyIntro) + wordStart(p.filler(), int(math.Round(depth*float64(n))), n)
}
