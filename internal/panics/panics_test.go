package panics

import (
	"errors"
	"os"
	"testing"
)

// A recovered error keeps its chain; anything else is printed; nil stays nil.
func TestAsError(t *testing.T) {
	err := func() (err error) {
		defer func() { err = AsError(recover()) }()
		panic(&os.PathError{Op: "open", Path: "x", Err: os.ErrNotExist})
	}()
	if !errors.Is(err, os.ErrNotExist) || err.Error() != "open x: file does not exist" {
		t.Errorf("recovered error %v lost its chain or text", err)
	}
	if err := AsError("boom"); err == nil || err.Error() != "boom" {
		t.Errorf("string panic: %v", err)
	}
	if AsError(nil) != nil {
		t.Error("nil panic became an error")
	}
}
