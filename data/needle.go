package data

import (
	"fmt"
	"github.com/engramlx/engram/internal/field"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
)

// Needle is RULER's needle-in-a-haystack family (Hsieh et al., 2024, "RULER: What's the Real Context
// Size of Your Long-Context Language Models?") at byte level. Needles are sentences
//
//	"One of the special magic numbers for KEY is: VALUE. "
//
// with KEY KeyLen random lowercase letters and VALUE ValueLen random digits (all values of a row
// distinct), inserted into the repeated filler text. The row ends with the question and the answer:
//
//	"What are all the special magic numbers for KEY1, KEY2? Answer: V1, V2, V3"
//
// The answer lists the values of the queried keys, key by key in question order, each key's values in
// the order they appear in the text, joined by ", "; its bytes are the labels (each at the position
// before it), everything else is Ignore. The variants are settings of Keys, Values and Queries:
//
//	single needle   keys 1, values 1, queries 1
//	multi-key       keys K > 1 (K-1 distractor needles with other keys), values 1, queries 1
//	multi-value     keys 1, values V > 1 (V needles with the queried key)
//	multi-query     keys K >= Q, queries Q > 1 (all Q keys asked at once)
//
// Depth places one needle of the first queried key, the target: round(Depth * haystack length)
// filler bytes come before it, moved forward to the next word start. The other needles go at uniformly random places in the haystack
// (RandomDepth: the target too).
// All needles start at word starts of the filler. Rows are exactly SeqLen bytes.
type Needle struct {
	SeqLen      int     `yaml:"seq_len"`
	Depth       float64 `yaml:"depth"`
	RandomDepth bool    `yaml:"random_depth"`
	Keys        int     `yaml:"keys"`      // keys with needles in the haystack; 0 = 1
	Values      int     `yaml:"values"`    // needles (values) of each queried key; 0 = 1
	Queries     int     `yaml:"queries"`   // keys asked about; 0 = 1
	KeyLen      int     `yaml:"key_len"`   // 0 = 6
	ValueLen    int     `yaml:"value_len"` // 0 = 7
	Filler      string  `yaml:"filler"`    // "" = the grass-is-green noise
}

// withDefaults fills the zero fields.
func (n Needle) withDefaults() Needle {
	for _, f := range []*int{&n.Keys, &n.Values, &n.Queries} {
		if *f == 0 {
			*f = 1
		}
	}
	if n.KeyLen == 0 {
		n.KeyLen = 6
	}
	if n.ValueLen == 0 {
		n.ValueLen = 7
	}
	if n.Filler == "" {
		n.Filler = haystack
	}
	return n
}

func needleSentence(key, value string) string {
	return "One of the special magic numbers for " + key + " is: " + value + ". "
}

func needleQuestion(keys []string) string {
	return "What are all the special magic numbers for " + strings.Join(keys, ", ") + "? Answer: "
}

// needles is the number of needle sentences in a row.
func (n Needle) needles() int { return n.Queries*n.Values + n.Keys - n.Queries }

// answerLen is the length of the answer in bytes.
func (n Needle) answerLen() int {
	v := n.Queries * n.Values
	return v*n.ValueLen + (v-1)*2
}

// haystackLen is how many filler bytes a row holds (n with defaults).
func (n Needle) haystackLen() int {
	key, value := strings.Repeat("k", n.KeyLen), strings.Repeat("v", n.ValueLen)
	keys := make([]string, n.Queries)
	for i := range keys {
		keys[i] = key
	}
	return n.SeqLen - n.needles()*len(needleSentence(key, value)) - len(needleQuestion(keys)) - n.answerLen()
}

