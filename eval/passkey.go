package eval

import "github.com/engramlx/engram/data"

// Passkey is passkey retrieval (data.Passkey: a 5-digit key hidden at a depth of byte-level filler,
// asked for at the end), scored by exact match of the key. Its grid axis is the needle depth. Rows are
// generated, or, with files, read from them and grouped by (length, depth) (needleDepth).
type Passkey struct {
	files *fileRows // nil: generated rows
}

func newPasskeyTask(o Options) (Task, error) {
	if len(o.Files) == 0 {
		return Passkey{}, nil
	}
	files, err := readFileRows(o.Files, o.Vocab, needleDepth)
	return Passkey{files: files}, err
}

// Name implements Task.
func (Passkey) Name() string { return "passkey" }

// Axis implements Task.
func (Passkey) Axis() string { return "depth" }

// Points implements Task.
func (p Passkey) Points(lengths []int, depths []float64) []Point {
	if p.files != nil {
		return p.files.points()
	}
	return grid(lengths, depths)
}

// Rows implements Task: the rows of generated(data.Passkey{...}), streamed without being held in
// memory (passkeyInput), so a million-token row costs no more than a short one; or a file's rows.
func (p Passkey) Rows(at Point, rows int, seed uint64) ([]Input, int, error) {
	if p.files != nil {
		inputs, err := p.files.inputs(at, rows)
		return inputs, p.files.mostLabels(at), err
	}
	in, err := newPasskeyInput(at.Length, at.At, rows, seed)
	if err != nil {
		return nil, 0, err
	}
	_, slots := data.Passkey{SeqLen: at.Length}.Shape()
	return []Input{in}, slots, nil
}

// Score implements Task: 1 when every digit of the key is predicted.
func (Passkey) Score(r RowResult) float64 { return exactMatch(r) }
