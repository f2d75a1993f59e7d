package configs

import (
	"errors"
	"fmt"
	"slices"

	"github.com/engramlx/engram/data"
	"github.com/engramlx/engram/internal/field"
)

// MQARShape is one row shape of a mixed MQAR training set: its length and its number of pairs.
type MQARShape struct {
	SeqLen   int `yaml:"seq_len"`
	NumPairs int `yaml:"num_pairs"`
}

// mqarMix is the generator of each shape of data.mqar_mix: data.mqar with the shape's length and
// pairs (vocabulary, power_a and filler from data.mqar).
func (d Data) mqarMix() []data.MQAR {
	tasks := make([]data.MQAR, len(d.MQARMix))
	for i, s := range d.MQARMix {
		tasks[i] = d.MQAR
		tasks[i].SeqLen, tasks[i].NumPairs = s.SeqLen, s.NumPairs
	}
	return tasks
}

// mqarLongest is the row length of data.mqar, or the longest of data.mqar_mix when it is longer.
func (d Data) mqarLongest() int {
	longest := d.MQAR.SeqLen
	for _, s := range d.MQARMix {
		longest = max(longest, s.SeqLen)
	}
	return longest
}

// passkeyMix is the generator of each length of data.passkey_lengths: data.passkey at that length.
func (d Data) passkeyMix() []data.Passkey {
	tasks := make([]data.Passkey, len(d.PasskeyLengths))
	for i, n := range d.PasskeyLengths {
		tasks[i] = d.Passkey
		tasks[i].SeqLen = n
	}
	return tasks
}

// passkeyLongest is the row length of data.passkey, or the longest of data.passkey_lengths.
func (d Data) passkeyLongest() int {
	if len(d.PasskeyLengths) == 0 {
		return d.Passkey.SeqLen
	}
	return slices.Max(d.PasskeyLengths)
}

// validateMix checks every shape of data.mqar_mix and every length of data.passkey_lengths, naming
// the entry.
func (d Data) validateMix() error {
	if len(d.MQARMix) > 0 && d.Task != "mqar" {
		return field.Errorf("data.mqar_mix", len(d.MQARMix), "mixes MQAR shapes, but data.task is %q", d.Task)
	}
	if len(d.PasskeyLengths) > 0 && d.Task != "passkey" {
		return field.Errorf("data.passkey_lengths", d.PasskeyLengths, "mixes passkey lengths, but data.task is %q", d.Task)
	}
	for i, t := range d.mqarMix() {
		if err := t.Validate(); err != nil {
			return field.Reroot(err, "mqar", fmt.Sprintf("data.mqar_mix[%d]", i))
		}
	}
	for i, t := range d.passkeyMix() {
		if err := t.Validate(); err != nil {
			path := fmt.Sprintf("data.passkey_lengths[%d]", i)
			if fe := (*field.Error)(nil); errors.As(err, &fe) {
				return field.Errorf(path, t.SeqLen, "%v", fe.Err)
			}
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	return nil
}

// MixedTasks are the generators of data.mqar_mix or data.passkey_lengths, one per shape (nil without
// a mix): the trainer draws each batch's shape uniformly among them (data.NewCurriculum), as Zoology
// trains on several (length, pairs) settings at once.
func (d Data) MixedTasks() []data.Task {
	var tasks []data.Task
	for _, t := range d.mqarMix() {
		tasks = append(tasks, t)
	}
	for _, t := range d.passkeyMix() {
		tasks = append(tasks, t)
	}
	return tasks
}
