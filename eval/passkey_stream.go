package eval

import (
	"bytes"
	"fmt"

	"github.com/engramlx/engram/data"
)

// passkeyInput streams rows of data.Passkey without holding them: a row is
//
//	intro | filler[0, head) | needle(key) | filler[head, n) | question | key
//
// (data.Passkey's layout), so any segment is computed from a few short texts and the filler's period.
// The texts are taken from data's own generator: each row's key, intro, needle and question from a
// minimal row drawn with the row's random stream and a marker filler ("\x01 "), the filler from one
// row whose filler is all before the needle. A test holds the streamed rows equal to data.Passkey.Row.
type passkeyInput struct {
	length, head, fill int // row length, filler bytes before the needle, filler bytes in all
	filler             []byte
	rows               []passkeyRow
}

type passkeyRow struct{ intro, needle, question, key []byte }

// newPasskeyInput draws rows rows of data.Passkey{SeqLen: length, Depth: depth} from (seed, SplitTest)
// batch 0, exactly as generated() would, without materialising them.
func newPasskeyInput(length int, depth float64, rows int, seed uint64) (*passkeyInput, error) {
	p := data.Passkey{SeqLen: length, Depth: depth}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	minLen := 1
	for (data.Passkey{SeqLen: minLen}).Validate() != nil {
		minLen++
	}
	// Templates: minimal rows (2 filler bytes, depth 0) drawn with each row's own random stream; the
	// key is drawn first, so it is the key the full-length row gets.
	tmpl := data.Passkey{SeqLen: minLen + 2, Filler: "\x01 "}
	src := &data.GeneratorSource{Label: "passkey", BatchSize: rows, SeqLen: tmpl.SeqLen, Seed: seed, Split: SplitTest, Fill: tmpl.Row}
	b, err := src.BatchAt(0)
	if err != nil {
		return nil, err
	}
	in := &passkeyInput{length: length}
	introLen := tmpl.NeedleAt(0)
	for r := 0; r < rows; r++ {
		ids, labels := b.Row(r)
		text := toBytes(ids)
		var key []byte
		for _, l := range labels {
			if l != data.Ignore {
				key = append(key, byte(l))
			}
		}
		mark := bytes.IndexByte(text, 1) // the marker filler "\x01 " sits between the needle and the question
		in.rows = append(in.rows, passkeyRow{intro: text[:introLen], needle: text[introLen:mark],
			question: text[mark+2 : len(text)-len(key)], key: key})
	}
	first := in.rows[0]
	in.fill = length - len(first.intro) - len(first.needle) - len(first.question) - len(first.key)
	in.head = p.NeedleAt(depth) - len(first.intro)
	if in.filler, err = passkeyFiller(minLen, introLen); err != nil {
		return nil, err
	}
	return in, nil
}

// passkeyFiller returns one period of data.Passkey's default filler, read from a row whose filler all
// comes before the needle (depth 1).
func passkeyFiller(minLen, introLen int) ([]byte, error) {
	const probe = 1024
	p := data.Passkey{SeqLen: minLen + probe, Depth: 1}
	src := &data.GeneratorSource{Label: "filler", BatchSize: 1, SeqLen: p.SeqLen, Fill: p.Row}
	b, err := src.BatchAt(0)
	if err != nil {
		return nil, err
	}
	f := toBytes(b.InputIDs[introLen : introLen+probe])
	for period := 1; period <= probe/2; period++ {
		if bytes.Equal(f[period:], f[:probe-period]) {
			return f[:period], nil
		}
	}
	return nil, fmt.Errorf("eval: passkey filler has no period <= %d bytes", probe/2)
}

func toBytes(ids []int32) []byte {
	out := make([]byte, len(ids))
	for i, id := range ids {
		out[i] = byte(id)
	}
	return out
}

// Rows implements Input.
func (in *passkeyInput) Rows() int { return len(in.rows) }

// Len implements Input.
func (in *passkeyInput) Len() int { return in.length }

// Read implements Input.
func (in *passkeyInput) Read(from, n int, ids, labels []int32) error {
	if from < 0 || from+n > in.length {
		return fmt.Errorf("eval: read [%d, %d) of passkey rows of %d tokens", from, from+n, in.length)
	}
	for r, row := range in.rows {
		answer := in.length - len(row.key)
		for t := from; t < from+n; t++ {
			i := r*n + t - from
			ids[i], labels[i] = int32(in.byteAt(row, t)), data.Ignore
			if t >= answer-1 && t < in.length-1 {
				labels[i] = int32(row.key[t-answer+1])
			}
		}
	}
	return nil
}

// byteAt is byte t of a row.
func (in *passkeyInput) byteAt(row passkeyRow, t int) byte {
	if t < len(row.intro) {
		return row.intro[t]
	}
	t -= len(row.intro)
	if t < in.head {
		return in.filler[t%len(in.filler)]
	}
	t -= in.head
	if t < len(row.needle) {
		return row.needle[t]
	}
	t -= len(row.needle)
	if t < in.fill-in.head {
		return in.filler[(in.head+t)%len(in.filler)]
	}
	t -= in.fill - in.head
	if t < len(row.question) {
		return row.question[t]
	}
	return row.key[t-len(row.question)]
}