// Validate implements Task.
func (n Needle) Validate() error {
	if n.Keys < 0 || n.Values < 0 || n.Queries < 0 || n.KeyLen < 0 || n.ValueLen < 0 {
		return fmt.Errorf("needle: keys %d, values %d, queries %d, key_len %d, value_len %d: none may be negative",
			n.Keys, n.Values, n.Queries, n.KeyLen, n.ValueLen)
	}
	d := n.withDefaults()
	switch {
	case d.Queries > d.Keys:
		return field.Errorf("needle.queries", d.Queries, "more than the %d keys", d.Keys)
	case d.ValueLen > 18:
		return field.Errorf("needle.value_len", d.ValueLen, "at most 18 digits")
	case d.KeyLen < 2 || d.ValueLen < 3:
		return fmt.Errorf("needle: key_len %d, value_len %d: need at least 2 letters and 3 digits so rows can have distinct keys and values", d.KeyLen, d.ValueLen)
	case float64(d.Keys) > math.Pow(26, float64(d.KeyLen))/2:
		return field.Errorf("needle.keys", d.Keys, "too many for keys of %d letters", d.KeyLen)
	case float64(d.needles()) > math.Pow(10, float64(d.ValueLen))/4:
		return fmt.Errorf("needle: %d needles: too many for values of %d digits", d.needles(), d.ValueLen)
	case d.haystackLen() < 0:
		return fmt.Errorf("needle.seq_len = %d: too short for %d needles, the question and the answer (need at least %d)",
			n.SeqLen, d.needles(), n.SeqLen-d.haystackLen())
	}
	return checkDepth("needle", n.Depth)
}

// Shape implements Task.
func (n Needle) Shape() (int, int) { return n.SeqLen, n.withDefaults().answerLen() }

// String implements Task.
func (n Needle) String() string {
	d := n.withDefaults()
	depth := fmt.Sprint(n.Depth)
	if n.RandomDepth {
		depth = "random"
	}
	return fmt.Sprintf("needle(seq_len=%d, depth=%s, keys=%d, values=%d, queries=%d)", n.SeqLen, depth, d.Keys, d.Values, d.Queries)
}

// placed is a needle sentence at a filler offset; order breaks ties so the target stays first.
type placed struct {
	at, order int
	key       int // index into the row's keys
	value     string
}

// Row implements Task.
func (n Needle) Row(rng *rand.Rand, ids, labels []int32) {
	d := n.withDefaults()
	keys := distinct(rng, d.Keys, func() string { return letters(rng, d.KeyLen) })
	values := distinct(rng, d.needles(), func() string { return digits(rng, d.ValueLen) })
	hay := d.haystackLen()
	// Needles: Values for each of the first Queries keys, one for each other key (distractors).
	var ns []placed
	for k := 0; k < d.Keys; k++ {
		count := 1
		if k < d.Queries {
			count = d.Values
		}
		for v := 0; v < count; v++ {
			ns = append(ns, placed{at: wordStart(d.Filler, rng.IntN(hay+1), hay), order: 1 + rng.IntN(1<<30), key: k, value: values[len(ns)]})
		}
	}
	ns[0].at = wordStart(d.Filler, int(math.Round(depthOf(rng, d.Depth, d.RandomDepth)*float64(hay))), hay)
	ns[0].order = 0
	sort.Slice(ns, func(i, j int) bool {
		if ns[i].at != ns[j].at {
			return ns[i].at < ns[j].at
		}
		return ns[i].order < ns[j].order
	})
	w := newByteRow(ids, labels)
	from := 0
	for _, p := range ns {
		w.filler(d.Filler, from, p.at-from)
		w.text(needleSentence(keys[p.key], p.value))
		from = p.at
	}
	w.filler(d.Filler, from, hay-from)
	w.text(needleQuestion(keys[:d.Queries]))
	var answer []string
	for k := 0; k < d.Queries; k++ {
		for _, p := range ns {
			if p.key == k {
				answer = append(answer, p.value)
			}
		}
	}
	w.answer(strings.Join(answer, ", "))
}

// distinct draws n different strings from draw.
func distinct(rng *rand.Rand, n int, draw func() string) []string {
	seen := make(map[string]bool, n)
	out := make([]string, 0, n)
	for len(out) < n {
		if s := draw(); !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
