package configs

import (
	"fmt"
	"github.com/engramlx/engram/internal/field"
	"sort"
	"strings"

	"github.com/engramlx/engram/data"
)

// fitsVocab refuses a task whose token ids reach past the model's vocabulary.
func fitsVocab(section string, taskVocab, vocab int) error {
	if taskVocab > vocab {
		return field.Errorf("data."+section+".vocab", taskVocab, "exceeds model.vocab = %d", vocab)
	}
	return nil
}

// dataTask is what an experiment knows of a data.task: how to validate its section against the model
// (beyond the generator's own Validate, which Data.Validate runs),
// its row length, and the generator behind it (nil for files, which the trainer reads itself). It is
// the one place a task is switched on; configs, train and eval ask Data's methods.
type dataTask struct {
	validate  func(d Data, vocab int) error
	seqLen    func(d Data) int
	generator func(d Data) data.Task
	// resize is the generator sized to a row of seqLen tokens with its content scaled by k/n (the
	// segment curriculum); nil when the task cannot be resized.
	resize func(d Data, seqLen, k, n int) data.Task
}

var dataTasks = map[string]dataTask{
	"mqar": {
		validate:  func(d Data, vocab int) error { return fitsVocab("mqar", d.MQAR.Vocab, vocab) },
		seqLen:    func(d Data) int { return d.mqarLongest() },
		generator: func(d Data) data.Task { return d.MQAR },
		resize: func(d Data, seqLen, k, n int) data.Task {
			t := d.MQAR
			t.SeqLen, t.NumPairs = seqLen, max(1, t.NumPairs*k/n)
			return t
		},
	},
	"passkey": {
		validate: func(_ Data, vocab int) error {
			if vocab < 256 {
				return fmt.Errorf("data.task = passkey reads bytes: model.vocab = %d must be >= 256", vocab)
			}
			return nil
		},
		seqLen: func(d Data) int { return d.passkeyLongest() },
		generator: func(d Data) data.Task {
			p := d.Passkey
			p.SeqLen = d.passkeyLongest()
			return p
		},
	},
	"copy": {
		validate:  func(d Data, vocab int) error { return fitsVocab("copy", d.Copy.Vocab, vocab) },
		seqLen:    func(d Data) int { return d.Copy.SeqLen },
		generator: func(d Data) data.Task { return d.Copy },
		resize: func(d Data, seqLen, k, n int) data.Task {
			t := d.Copy
			t.SeqLen, t.Length = seqLen, max(1, t.Length*k/n)
			return t
		},
	},
	"files": {
		validate: func(d Data, _ int) error {
			if d.FilesSeqLen < 1 {
				return fmt.Errorf("data.seq_len = %d: task files needs the row length of its batches", d.FilesSeqLen)
			}
			for _, split := range []struct {
				name string
				cfg  data.FileConfig
			}{{"train", d.Train}, {"eval", d.Eval}} {
				if err := split.cfg.Validate(); err != nil {
					return field.Reroot(err, "data", "data."+split.name)
				}
			}
			return nil
		},
		seqLen: func(d Data) int { return d.FilesSeqLen },
	},
}

// TaskNames lists the data tasks, sorted.
func TaskNames() []string {
	names := make([]string, 0, len(dataTasks))
	for name := range dataTasks {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// task returns the table entry of d.Task, or an error naming the known ones.
func (d Data) task() (dataTask, error) {
	t, ok := dataTasks[d.Task]
	if !ok {
		return dataTask{}, fmt.Errorf("data.task = %q: want one of %s", d.Task, strings.Join(TaskNames(), ", "))
	}
	return t, nil
}

// Validate checks the chosen task's section (its generator's own checks, then the task's against a
// model vocabulary).
func (d Data) Validate(vocab int) error {
	t, err := d.task()
	if err != nil {
		return err
	}
	if t.generator != nil {
		if err := t.generator(d).Validate(); err != nil {
			return field.In("data", err)
		}
	}
	if err := d.validateMix(); err != nil {
		return err
	}
	return t.validate(d, vocab)
}

// SeqLen is the row length of the chosen task (for token counts).
func (d Data) SeqLen() int {
	t, err := d.task()
	if err != nil {
		return 0
	}
	return t.seqLen(d)
}

// Generator is the built-in generator of the chosen task; ok is false for files.
func (d Data) Generator() (gen data.Task, ok bool) {
	t, err := d.task()
	if err != nil || t.generator == nil {
		return nil, false
	}
	return t.generator(d), true
}

// Resized is the chosen task's generator for rows of seqLen tokens with its content (pairs, copied
// tokens) scaled by k/n, for the segment curriculum; ok is false when the task cannot be resized.
func (d Data) Resized(seqLen, k, n int) (gen data.Task, ok bool) {
	t, err := d.task()
	if err != nil || t.resize == nil {
		return nil, false
	}
	return t.resize(d, seqLen, k, n), true
}
