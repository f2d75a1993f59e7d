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

// Rows implements Task.
func (Passkey) Rows(p Point, rows int, seed uint64) ([]Input, int, error) {
	return generated(data.Passkey{SeqLen: p.Length, Depth: p.At}, rows, seed)
}

// Score implements Task: 1 when every digit of the key is predicted.
func (Passkey) Score(r RowResult) float64 { return exactMatch(r) }
