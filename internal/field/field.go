// Package field is the error of a configuration value: the dotted path of the key, the value and what
// is wrong, so sections can be nested without gluing or peeling strings. A mixer's Validate reports
// "deltanet.heads = 0: must be >= 1"; MoM, whose memories are deltanet sections, re-roots it to
// "mom.memory.heads"; the experiment prefixes the model's errors with "model.".
package field

import (
	"errors"
	"fmt"
)

// Error is a configuration value that cannot work.
type Error struct {
	Path  string // dotted YAML path, e.g. "deltanet.heads"
	Value any    // the value found
	Err   error  // what is wrong with it
}

// Errorf is an *Error for path and value with the message format and args.
func Errorf(path string, value any, format string, args ...any) error {
	return &Error{Path: path, Value: value, Err: fmt.Errorf(format, args...)}
}

// Error renders "path = value: message" (strings quoted).
func (e *Error) Error() string {
	if s, ok := e.Value.(string); ok {
		return fmt.Sprintf("%s = %q: %v", e.Path, s, e.Err)
	}
	return fmt.Sprintf("%s = %v: %v", e.Path, e.Value, e.Err)
}

// Unwrap is the message's own error.
func (e *Error) Unwrap() error { return e.Err }

// In nests err in section: an *Error's path gets section in front ("data" + "mqar.vocab" ->
// "data.mqar.vocab"); any other error is wrapped as "section: err".
func In(section string, err error) error {
	var fe *Error
	if err == nil {
		return nil
	}
	if errors.As(err, &fe) && error(fe) == err {
		return &Error{Path: section + "." + fe.Path, Value: fe.Value, Err: fe.Err}
	}
	return fmt.Errorf("%s: %w", section, err)
}

// Reroot replaces the leading section from of an *Error's path by to ("deltanet.heads" ->
// "mom.memory.heads"); other errors are nested in to as by In.
func Reroot(err error, from, to string) error {
	var fe *Error
	if err == nil {
		return nil
	}
	if errors.As(err, &fe) && error(fe) == err && len(fe.Path) > len(from) && fe.Path[:len(from)+1] == from+"." {
		return &Error{Path: to + fe.Path[len(from):], Value: fe.Value, Err: fe.Err}
	}
	return In(to, err)
}
