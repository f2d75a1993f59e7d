package field

import (
	"errors"
	"testing"
)

// Paths nest and re-root without touching the message; the chain is kept.
func TestNesting(t *testing.T) {
	base := Errorf("deltanet.heads", 0, "must be >= %d", 1)
	if got := base.Error(); got != "deltanet.heads = 0: must be >= 1" {
		t.Errorf("got %q", got)
	}
	if got := In("model", base).Error(); got != "model.deltanet.heads = 0: must be >= 1" {
		t.Errorf("In: %q", got)
	}
	if got := Reroot(base, "deltanet", "mom.memory").Error(); got != "mom.memory.heads = 0: must be >= 1" {
		t.Errorf("Reroot: %q", got)
	}
	if got := Errorf("deltanet.mode", "fast", "want chunk or naive").Error(); got != `deltanet.mode = "fast": want chunk or naive` {
		t.Errorf("string value: %q", got)
	}
	var fe *Error
	if nested := In("model", Reroot(base, "deltanet", "mom.memory")); !errors.As(nested, &fe) || fe.Path != "model.mom.memory.heads" || fe.Value != 0 {
		t.Errorf("nested error %v lost its fields", nested)
	}
	plain := errors.New("boom")
	if got := In("data", plain); got.Error() != "data: boom" || !errors.Is(got, plain) {
		t.Errorf("plain error: %v", got)
	}
}
