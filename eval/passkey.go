package eval

import "github.com/engramlx/engram/data"

// Passkey is passkey retrieval (data.Passkey: a 5-digit key hidden at a depth of byte-level filler,
// asked for at the end), scored by exact match of the key. Its grid axis is the needle depth.
type Passkey struct{}

// Name implements Task.
func (Passkey) Name() string { return "passkey" }

// Axis implements Task.
func (Passkey) Axis() string { return "depth" }

// Points implements Task.
func (Passkey) Points(lengths []int, depths []float64) []Point { return grid(lengths, depths) }

// Rows implements Task: the rows of generated(data.Passkey{...}), streamed without being held in
// memory (passkeyInput), so a million-token row costs no more than a short one.
func (Passkey) Rows(p Point, rows int, seed uint64) ([]Input, int, error) {
	in, err := newPasskeyInput(p.Length, p.At, rows, seed)
	if err != nil {
		return nil, 0, err
	}
	_, slots := data.Passkey{SeqLen: p.Length}.Shape()
	return []Input{in}, slots, nil
}

// Score implements Task: 1 when every digit of the key is predicted.
func (Passkey) Score(r RowResult) float64 { return exactMatch(r) }
