package data

import (
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// labelled returns the labels that are not Ignore, as text, and their positions.
func labelled(labels []int32) (string, []int) {
	var b []byte
	var at []int
	for i, l := range labels {
		if l != Ignore {
			b = append(b, byte(l))
			at = append(at, i)
		}
	}
	return string(b), at
}

func TestPasskey(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, depth := range []float64{0, 0.25, 0.5, 1} {
		task := Passkey{SeqLen: 1000, Depth: depth}
		if err := task.Validate(); err != nil {
			t.Fatal(err)
		}
		ids, labels := make([]int32, 1000), make([]int32, 1000)
		task.Row(rng, ids, labels)
		text := Decode(ids)
		if len(text) != 1000 || !strings.HasPrefix(text, passkeyIntro) {
			t.Fatalf("depth %g: row is %d bytes, want 1000 starting with the intro", depth, len(text))
		}
		m := regexp.MustCompile(`The pass key is (\d{5})\. Remember it\. (\d{5}) is the pass key\. `).FindStringSubmatchIndex(text)
		if m == nil {
			t.Fatalf("depth %g: no needle in %q", depth, text)
		}
		key := text[m[2]:m[3]]
		if m[0] != task.NeedleAt(depth) {
			t.Fatalf("depth %g: needle at byte %d, want %d", depth, m[0], task.NeedleAt(depth))
		}
		if !strings.HasSuffix(text, passkeyQuestion+key) {
			t.Fatalf("depth %g: row does not end with the question and key %s: %q", depth, key, text[900:])
		}
		answer, at := labelled(labels)
		if answer != key || !slices.Equal(at, []int{994, 995, 996, 997, 998}) {
			t.Fatalf("depth %g: labels %q at %v, want the key %s at 994..998", depth, answer, at, key)
		}
	}
	// Depth 0 puts the needle right after the intro, depth 1 right before the question.
	task := Passkey{SeqLen: 1000}
	if task.NeedleAt(0) != len(passkeyIntro) || task.NeedleAt(1) != len(passkeyIntro)+task.fillerLen() {
		t.Fatalf("needle at depth 0 / 1: %d / %d", task.NeedleAt(0), task.NeedleAt(1))
	}
	for _, bad := range []Passkey{{SeqLen: 200}, {SeqLen: 1000, Depth: 1.5}, {SeqLen: 1000, Depth: -0.1}, {SeqLen: 1000, Digits: -1}} {
		if bad.Validate() == nil {
			t.Errorf("%+v: want an error", bad)
		}
	}
}

var needleRE = regexp.MustCompile(`One of the special magic numbers for ([a-z]+) is: (\d+)\. `)

func TestNeedleVariants(t *testing.T) {
	for _, task := range []Needle{
		{SeqLen: 600, Depth: 0.5},                                         // single
		{SeqLen: 800, Depth: 0.1, Keys: 4},                                // multi-key
		{SeqLen: 800, Depth: 0.9, Values: 3},                              // multi-value
		{SeqLen: 1200, RandomDepth: true, Keys: 4, Queries: 2, Values: 2}, // multi-query (and value)
	} {
		src, err := NewTaskSource(task, 16, 9, 1)
		if err != nil {
			t.Fatalf("%s: %v", task, err)
		}
		b, _ := src.BatchAt(0)
		d := task.withDefaults()
		for r := 0; r < b.Size; r++ {
			ids, labels := b.Row(r)
			text := Decode(ids)
			found := needleRE.FindAllStringSubmatchIndex(text, -1)
			if len(found) != d.needles() {
				t.Fatalf("%s row %d: %d needles, want %d", task, r, len(found), d.needles())
			}
			q := regexp.MustCompile(`What are all the special magic numbers for ([a-z, ]+)\? Answer: `).FindStringSubmatchIndex(text)
			if q == nil {
				t.Fatalf("%s row %d: no question", task, r)
			}
			queried := strings.Split(text[q[2]:q[3]], ", ")
			var want []string
			for _, k := range queried {
				for _, f := range found {
					if text[f[2]:f[3]] == k {
						want = append(want, text[f[4]:f[5]])
					}
				}
			}
			if len(want) != d.Queries*d.Values {
				t.Fatalf("%s row %d: %d values for the queried keys %v, want %d", task, r, len(want), queried, d.Queries*d.Values)
			}
			answer, at := labelled(labels)
			if answer != strings.Join(want, ", ") || at[0] != q[1]-1 || text[q[1]:] != answer {
				t.Fatalf("%s row %d: answer %q at %d, want %q after the question", task, r, answer, at[0], strings.Join(want, ", "))
			}
			if !task.RandomDepth {
				// One needle of the first queried key sits after round(depth * haystack) filler bytes,
				// moved to the next word start.
				want, ok := wordStart(d.Filler, int(task.Depth*float64(d.haystackLen())+0.5), d.haystackLen()), false
				needleBytes := 0
				for _, f := range found {
					ok = ok || (text[f[2]:f[3]] == queried[0] && f[0]-needleBytes == want)
					needleBytes += f[1] - f[0]
				}
				if !ok {
					t.Fatalf("%s row %d: no needle of %s after %d filler bytes", task, r, queried[0], want)
				}
			}
		}
	}
	for _, bad := range []Needle{{SeqLen: 100}, {SeqLen: 2000, Queries: 2}, {SeqLen: 2000, Depth: 2}, {SeqLen: 2000, Keys: -1}, {SeqLen: 99999, Keys: 400, KeyLen: 2}} {
		if bad.Validate() == nil {
			t.Errorf("%+v: want an error", bad)
		}
	}
}

func TestCopyTasks(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	c := Copy{Vocab: 10, SeqLen: 12, Length: 4} // 4 data, 4 blanks, marker, 3 copied
	ids, labels := make([]int32, 12), make([]int32, 12)
	c.Row(rng, ids, labels)
	x := ids[:4]
	wantIDs := append(slices.Clone(x), 0, 0, 0, 0, CopyMarker, x[0], x[1], x[2])
	wantLabels := []int32{Ignore, Ignore, Ignore, Ignore, Ignore, Ignore, Ignore, Ignore, x[0], x[1], x[2], x[3]}
	if !slices.Equal(ids, wantIDs) || !slices.Equal(labels, wantLabels) {
		t.Fatalf("copy row %v / %v, want %v / %v", ids, labels, wantIDs, wantLabels)
	}
	for _, v := range x {
		if v < 2 || v >= 10 {
			t.Fatalf("data token %d outside [2, 10)", v)
		}
	}
	s := SelectiveCopy{Vocab: 8, SeqLen: 40, Tokens: 5}
	ids, labels = make([]int32, 40), make([]int32, 40)
	s.Row(rng, ids, labels)
	var data []int32
	for _, v := range ids[:35] {
		if v != CopyBlank {
			data = append(data, v)
		}
	}
	if len(data) != 5 || ids[35] != CopyMarker || !slices.Equal(ids[36:], data[:4]) || !slices.Equal(labels[35:], data) {
		t.Fatalf("selective copy row %v / %v: want 5 scattered tokens, the marker at 35, then the tokens", ids, labels)
	}
	if n, _ := labelled(labels); len(n) != 5 {
		t.Fatalf("%d labels, want 5", len(n))
	}
	for _, bad := range []Task{Copy{Vocab: 2, SeqLen: 8, Length: 2}, Copy{Vocab: 5, SeqLen: 7, Length: 4}, SelectiveCopy{Vocab: 5, SeqLen: 9, Tokens: 5}, SelectiveCopy{Vocab: 5, SeqLen: 9}} {
		if bad.Validate() == nil {
			t.Errorf("%v: want an error", bad)
		}
	}
}

func TestWordStart(t *testing.T) {
	// haystack = "The grass is green. ..."; offsets 4 and 10 start words ("grass", "is").
	for _, c := range [][3]int{{0, 0, 100}, {4, 4, 100}, {5, 10, 100}, {9, 10, 100}, {5, 7, 7}} {
		if got := wordStart(haystack, c[0], c[2]); got != c[1] {
			t.Errorf("wordStart(%d, limit %d) = %d, want %d", c[0], c[2], got, c[1])
		}
	}
}

func TestPasskeyRandomFiller(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	task := Passkey{SeqLen: 1000, RandomDepth: true, RandomFiller: 0.5}
	if err := task.Validate(); err != nil {
		t.Fatal(err)
	}
	needle := regexp.MustCompile(`The pass key is (\d{5})\. Remember it\. (\d{5}) is the pass key\. `)
	standard, fillers := 0, map[string]bool{}
	const rows = 200
	for r := 0; r < rows; r++ {
		ids, labels := make([]int32, 1000), make([]int32, 1000)
		task.Row(rng, ids, labels)
		text := Decode(ids)
		m := needle.FindStringSubmatchIndex(text)
		if len(text) != 1000 || !strings.HasPrefix(text, passkeyIntro) || m == nil {
			t.Fatalf("row %d: want 1000 bytes, the intro and a needle: %q", r, text)
		}
		key := text[m[2]:m[3]]
		if !strings.HasSuffix(text, passkeyQuestion+key) || text[m[0]-1] != ' ' {
			t.Fatalf("row %d: no question with key %s at the end, or needle inside a word: %q", r, key, text)
		}
		if answer, _ := labelled(labels); answer != key {
			t.Fatalf("row %d: labels %q, want %s", r, answer, key)
		}
		filler := text[len(passkeyIntro):m[0]] + text[m[1]:len(text)-len(passkeyQuestion)-5]
		if n := len(regexp.MustCompile(`\d{5,}`).FindAllString(filler, -1)); n != 0 {
			t.Fatalf("row %d: %d numbers of 5+ digits in the filler besides the key: %q", r, n, filler)
		}
		if strings.HasPrefix(filler, haystack) || strings.HasPrefix(filler, haystack[:len(haystack)-1]) {
			standard++
		}
		fillers[filler] = true
	}
	// About half the rows keep the repeated haystack; the random ones are all different.
	if standard < rows/2-30 || standard > rows/2+30 || len(fillers) != rows-standard+1 {
		t.Fatalf("%d of %d rows with the standard filler (want about half), %d distinct fillers", standard, rows, len(fillers))
	}
	if (Passkey{SeqLen: 1000, RandomFiller: 1.5}).Validate() == nil {
		t.Fatal("random_filler 1.5: want an error")
	}
}
