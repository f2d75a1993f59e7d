package export

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/engramlx/engram/data"
)

// PromptIDs returns a prompt as token ids: text through the byte tokenizer (no EOS: the stream goes
// on), or a comma-separated id list; exactly one of the two is given, and every id must be below vocab.
func PromptIDs(text, list string, vocab int) ([]int32, error) {
	if (text == "") == (list == "") {
		return nil, fmt.Errorf("-state needs exactly one of -prompt or -ids")
	}
	var ids []int32
	if text != "" {
		ids = data.AppendBytes(nil, text)
	}
	for i, field := range strings.Split(list, ",") {
		if list == "" {
			break
		}
		id, err := strconv.ParseInt(strings.TrimSpace(field), 10, 32)
		if err != nil {
			return nil, fmt.Errorf("-ids: item %d %q: %w", i+1, field, err)
		}
		ids = append(ids, int32(id))
	}
	for i, id := range ids {
		if id < 0 || int(id) >= vocab {
			return nil, fmt.Errorf("prompt token %d is id %d, outside the model's vocabulary [0, %d)", i, id, vocab)
		}
	}
	return ids, nil
}
