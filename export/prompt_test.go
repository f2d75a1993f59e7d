package export

import (
	"reflect"
	"strings"
	"testing"
)

func TestPromptIDs(t *testing.T) {
	if got, err := PromptIDs("Hi", "", 260); err != nil || !reflect.DeepEqual(got, []int32{'H', 'i'}) {
		t.Errorf("text: %v %v", got, err)
	}
	for _, c := range []struct{ text, ids, want string }{
		{"", "", "exactly one"},
		{"a", "1", "exactly one"},
		{"", "1,x", `item 2 "x"`},
		{"", "1,40", "id 40, outside"},
		{"é", "", "id 195, outside"},
	} {
		if _, err := PromptIDs(c.text, c.ids, 32); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("prompt %q ids %q: got %v, want %q", c.text, c.ids, err, c.want)
		}
	}
}
